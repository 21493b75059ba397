/**
 * Capacity units per event on dynalite: a population with 60 days of the example generator's history is seeded,
 * then the last day's events go through the real ingestEvent (with the real DynamoDB store), and every request's
 * ConsumedCapacity is attributed to the event that made it. Users run concurrently, so the attribution rides on
 * AsyncLocalStorage rather than on "the event in flight".
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type AttributeValue, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  type CapacityUnits,
  type StoreOperation,
  createDynamoTierStore,
  dayRetentionDays,
  itemSizeBytes,
  tableItemLayout,
} from '../functions/aws/dynamo-store.js';
import { createImportTable } from '../functions/aws/import-table.js';
import { importedDays } from '../functions/core/import-plan.js';
import { MemoryReplayStore } from '../functions/replay/memory-store.js';
import { localDate } from '../functions/core/dates.js';
import type { UserEvent } from '../functions/core/event.js';
import { type TierServices, eventKey, ingestEvent, windowStart } from '../functions/core/ingest.js';
import { dayIncrements } from '../functions/core/metrics.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { startDynalite } from '../functions/local/dynalite.js';
import { generateEvents } from '../functions/local/example-population.js';
import { seedHistory, verifySeed } from './population.js';
import { median, percentile } from './stats.js';

export interface CapacityFigures {
  events: number;
  wruMedian: number;
  wruP95: number;
  rruMedian: number;
  rruP95: number;
  wruMean: number;
  rruMean: number;
}

export interface CapacityResult {
  users: number;
  historyDays: number;
  seedSeconds: number;
  measuredEvents: number;
  noChange: CapacityFigures;
  tierChange: CapacityFigures;
  /** Mean units per event by store operation, over every measured event. */
  byOperation: Partial<Record<StoreOperation, CapacityUnits>>;
  /** Mean over every measured event: the figures the cost model uses. */
  meanPerEvent: CapacityUnits;
  tiers: Record<string, number>;
}

interface EventContext {
  now: Date;
  read: number;
  write: number;
}

export const POPULATION_START = '2026-09-01';

function figures(samples: EventContext[]): CapacityFigures {
  const writes = samples.map((s) => s.write);
  const reads = samples.map((s) => s.read);
  const mean = (values: number[]): number => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
  return {
    events: samples.length,
    wruMedian: median(writes),
    wruP95: percentile(writes, 95),
    rruMedian: median(reads),
    rruP95: percentile(reads, 95),
    wruMean: round3(mean(writes)),
    rruMean: round3(mean(reads)),
  };
}

const round3 = (value: number): number => Math.round(value * 1000) / 1000;

