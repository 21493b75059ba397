/**
 * The nightly review at scale: a table of profiles where about 2% are due today, reviewed through the sparse
 * review index, against the full Scan it replaces. Plus the number of reviews a steadily active user gets, with
 * events through the real ingest path and the nightly review on a virtual clock.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { type DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { createDynamoTierStore, type DynamoTierStore } from '../functions/aws/dynamo-store.js';
import { PROFILE_KEY, TABLE_KEYS } from '../functions/aws/table-schema.js';
import { addDays } from '../functions/core/dates.js';
import type { TierServices } from '../functions/core/ingest.js';
import { instantAtLocalTime } from '../functions/core/local-time.js';
import { DEFAULT_USER_CONCURRENCY, runReview } from '../functions/core/review.js';
import { type ShardReviewResult, createReviewHandler } from '../functions/handlers/review.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import type { UserProfile } from '../functions/core/state.js';
import { createVirtualClock } from '../functions/local/clock.js';
import { startDynalite } from '../functions/local/dynalite.js';
import { localEnvelope } from '../functions/local/local-bus.js';
import { startLocalStack } from '../functions/local/local-stack.js';
import { batchWrite, profileItem } from './population.js';

export interface ReviewResult {
  users: number;
  due: number;
  itemsRead: number;
  ratio: number;
  seconds: number;
  fullScanItemsRead: number;
  fullScanSeconds: number;
  seedSeconds: number;
  reviewsPerActiveUser30d: number;
}

const SHARDS = 16;
const TODAY = '2026-11-02';

/** 2% due today; of the rest, half wait for a later review date and half sit at the base tier outside the index. */
function seedProfile(ruleset: Ruleset, i: number): UserProfile {
  const userId = `user-${String(i).padStart(6, '0')}`;
  const upper = ruleset.tiers[1]?.id ?? ruleset.baseTier;
  const base: UserProfile = { userId, tier: upper, tierSince: '2026-09-01T00:00:00.000Z', tierEnteredBy: 'promotion', version: 1, attributes: {} };
  if (i % 50 === 0) return { ...base, reviewAt: TODAY };
  if (i % 2 === 0) return { ...base, reviewAt: addDays(TODAY, 1 + (i % 30)) };
  return { ...base, tier: ruleset.baseTier, tierEnteredBy: 'start' };
}

async function fullScan(client: DynamoDBClient, tableName: string): Promise<{ itemsRead: number; due: number }> {
  let itemsRead = 0;
  let due = 0;
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: '#sk = :profile AND #reviewAt <= :today',
        ExpressionAttributeNames: { '#sk': TABLE_KEYS.sortKey, '#reviewAt': 'reviewAt' },
        ExpressionAttributeValues: { ':profile': { S: PROFILE_KEY }, ':today': { S: TODAY } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    itemsRead += page.ScannedCount ?? 0;
    due += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return { itemsRead, due };
}

export async function measureNightlyReview(ruleset: Ruleset, options: { users: number }): Promise<Omit<ReviewResult, 'reviewsPerActiveUser30d'>> {
  const dynalite = await startDynalite();
  try {
    const base = createDynamoTierStore({ client: dynalite.client, tableName: dynalite.tableName, shardCount: SHARDS, timeZone: ruleset.timezone });
    const seedStarted = performance.now();
    const profiles = Array.from({ length: options.users }, (_, i) => seedProfile(ruleset, i + 1));
    await batchWrite(
      dynalite.client,
      dynalite.tableName,
      profiles.map((p) => profileItem(p, SHARDS)),
    );
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    await base.setReviewCheckpoint(addDays(TODAY, -1));

    let itemsRead = 0;
    // What finding the due users costs: every index item listed, plus the checkpoint read.
    const store: DynamoTierStore = {
      ...base,
      async listDueForReview(date, shard, cursor) {
        const page = await base.listDueForReview(date, shard, cursor);
        itemsRead += page.userIds.length;
        return page;
      },
      async getReviewCheckpoint() {
        itemsRead += 1;
        return base.getReviewCheckpoint();
      },
    };
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => instantAtLocalTime(TODAY, 2 * 60, ruleset.timezone) },
    };
    const started = performance.now();
    const stats = await runReview(services, SHARDS, 8);
    const seconds = (performance.now() - started) / 1000;
    const expectedDue = profiles.filter((p) => p.reviewAt === TODAY).length;
    if (stats.usersDue !== expectedDue) throw new Error(`Bench: ${expectedDue} users were due, the review found ${stats.usersDue}`);

    // The scan runs after the review moved everyone's date, so it counts what it reads, not what it finds.
    const scanStarted = performance.now();
    const scan = await fullScan(dynalite.client, dynalite.tableName);
    const fullScanSeconds = (performance.now() - scanStarted) / 1000;
    return {
      users: options.users,
      due: stats.usersDue,
      itemsRead,
      ratio: itemsRead / stats.usersDue,
      seconds,
      fullScanItemsRead: scan.itemsRead,
      fullScanSeconds,
      seedSeconds,
    };
  } finally {
    await dynalite.close();
  }
}

/**
 * A user active every day (an app open, a lesson, two group messages) for `days` days, reviewed every night at
 * 02:00. Counts the reviews of the last 30 days, after the user has settled in their tier.
 */
