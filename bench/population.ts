/**
 * Seeds dynalite with a realistic population quickly. Replaying 60 days of the example generator through ingest
 * would take ~2.3 requests per event (about 280k events for 10,000 users), so instead the history is folded into
 * the items ingest would have left behind: one day item per user and day (written 25 at a time with
 * BatchWriteItem) and one profile per user, decided by the core on that history. `verifySeed` reads a user back
 * through the real store so that the seeded layout cannot drift from the store's own.
 */
import { type AttributeValue, BatchWriteItemCommand, type DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import type { DynamoTierStore } from '../functions/aws/dynamo-store.js';
import { PROFILE_KEY, TABLE_KEYS, dayKey, reviewPartition, userKey } from '../functions/aws/table-schema.js';
import { addDays, localDate } from '../functions/core/dates.js';
import { decideTier } from '../functions/core/decide.js';
import type { UserEvent } from '../functions/core/event.js';
import { applyConsentEvent } from '../functions/core/consent.js';
import { eventKey } from '../functions/core/ingest.js';
import { applyEventToAttributes, dayIncrements, factsAt } from '../functions/core/metrics.js';
import { qualify } from '../functions/core/qualify.js';
import { nextReviewDate } from '../functions/core/review-date.js';
import { reviewShard } from '../functions/core/review.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { type DayBucket, type UserProfile, newProfile } from '../functions/core/state.js';

/** The store keeps these day-item attributes (DAY_ATTRIBUTES in dynamo-store.ts); verifySeed checks the match. */
const DAY_EVENT_KEYS = 'ids';
const DAY_SIGNALS = 'sig';
const BATCH = 25;

export interface SeededDay extends DayBucket {
  eventKeys: string[];
}

/** Folds events into per-user day buckets exactly as recordEvent would accumulate them. */
export function foldHistory(ruleset: Ruleset, events: readonly UserEvent[]): Map<string, Map<string, SeededDay>> {
  const users = new Map<string, Map<string, SeededDay>>();
  for (const event of events) {
    const increment = dayIncrements(ruleset, event);
    let days = users.get(event.userId);
    if (!days) users.set(event.userId, (days = new Map()));
    let day = days.get(increment.date);
    if (!day) days.set(increment.date, (day = { date: increment.date, counters: {}, eventKeys: [] }));
    day.eventKeys.push(eventKey(event.eventId));
    for (const [id, amount] of Object.entries(increment.counters)) day.counters[id] = (day.counters[id] ?? 0) + amount;
    if (increment.signals.length > 0) day.signals = [...new Set([...(day.signals ?? []), ...increment.signals])];
  }
  return users;
}

function dayItem(userId: string, day: SeededDay): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
    [TABLE_KEYS.sortKey]: { S: dayKey(day.date) },
    [DAY_EVENT_KEYS]: { SS: [...new Set(day.eventKeys)] },
    // Roughly the store's expiry (local midnight 400 days on); only its size matters here.
    [TABLE_KEYS.timeToLiveAttribute]: { N: String(Math.floor(Date.parse(`${addDays(day.date, 400)}T00:00:00Z`) / 1000)) },
  };
  for (const [id, amount] of Object.entries(day.counters)) item[id] = { N: String(amount) };
  if (day.signals?.length) item[DAY_SIGNALS] = { SS: day.signals };
  return item;
}