export async function measureCapacity(ruleset: Ruleset, options: { users: number; days?: number; seed?: number }): Promise<CapacityResult> {
  const days = options.days ?? 60;
  const events = generateEvents({ users: options.users, days, seed: options.seed ?? 7, start: POPULATION_START });
  const lastDate = localDate(events[events.length - 1]!.occurredAt, ruleset.timezone);
  const history = events.filter((e) => localDate(e.occurredAt, ruleset.timezone) < lastDate);
  const measured = events.filter((e) => localDate(e.occurredAt, ruleset.timezone) === lastDate);

  const context = new AsyncLocalStorage<EventContext>();
  const byOperation: Partial<Record<StoreOperation, CapacityUnits>> = {};
  const dynalite = await startDynalite();
  try {
    const store = createDynamoTierStore({
      client: dynalite.client,
      tableName: dynalite.tableName,
      shardCount: 16,
      timeZone: ruleset.timezone,
      onCapacity: (operation, units) => {
        const current = context.getStore();
        if (!current) return; // seeding, not an event
        current.read += units.read;
        current.write += units.write;
        const sum = (byOperation[operation] ??= { read: 0, write: 0 });
        sum.read += units.read;
        sum.write += units.write;
      },
    });
    const seedNow = new Date(Date.parse(measured[0]?.occurredAt ?? events[0]!.occurredAt) - 1000);
    const seeded = await seedHistory({ client: dynalite.client, tableName: dynalite.tableName, store, ruleset, events: history, now: seedNow });
    const sampleUser = history[history.length - 1]!.userId;
    await verifySeed(store, ruleset, history, sampleUser, windowStart(ruleset, seedNow));

    const services: TierServices = {
      ruleset,
      store,
      // Journeys and notices are not DynamoDB capacity; they are priced separately in the cost model.
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => context.getStore()?.now ?? seedNow },
    };
    const byUser = new Map<string, UserEvent[]>();
    for (const event of measured) byUser.set(event.userId, [...(byUser.get(event.userId) ?? []), event]);
    const queue = [...byUser.values()];
    const noChange: EventContext[] = [];
    const tierChange: EventContext[] = [];
    const worker = async (): Promise<void> => {
      // A user's events in order, as one SQS message group would see them; users in parallel.
      for (let list = queue.shift(); list; list = queue.shift()) {
        for (const event of list) {
          const sample: EventContext = { now: new Date(event.occurredAt), read: 0, write: 0 };
          const result = await context.run(sample, () => ingestEvent(services, event));
          (result.decision?.tierChanged ? tierChange : noChange).push(sample);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const all = [...noChange, ...tierChange];
    for (const units of Object.values(byOperation)) {
      units.read = round3(units.read / all.length);
      units.write = round3(units.write / all.length);
    }
    return {
      users: options.users,
      historyDays: days - 1,
      seedSeconds: Math.round(seeded.seconds * 10) / 10,
      measuredEvents: all.length,
      noChange: figures(noChange),
      tierChange: figures(tierChange),
      byOperation,
      meanPerEvent: {
        read: round3(all.reduce((s, e) => s + e.read, 0) / all.length),
        write: round3(all.reduce((s, e) => s + e.write, 0) / all.length),
      },
      tiers: seeded.tiers,
    };
  } finally {
    await dynalite.close();
  }
}

/** Events of each earlier window day written through the live write path (the rest are imported). */
const LIVE_TAIL = 16;

export interface HeavyUserResult {
  /** Events a day for the measured user, and how many such days were measured through ingestEvent. */
  eventsPerDay: number;
  days: number;
  /** Capacity per event through the real ingestEvent, every event of every heavy day. */
  wruP50: number;
  wruP99: number;
  /** The window read (loadUser) of each event; the event's whole read cost is rruEventP99. */
  rruP99: number;
  rruEventP99: number;
  /** The largest item in the table afterwards, by DynamoDB's size rules. */
  maxItemBytes: number;
  /**
   * The window query (loadUser) of a user heavy for the ruleset's whole longest window: `windowDays` days of
   * `windowEventsPerDay` events each (every day but the last imported, then its last 16 events through recordEvent;
   * the last day's through ingestEvent), p99 over the last day's events.
   */
  windowDays: number;
  windowEventsPerDay: number;
  rruP99Window: number;
  /** The extreme day: this many events for one user in one day, all through recordEvent, with concurrency. */
  extremeEvents: number;
  extremeApplied: number;
  extremeFailures: number;
  extremeMaxItemBytes: number;
}

/**
 * One user far heavier than anyone in the population: `eventsPerDay` events on each of `days` days, drawn from the
 * example generator's mix and sent through the real ingestEvent in order, as one user's stream is. Then an extreme
 * day of `extremeEvents` events for one user, written with 16 at a time (a bot), to show that every event is applied
 * and no item grows with the day.
 */
export async function measureHeavyUser(
  ruleset: Ruleset,
  options: { eventsPerDay: number; days: number; extremeEvents: number; windowEventsPerDay: number },
): Promise<HeavyUserResult> {
  const template = generateEvents({ users: 400, days: 30, seed: 11, start: POPULATION_START });
  const userId = 'heavy-5f0c2a8e-3b1d-4c7a-9e2f';
  const dynalite = await startDynalite();
  const context = new AsyncLocalStorage<EventContext & { loadRead: number }>();
  /** The simulated time: each event a second after it happened, as in production, for ingest and the store alike. */
  const now = (): Date => context.getStore()?.now ?? new Date(`${POPULATION_START}T00:00:00Z`);
  try {
    const store = createDynamoTierStore({
      client: dynalite.client,
      tableName: dynalite.tableName,
      shardCount: 16,
      timeZone: ruleset.timezone,
      retentionDays: dayRetentionDays(ruleset.maxWindowDays),
      // The store's clock (guard expiry, roll-up timing, which days may hold an attribute overlay) is the same.
      now,
      onCapacity: (operation, units) => {
        const current = context.getStore();
        if (!current) return;
        current.read += units.read;
        current.write += units.write;
        if (operation === 'loadUser') current.loadRead += units.read;
      },
    });
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now },
    };
    const samples: Array<EventContext & { loadRead: number }> = [];
    const startMs = Date.parse(`${POPULATION_START}T01:00:00Z`);
    for (let day = 0; day < options.days; day++) {
      for (let i = 0; i < options.eventsPerDay; i++) {
        const source = template[(day * options.eventsPerDay + i) % template.length]!;
        const occurredAt = new Date(startMs + day * 86_400_000 + Math.floor((i * 50_400_000) / options.eventsPerDay)).toISOString();
        const event: UserEvent = { ...source, userId, eventId: `heavy-${day}-${i}`, occurredAt };
        const sample = { now: new Date(Date.parse(occurredAt) + 1000), read: 0, write: 0, loadRead: 0 };
        await context.run(sample, () => ingestEvent(services, event));
        samples.push(sample);
      }
    }
    const maxItemBytes = await largestItem(dynalite.client, dynalite.tableName);

    // Heavy for the whole window: the earlier days through the store's own write path (16 at a time), the last
    // day through ingest, whose window read is what is measured.
    const windowUser = 'heavy-window-7d41c9e0';
    const windowDays = ruleset.maxWindowDays;
    const eventOn = (day: number, i: number): UserEvent => {
      const source = template[(day * options.windowEventsPerDay + i) % template.length]!;
      const occurredAt = new Date(startMs + day * 86_400_000 + Math.floor((i * 50_400_000) / options.windowEventsPerDay)).toISOString();
      return { ...source, userId: windowUser, eventId: `window-${day}-${i}`, occurredAt };
    };
    // Most of each earlier day as `strata import` writes it (the replay store's days, whole items in batches, in the
    // layout live writes leave: tableItemLayout), which takes seconds rather than the minutes of ~90,000 single
    // writes. The last LIVE_TAIL events of each day then go through the live write path, 16 at a time, so the day
    // items also carry what live heavy writes leave behind (pending markers, hourly signals).
    const liveTail = Math.min(LIVE_TAIL, options.windowEventsPerDay);
    const imported = options.windowEventsPerDay - liveTail;
    const replayed = new MemoryReplayStore(16);
    for (let day = 0; day < windowDays - 1; day++) {
      for (let i = 0; i < imported; i++) {
        const event = eventOn(day, i);
        await replayed.recordEvent(windowUser, eventKey(event.eventId), dayIncrements(ruleset, event));
      }
    }
    const lastDayStart = new Date(Date.parse(eventOn(windowDays - 1, 0).occurredAt) - 1000);
    const layout = tableItemLayout({
      shardCount: 16,
      timeZone: ruleset.timezone,
      retentionDays: dayRetentionDays(ruleset.maxWindowDays),
      now: () => lastDayStart,
    });
    const stored = replayed.storedUser(windowUser);
    const importItems = stored
      ? importedDays(stored.days.values(), stored.guards).flatMap((day) => {
          const dayItem = layout.dayItem(windowUser, day);
          return [...(dayItem ? [dayItem] : []), ...layout.guardItems(windowUser, day)];
        })
      : [];
    await createImportTable({ client: dynalite.client, tableName: dynalite.tableName }).writeItems(importItems);
    let seeded = 0;
    const seedWorker = async (): Promise<void> => {
      for (let n = seeded++; n < (windowDays - 1) * liveTail; n = seeded++) {
        const event = eventOn(Math.floor(n / liveTail), imported + (n % liveTail));
        await store.recordEvent(windowUser, eventKey(event.eventId), dayIncrements(ruleset, event));
      }
    };
    await Promise.all(Array.from({ length: 16 }, seedWorker));
    // The seeded days must be what the whole history replayed holds, or the read measured is not of that user.
    for (let day = 0; day < windowDays - 1; day++) {
      for (let i = imported; i < options.windowEventsPerDay; i++) {
        const event = eventOn(day, i);
        await replayed.recordEvent(windowUser, eventKey(event.eventId), dayIncrements(ruleset, event));
      }
    }
    const firstDay = localDate(eventOn(0, 0).occurredAt, ruleset.timezone);
    const countersByDay = (buckets: ReadonlyArray<{ date: string; counters: Record<string, number> }>) =>
      JSON.stringify(
        buckets.map(({ date, counters }) => [
          date,
          Object.entries(counters)
            .map(([id, n]) => [id, Math.round(n * 100)])
            .sort(),
        ]),
      );
    const seededDays = countersByDay((await store.loadUser(windowUser, firstDay)).buckets);
    if (seededDays !== countersByDay((await replayed.loadUser(windowUser, firstDay)).buckets)) {
      throw new Error('heavy user bench: the seeded window differs from the replayed history');
    }
    const windowSamples: Array<EventContext & { loadRead: number }> = [];
    for (let i = 0; i < options.windowEventsPerDay; i++) {
      const event = eventOn(windowDays - 1, i);
      const sample = { now: new Date(Date.parse(event.occurredAt) + 1000), read: 0, write: 0, loadRead: 0 };
      await context.run(sample, () => ingestEvent(services, event));
      windowSamples.push(sample);
    }

    // The extreme day: one user, one day, all at once (16 in flight), each event once.
    const extremeUser = 'bot-guest';
    const date = '2026-10-01';
    let extremeFailures = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < options.extremeEvents; i = next++) {
        try {
          await store.recordEvent(extremeUser, `bot-${i}`, { date, counters: { n_bot: 1 }, signals: [] });
        } catch {
          extremeFailures += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const { buckets } = await store.loadUser(extremeUser, date);
    return {
      eventsPerDay: options.eventsPerDay,
      days: options.days,
      wruP50: median(samples.map((s) => s.write)),
      wruP99: percentile(
        samples.map((s) => s.write),
        99,
      ),
      rruP99: percentile(
        samples.map((s) => s.loadRead),
        99,
      ),
      rruEventP99: percentile(
        samples.map((s) => s.read),
        99,
      ),
      maxItemBytes,
      windowDays,
      windowEventsPerDay: options.windowEventsPerDay,
      rruP99Window: percentile(
        windowSamples.map((s) => s.loadRead),
        99,
      ),
      extremeEvents: options.extremeEvents,
      extremeApplied: buckets[0]?.counters['n_bot'] ?? 0,
      extremeFailures,
      extremeMaxItemBytes: await largestItem(dynalite.client, dynalite.tableName),
    };
  } finally {
    await dynalite.close();
  }
}

async function largestItem(client: DynamoDBClient, tableName: string): Promise<number> {
  let largest = 0;
  let exclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}) }));
    for (const item of page.Items ?? []) largest = Math.max(largest, itemSizeBytes(item));
    exclusiveStartKey = page.LastEvaluatedKey;
  } while (exclusiveStartKey);
  return largest;
}
