/**
 * Capacity units per event on dynalite: a population with 60 days of the example generator's history is seeded,
 * then the last day's events go through the real ingestEvent (with the real DynamoDB store), and every request's
 * ConsumedCapacity is attributed to the event that made it. Users run concurrently, so the attribution rides on
 * AsyncLocalStorage rather than on "the event in flight".
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type CapacityUnits, type StoreOperation, createDynamoTierStore } from '../functions/aws/dynamo-store.js';
import { localDate } from '../functions/core/dates.js';
import type { UserEvent } from '../functions/core/event.js';
import { type TierServices, ingestEvent, windowStart } from '../functions/core/ingest.js';
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
      meanPerEvent: { read: round3(all.reduce((s, e) => s + e.read, 0) / all.length), write: round3(all.reduce((s, e) => s + e.write, 0) / all.length) },
      tiers: seeded.tiers,
    };
  } finally {
    await dynalite.close();
  }
}