/** BatchWriteItem in chunks of 25 with `concurrency` requests in flight, re-sending anything unprocessed. */
export async function batchWrite(
  client: DynamoDBClient,
  tableName: string,
  items: Array<Record<string, AttributeValue>>,
  concurrency = 8,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const chunk = items.slice(next, next + BATCH);
      next += BATCH;
      let requests: WriteRequest[] = chunk.map((Item) => ({ PutRequest: { Item } }));
      while (requests.length > 0) {
        const output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
        requests = output.UnprocessedItems?.[tableName] ?? [];
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** The profile ingest would have stored after this history (promotions only: no nightly review ran). */
export async function decideSeedProfile(
  ruleset: Ruleset,
  userId: string,
  events: readonly UserEvent[],
  buckets: readonly DayBucket[],
  now: Date,
): Promise<UserProfile> {
  let profile = newProfile(userId, ruleset.baseTier, new Date(events[0]?.occurredAt ?? now));
  for (const event of events) {
    const attributes = applyEventToAttributes(ruleset, profile, event);
    if (attributes) profile = { ...profile, attributes };
    profile = applyConsentEvent(profile, event) ?? profile;
  }
  const today = localDate(now, ruleset.timezone);
  const qualification = await qualify(ruleset, factsAt(ruleset, buckets, profile.attributes, today));
  const decision = await decideTier({ ruleset, profile, qualification, now, trigger: 'event' });
  const { pendingJourney: _j, pendingNotices: _n, pendingHistory: _h, outboxVersion: _v, outboxRetryAt: _r, ...settled } = decision.profile;
  const reviewAt = await nextReviewDate(ruleset, settled, buckets, now);
  return { ...settled, ...(reviewAt ? { reviewAt } : {}), version: 0 };
}

export interface SeedResult {
  users: number;
  dayItems: number;
  seconds: number;
  tiers: Record<string, number>;
}

/** Writes the folded history and the decided profiles; `now` is the end of the history. */
export async function seedHistory(options: {
  client: DynamoDBClient;
  tableName: string;
  store: DynamoTierStore;
  ruleset: Ruleset;
  events: readonly UserEvent[];
  now: Date;
}): Promise<SeedResult> {
  const started = performance.now();
  const { ruleset, events } = options;
  const folded = foldHistory(ruleset, events);
  const byUser = new Map<string, UserEvent[]>();
  for (const event of events) byUser.set(event.userId, [...(byUser.get(event.userId) ?? []), event]);
  const items: Array<Record<string, AttributeValue>> = [];
  for (const [userId, days] of folded) for (const day of days.values()) items.push(dayItem(userId, day));
  await batchWrite(options.client, options.tableName, items);
  const tiers: Record<string, number> = {};
  const userIds = [...folded.keys()];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < userIds.length; i = next++) {
      const userId = userIds[i]!;
      const buckets = [...folded.get(userId)!.values()].sort((a, b) => (a.date < b.date ? -1 : 1));
      const profile = await decideSeedProfile(ruleset, userId, byUser.get(userId)!, buckets, options.now);
      tiers[profile.tier] = (tiers[profile.tier] ?? 0) + 1;
      if (!(await options.store.saveProfile(profile, 0))) throw new Error(`Bench: the profile of ${userId} was already seeded`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return { users: userIds.length, dayItems: items.length, seconds: (performance.now() - started) / 1000, tiers };
}

/** Reads one seeded user back through the store: the buckets must be exactly the folded ones. */
export async function verifySeed(
  store: DynamoTierStore,
  ruleset: Ruleset,
  events: readonly UserEvent[],
  userId: string,
  fromDate: string,
): Promise<void> {
  const expected = [
    ...(foldHistory(
      ruleset,
      events.filter((e) => e.userId === userId),
    )
      .get(userId)
      ?.values() ?? []),
  ]
    .filter((day) => day.date >= fromDate)
    .map(({ date, counters, signals }) => ({ date, counters, ...(signals ? { signals: [...signals].sort() } : {}) }))
    .sort((a, b) => (a.date < b.date ? -1 : 1));
  const { profile, buckets } = await store.loadUser(userId, fromDate);
  const actual = buckets.map(({ date, counters, signals }) => ({ date, counters, ...(signals ? { signals: [...signals].sort() } : {}) }));
  if (!profile || JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`Bench: the seeded items of ${userId} do not read back as the store's own (the day-item layout changed?)`);
  }
}

/** A profile item as saveProfile writes it, for bulk seeding of the review benchmark. */
export function profileItem(profile: UserProfile, shardCount: number): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [TABLE_KEYS.partitionKey]: { S: userKey(profile.userId) },
    [TABLE_KEYS.sortKey]: { S: PROFILE_KEY },
    tier: { S: profile.tier },
    tierSince: { S: profile.tierSince },
    tierEnteredBy: { S: profile.tierEnteredBy },
    version: { N: String(profile.version) },
    attributes: { M: {} },
  };
  if (profile.reviewAt) {
    item['reviewAt'] = { S: profile.reviewAt };
    item[TABLE_KEYS.reviewPartitionKey] = { S: reviewPartition(profile.reviewAt, reviewShard(profile.userId, shardCount)) };
  }
  return item;
}
