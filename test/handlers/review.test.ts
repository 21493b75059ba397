/**
 * The nightly review handler's three steps (plan, shard, advance) on the DynamoDB store on dynalite, driven the
 * way the review state machine drives them: plan, then every shard (in parallel, like the Map), then advance.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { PROFILE_KEY, TABLE_KEYS, userKey } from '../../functions/aws/table-schema.js';
import type { TierStore } from '../../functions/core/ports.js';
import { reviewShard } from '../../functions/core/review.js';
import { type TierServices, ingestEvent, windowStart } from '../../functions/core/ingest.js';
import {
  type InvocationClock,
  InvalidReviewInputError,
  REVIEW_TIME_MARGIN_MS,
  type ReviewHandler,
  type ReviewPlan,
  type ShardReviewResult,
  createReviewHandler,
  parseReviewStepInput,
} from '../../functions/handlers/review.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { testRuleset, userEvent } from '../helpers/fixtures.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';
import { captureProcessOutput } from '../helpers/captured-output.js';

const dynalite = useDynalite();
const ruleset = testRuleset();
const SHARDS = 4;
const USERS = ['ana@example.com', 'ben@example.com', 'chen@example.com', 'dana@example.com', 'eli@example.com'];

const output = captureProcessOutput();

interface QuietMembersOptions {
  users?: string[];
  /** The shard count the users were ingested under (and the handler's, unless `reviewShards` says otherwise). */
  shards?: number;
  /** The handler's shard count: a later deploy that changed `reviewShards`. */
  reviewShards?: number;
  userConcurrency?: number;
  /** Wraps the store the review reads through (ingest always uses the plain one). */
  reviewStore?: (store: TierStore) => TierStore;
  publisher?: RecordingPublisher;
}

/** Five members (active on two days), then the clock moves on past their review date with no new event. */
async function membersWhoWentQuiet(options: QuietMembersOptions = {}) {
  const users = options.users ?? USERS;
  const shards = options.shards ?? SHARDS;
  const reviewShards = options.reviewShards ?? shards;
  const tableName = await dynalite.freshTable();
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: shards, timeZone: ruleset.timezone });
  const clock = new ManualClock(new Date('2026-03-02T10:00:00Z'));
  const publisher = options.publisher ?? new RecordingPublisher();
  const services: TierServices = { ruleset, store, journeys: new RecordingJourneyStarter(), publisher, clock };
  for (const userId of users) {
    await ingestEvent(services, userEvent({ userId, occurredAt: '2026-03-01T09:00:00Z' }));
    await ingestEvent(services, userEvent({ userId, occurredAt: '2026-03-02T09:00:00Z' }));
  }
  for (const userId of users) expect((await store.loadUser(userId, '2026-03-01')).profile?.tier).toBe('member');
  clock.set('2026-03-12T02:30:00Z');
  const reviewStore =
    reviewShards === shards
      ? store
      : createDynamoTierStore({ client: dynalite.client, tableName, shardCount: reviewShards, timeZone: ruleset.timezone });
  const handlerFor = (shardCount: number, storeForReview: TierStore) =>
    createReviewHandler({
      services: { ...services, store: options.reviewStore ? options.reviewStore(storeForReview) : storeForReview },
      shardCount,
      ...(options.userConcurrency !== undefined ? { userConcurrency: options.userConcurrency } : {}),
      logger: new Logger({ serviceName: 'strata-review-test' }),
      metrics: new Metrics({ namespace: 'StrataTest', serviceName: 'strata-review-test' }),
    });
  const handler = handlerFor(reviewShards, reviewStore);
  return { handler, store, publisher, clock, tableName, handlerAsIngested: () => handlerFor(shards, store) };
}

/** What the review state machine does with one Map item: the shard step, again from `next` until there is none. */
async function runShardLoop(handler: ReviewHandler, dates: string[], shard: number, context?: () => InvocationClock): Promise<ShardReviewResult[]> {
  const results: ShardReviewResult[] = [];
  let input: unknown = { step: 'shard', dates, shard };
  for (let invocation = 0; invocation < 100; invocation++) {
    const result = (await handler(input, context?.())) as ShardReviewResult;
    results.push(result);
    if (!result.next) return results;
    input = JSON.parse(JSON.stringify(result.next));
  }
  throw new Error('review test: the shard never finished');
}

