/**
 * The nightly review handler's three steps (plan, shard, advance) on the DynamoDB store on dynalite, driven the
 * way the review state machine drives them: plan, then every shard (in parallel, like the Map), then advance.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { type TierServices, ingestEvent, windowStart } from '../../functions/core/ingest.js';
import {
  InvalidReviewInputError,
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

/** Five members (active on two days), then the clock moves on past their review date with no new event. */
async function membersWhoWentQuiet() {
  const tableName = await dynalite.freshTable();
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: SHARDS, timeZone: ruleset.timezone });
  const clock = new ManualClock(new Date('2026-03-02T10:00:00Z'));
  const publisher = new RecordingPublisher();
  const services: TierServices = { ruleset, store, journeys: new RecordingJourneyStarter(), publisher, clock };
  for (const userId of USERS) {
    await ingestEvent(services, userEvent({ userId, occurredAt: '2026-03-01T09:00:00Z' }));
    await ingestEvent(services, userEvent({ userId, occurredAt: '2026-03-02T09:00:00Z' }));
  }
  for (const userId of USERS) expect((await store.loadUser(userId, '2026-03-01')).profile?.tier).toBe('member');
  clock.set('2026-03-12T02:30:00Z');
  const handler = createReviewHandler({
    services,
    shardCount: SHARDS,
    logger: new Logger({ serviceName: 'strata-review-test' }),
    metrics: new Metrics({ namespace: 'StrataTest', serviceName: 'strata-review-test' }),
  });
  return { handler, store, publisher, clock };
}

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
    expect(() => parseReviewStepInput({ step: 'shard', dates: ['2026-03-01'], shard: SHARDS }, SHARDS)).toThrow(InvalidReviewInputError);
    expect(() => parseReviewStepInput({ step: 'shard', dates: ['yesterday'], shard: 0 }, SHARDS)).toThrow(/YYYY-MM-DD/);
    expect(() => parseReviewStepInput({ step: 'sweep' }, SHARDS)).toThrow(/unknown step/);
    expect(parseReviewStepInput({ step: 'advance', dates: ['2026-03-02', '2026-03-01'] }, SHARDS)).toEqual({
      step: 'advance',
      dates: ['2026-03-01', '2026-03-02'],
    });
  });
});