export async function measureActiveUserReviews(ruleset: Ruleset, days = 60): Promise<{ reviewsLast30Days: number; tier: string }> {
  const zone = ruleset.timezone;
  const first = '2026-09-01';
  const clock = createVirtualClock(instantAtLocalTime(first, 0, zone));
  const stack = await startLocalStack({ ruleset, clock, batchWindowMs: 0 });
  clock.settleWith(() => stack.settle());
  const userId = 'steady-user';
  const reviewsByDay: number[] = [];
  let reviewedToday = 0;
  const list = stack.store.listDueForReview;
  // The review handler reads through this same store object, so the wrapper sees every listing.
  stack.store.listDueForReview = async (date, shard, cursor) => {
    const page = await list(date, shard, cursor);
    reviewedToday += page.userIds.filter((id) => id === userId).length;
    return page;
  };
  try {
    await stack.store.setReviewCheckpoint(addDays(first, -1));
    let sequence = 0;
    for (let day = 0; day < days; day++) {
      const date = addDays(first, day);
      await clock.advanceTo(instantAtLocalTime(date, 2 * 60, zone));
      reviewedToday = 0;
      await stack.runNightlyReview();
      await stack.settle();
      reviewsByDay.push(reviewedToday);
      await clock.advanceTo(instantAtLocalTime(date, 20 * 60, zone));
      const types = ['app.opened', 'content.completed', 'group.message', 'group.message'];
      const envelopes = types.map((type, i) =>
        localEnvelope({
          source: 'bench.producer',
          detailType: type,
          detail: {
            eventId: `steady-${++sequence}`,
            userId,
            type,
            occurredAt: new Date(clock.now().getTime() + i * 1000).toISOString(),
            properties: type === 'content.completed' ? { templateId: 'pm-basics-101' } : type === 'group.message' ? { groupId: 'group-active' } : {},
          },
          time: clock.now(),
        }),
      );
      await stack.bus.put(envelopes);
      await stack.settle();
    }
    const profile = (await stack.store.loadUser(userId, addDays(first, days))).profile;
    return { reviewsLast30Days: reviewsByDay.slice(-30).reduce((a, b) => a + b, 0), tier: profile?.tier ?? 'none' };
  } finally {
    await stack.close();
  }
}

/** Metrics that print nothing: Powertools reads POWERTOOLS_METRICS_DISABLED only when a Metrics is built. */
function quietMetrics(): Metrics {
  const previous = process.env['POWERTOOLS_METRICS_DISABLED'];
  process.env['POWERTOOLS_METRICS_DISABLED'] = 'true';
  try {
    return new Metrics({ namespace: 'StrataBench', serviceName: 'strata-review-bench' });
  } finally {
    if (previous === undefined) delete process.env['POWERTOOLS_METRICS_DISABLED'];
    else process.env['POWERTOOLS_METRICS_DISABLED'] = previous;
  }
}

export interface ShardThroughput {
  users: number;
  userConcurrency: number;
  seconds: number;
  usersPerSecondPerShard: number;
}

/**
 * One shard step of the review handler, as the state machine calls it: `users` profiles all due today in a
 * single shard, reviewed through the real DynamoDB store on dynalite (no-op journey and bus ports, as above), with
 * the handler's bound on users at once. Users per second per shard is what sizes `reviewShards` and the Map's
 * concurrency for a population.
 */
export async function measureShardThroughput(ruleset: Ruleset, options: { users: number; userConcurrency?: number }): Promise<ShardThroughput> {
  const dynalite = await startDynalite();
  try {
    const shardCount = 1;
    const store = createDynamoTierStore({ client: dynalite.client, tableName: dynalite.tableName, shardCount, timeZone: ruleset.timezone });
    const upper = ruleset.tiers[1]?.id ?? ruleset.baseTier;
    const profiles = Array.from(
      { length: options.users },
      (_, i): UserProfile => ({
        userId: `shard-user-${String(i).padStart(6, '0')}`,
        tier: upper,
        tierSince: '2026-09-01T00:00:00.000Z',
        tierEnteredBy: 'promotion',
        version: 1,
        attributes: {},
        reviewAt: TODAY,
      }),
    );
    await batchWrite(
      dynalite.client,
      dynalite.tableName,
      profiles.map((p) => profileItem(p, shardCount)),
    );
    await store.setReviewCheckpoint(addDays(TODAY, -1));
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => instantAtLocalTime(TODAY, 3 * 60 + 30, ruleset.timezone) },
    };
    const silent = new Logger({ serviceName: 'strata-review-bench', logLevel: 'SILENT' });
    const handler = createReviewHandler({
      services,
      shardCount,
      ...(options.userConcurrency !== undefined ? { userConcurrency: options.userConcurrency } : {}),
      logger: silent,
      metrics: quietMetrics(),
    });
    const started = performance.now();
    const result = (await handler({ step: 'shard', dates: [TODAY], shard: 0 })) as ShardReviewResult;
    const seconds = (performance.now() - started) / 1000;
    if (result.usersDue !== options.users || result.usersFailed !== 0) {
      throw new Error(`Bench: ${options.users} users were due in the shard, the review found ${result.usersDue} (${result.usersFailed} failed)`);
    }
    return {
      users: options.users,
      userConcurrency: options.userConcurrency ?? DEFAULT_USER_CONCURRENCY,
      seconds,
      usersPerSecondPerShard: options.users / seconds,
    };
  } finally {
    await dynalite.close();
  }
}