/** A Lambda context with time for `answers` more checks, then only the safety margin left. */
function budgetOf(answers: number): () => InvocationClock {
  return () => {
    let left = answers;
    return { getRemainingTimeInMillis: () => (left-- > 0 ? 10 * 60_000 : REVIEW_TIME_MARGIN_MS - 1) };
  };
}

const sum = (results: ShardReviewResult[], field: 'usersDue' | 'usersChanged' | 'usersFailed' | 'outboxFlushFailures'): number =>
  results.reduce((total, result) => total + result[field], 0);

describe('review handler', () => {
  it('plans the missed nights and every shard, reviews each shard, then advances the checkpoint', async () => {
    const { handler, store, publisher } = await membersWhoWentQuiet();

    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    // No checkpoint yet: the first run looks back a week, so the nights are caught up.
    expect(plan.dates[0]).toBe('2026-03-05');
    expect(plan.dates.at(-1)).toBe('2026-03-12');
    expect(plan.shards).toEqual([0, 1, 2, 3]);

    const results = (await Promise.all(plan.shards.map((shard) => handler({ step: 'shard', dates: plan.dates, shard })))) as ShardReviewResult[];
    expect(results.reduce((sum, result) => sum + result.usersDue, 0)).toBe(USERS.length);
    expect(results.reduce((sum, result) => sum + (result.transitions['grace-started'] ?? 0), 0)).toBe(USERS.length);
    // Shards have run, but the checkpoint waits for the advance step (the Map may still have a failed shard).
    expect(await store.getReviewCheckpoint()).toBeUndefined();

    expect(await handler({ step: 'advance', dates: plan.dates })).toEqual({ checkpoint: '2026-03-12', advanced: true });
    expect(await store.getReviewCheckpoint()).toBe('2026-03-12');

    for (const userId of USERS) {
      const { profile } = await store.loadUser(userId, windowStart(ruleset, new Date('2026-03-12T02:30:00Z')));
      expect(profile?.graceUntil, userId).toBeDefined();
    }
    expect([...publisher.notices.values()].filter((notice) => notice.detailType === 'GraceStarted')).toHaveLength(USERS.length);
    for (const userId of USERS) expect(output.text()).not.toContain(userId);
  });

  it('is safe to rerun: a second pass finds no one, and the checkpoint never moves back', async () => {
    const { handler, store } = await membersWhoWentQuiet();
    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    for (const shard of plan.shards) await handler({ step: 'shard', dates: plan.dates, shard });
    await handler({ step: 'advance', dates: plan.dates });

    // A retried or redriven execution repeats the same steps.
    const again = (await Promise.all(plan.shards.map((shard) => handler({ step: 'shard', dates: plan.dates, shard })))) as ShardReviewResult[];
    expect(again.reduce((sum, result) => sum + result.usersDue + result.usersChanged, 0)).toBe(0);
    expect(await handler({ step: 'advance', dates: ['2026-03-09'] })).toEqual({ checkpoint: '2026-03-12', advanced: false });
    expect(await store.getReviewCheckpoint()).toBe('2026-03-12');

    // Tonight's plan starts after the checkpoint.
    expect(await handler({ step: 'plan' })).toEqual({ dates: [], shards: [0, 1, 2, 3] });
  });

  it('resumes a run that failed part-way: the next run reviews who is left, over the same nights', async () => {
    const { handler, store } = await membersWhoWentQuiet();
    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    // Only shard 0 ran before the execution failed, so no advance.
    const partial = (await handler({ step: 'shard', dates: plan.dates, shard: 0 })) as ShardReviewResult;
    expect(await store.getReviewCheckpoint()).toBeUndefined();

    const rerun = (await handler({ step: 'plan' })) as ReviewPlan;
    expect(rerun.dates).toEqual(plan.dates);
    const rest = (await Promise.all(rerun.shards.map((shard) => handler({ step: 'shard', dates: rerun.dates, shard })))) as ShardReviewResult[];
    expect(partial.usersDue + rest.reduce((sum, result) => sum + result.usersDue, 0)).toBe(USERS.length);
    expect(rest.find((result) => result.shard === 0)?.usersDue).toBe(0);
  });

  it('refuses input the state machine never sends', () => {
    for (const shard of [-1, 1.5, 256, '3']) {
      expect(() => parseReviewStepInput({ step: 'shard', dates: ['2026-03-01'], shard })).toThrow(InvalidReviewInputError);
    }
    expect(() => parseReviewStepInput({ step: 'shard', dates: ['yesterday'], shard: 0 })).toThrow(/YYYY-MM-DD/);
    expect(() => parseReviewStepInput({ step: 'shard', dates: ['2026-03-01'], shard: 0, cursor: { date: '2026-03-02' } })).toThrow(/"cursor"/);
    expect(() => parseReviewStepInput({ step: 'shard', dates: ['2026-03-01'], shard: 0, cursor: { date: '2026-03-01', page: 7 } })).toThrow(
      /"cursor"/,
    );
    expect(() => parseReviewStepInput({ step: 'sweep' })).toThrow(/unknown step/);
    expect(parseReviewStepInput({ step: 'advance', dates: ['2026-03-02', '2026-03-01'] })).toEqual({
      step: 'advance',
      dates: ['2026-03-01', '2026-03-02'],
    });
  });
});

describe('review handler: one bad user never stops a shard', () => {
  it('reviews everyone else when a profile cannot be read, lists that user for the next night, and the checkpoint moves', async () => {
    const { handler, store, tableName } = await membersWhoWentQuiet({ shards: 1 });
    const broken = USERS[2]!;
    // A profile item without its version (a hand edit, a bad import): reading it throws a StoreError.
    const key = { [TABLE_KEYS.partitionKey]: { S: userKey(broken) }, [TABLE_KEYS.sortKey]: { S: PROFILE_KEY } };
    const { Item: item } = await dynalite.client.send(new GetItemCommand({ TableName: tableName, Key: key }));
    const { version: _version, ...withoutVersion } = item!;
    await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: withoutVersion }));

    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    const results = await runShardLoop(handler, plan.dates, 0);
    expect(sum(results, 'usersDue')).toBe(USERS.length);
    expect(sum(results, 'usersFailed')).toBe(1);
    for (const userId of USERS.filter((id) => id !== broken)) {
      expect((await store.loadUser(userId, '2026-03-01')).profile?.graceUntil, userId).toBeDefined();
    }
    // Listed again on the night after the run, so it is neither lost nor retried in a loop tonight.
    expect((await store.listDueForReview('2026-03-13', 0)).userIds).toEqual([broken]);
    expect(await handler({ step: 'advance', dates: plan.dates })).toEqual({ checkpoint: '2026-03-12', advanced: true });
    // The log says why, by userRef only.
    expect(output.text()).toContain('User review failed');
    expect(output.text()).toContain('has no tier or version');
    expect(output.text()).not.toContain(broken);
  });

  it("carries on when a user's outbox cannot be flushed, and the next night flushes it", async () => {
    class FailingOncePublisher extends RecordingPublisher {
      failures = 0;
      failNext = false;
      override async publishNotices(notices: Parameters<RecordingPublisher['publishNotices']>[0]): Promise<void> {
        if (this.failNext) {
          this.failNext = false;
          this.failures += 1;
          throw new Error('EventBridge: PutEvents failed (simulated outage)');
        }
        return super.publishNotices(notices);
      }
    }
    const publisher = new FailingOncePublisher();
    const { handler, store, clock } = await membersWhoWentQuiet({ shards: 1, publisher, userConcurrency: 1 });
    publisher.failNext = true;
    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    const results = await runShardLoop(handler, plan.dates, 0);
    expect(publisher.failures).toBe(1);
    expect(sum(results, 'usersDue')).toBe(USERS.length);
    expect(sum(results, 'outboxFlushFailures')).toBe(1);
    expect([...publisher.notices.values()].filter((notice) => notice.detailType === 'GraceStarted')).toHaveLength(USERS.length - 1);
    await handler({ step: 'advance', dates: plan.dates });

    // The next night the user whose notice was lost is due again, and the outbox goes out.
    clock.set('2026-03-13T03:30:00Z');
    const next = (await handler({ step: 'plan' })) as ReviewPlan;
    expect(next.dates).toEqual(['2026-03-13']);
    expect(sum(await runShardLoop(handler, next.dates, 0), 'outboxFlushFailures')).toBe(0);
    expect([...publisher.notices.values()].filter((notice) => notice.detailType === 'GraceStarted')).toHaveLength(USERS.length);
    for (const userId of USERS) expect((await store.loadUser(userId, '2026-03-01')).profile?.outboxVersion, userId).toBeUndefined();
  });
});

describe('review handler: time budget and parallel users', () => {
  const many = Array.from({ length: 9 }, (_, i) => `user-${i}@example.com`);

  it('stops a shard before its time runs out and resumes from the cursor it returns, reviewing each user once', async () => {
    const { handler, store } = await membersWhoWentQuiet({ users: many, shards: 1, userConcurrency: 1 });
    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    // Each invocation has time for one page listing and two users.
    const results = await runShardLoop(handler, plan.dates, 0, budgetOf(3));
    expect(results.length).toBeGreaterThan(3);
    expect(results[0]!.next).toMatchObject({ step: 'shard', shard: 0, dates: plan.dates, cursor: { date: expect.any(String) } });
    expect(results.at(-1)!.next).toBeUndefined();
    expect(sum(results, 'usersDue')).toBe(many.length);
    for (const userId of many) expect((await store.loadUser(userId, '2026-03-01')).profile?.graceUntil, userId).toBeDefined();
  });

  it('reviews the users of a shard in parallel, never more at once than the bound', async () => {
    let inFlight = 0;
    let mostAtOnce = 0;
    const counting = (store: TierStore): TierStore => ({
      ...store,
      async loadUser(userId, fromDate) {
        inFlight += 1;
        mostAtOnce = Math.max(mostAtOnce, inFlight);
        try {
          return await store.loadUser(userId, fromDate);
        } finally {
          inFlight -= 1;
        }
      },
    });
    const { handler } = await membersWhoWentQuiet({ users: many, shards: 1, userConcurrency: 3, reviewStore: counting });
    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    expect(sum(await runShardLoop(handler, plan.dates, 0), 'usersDue')).toBe(many.length);
    expect(mostAtOnce).toBe(3);
  });
});

describe('review handler: lowering reviewShards', () => {
  it('keeps reading the higher shards it has used, so no profile is stranded', async () => {
    const { handler, handlerAsIngested, store } = await membersWhoWentQuiet({ shards: 8, reviewShards: 2 });
    // The stack ran with 8 shards (a nightly plan recorded it), then a deploy lowered reviewShards to 2.
    expect(((await handlerAsIngested()({ step: 'plan' })) as ReviewPlan).shards).toHaveLength(8);
    expect(USERS.some((userId) => reviewShard(userId, 8) >= 2)).toBe(true);

    const plan = (await handler({ step: 'plan' })) as ReviewPlan;
    expect(plan.shards).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const results = (await Promise.all(plan.shards.map((shard) => runShardLoop(handler, plan.dates, shard)))).flat();
    expect(sum(results, 'usersDue')).toBe(USERS.length);
    for (const userId of USERS) expect((await store.loadUser(userId, '2026-03-01')).profile?.graceUntil, userId).toBeDefined();
  });

  it('reads the current count when it is the larger one', async () => {
    const { handler } = await membersWhoWentQuiet({ shards: 2, reviewShards: 6 });
    expect(((await handler({ step: 'plan' })) as ReviewPlan).shards).toHaveLength(6);
  });
});
