/**
 * Differential property of the day layout: whatever a user's events (busy days that turn heavy, quiet ones, signals
 * at any second, redeliveries, writes in flight together, days out of order), the DynamoDB store on dynalite, the
 * in-memory replay store, `strata import`'s items of that replay (tableItemLayout) and the same days as the store's
 * earlier layout wrote them (items already in tables) read back the same buckets:
 * the same counters and the same signals, which is all the rules and the journeys read. Heavy days keep their
 * hourly signals as one byte each in binary sets, and a write to a later day takes the pending markers off earlier days; neither may
 * change what is read, nor let an event count twice.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDynamoTierStore, tableItemLayout } from '../../functions/aws/dynamo-store.js';
import { addDays } from '../../functions/core/dates.js';
import { importedDays } from '../../functions/core/import-plan.js';
import { type DayIncrement, DEFAULT_LIGHT_DAY_EVENTS, HEAVY_DAY_SIGNAL_SECONDS, coarsenSignal } from '../../functions/core/metrics.js';
import type { DayBucket } from '../../functions/core/state.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { earlierLayoutItem } from '../helpers/earlier-day-layout.js';
import { propertyRuns } from '../helpers/property-runs.js';

const dynalite = useDynalite();
const FIRST_DAY = '2026-03-10';
const FILTERS = ['sAbCdEfGhIj', 'sKlMnOpQrSt', 'sUvWxYz0123'];
/** Counter ids of the form the ruleset generates (`n_`/`s_` and 8 characters), which the store shortens. */
const EVENTS = 'n_events_0';
const AMOUNT = 's_amount_0';

const eventSpec = fc.record({
  // Half the events on the first day, so that it turns heavy in most cases.
  day: fc.constantFrom(0, 0, 0, 1, 2, 3),
  second: fc.integer({ min: 0, max: 86_399 }),
  filters: fc.subarray([0, 1, 2]),
  amount: fc.integer({ min: 0, max: 500 }),
  deliveries: fc.constantFrom(1, 1, 1, 2),
});
const caseSpec = fc.record({
  zone: fc.constantFrom('UTC', 'Asia/Kolkata', 'America/New_York'),
  // Busy days: most cases have a day past the 16 keys a light day holds (`size: 'max'`, or fast-check keeps arrays
  // near their minimum length and no day turns heavy).
  events: fc.array(eventSpec, { minLength: 24, maxLength: 70, size: 'max' }),
  inFlight: fc.constantFrom(1, 1, 4, 8),
});

const zoneOffsetSeconds: Record<string, number> = { UTC: 0, 'Asia/Kolkata': 19_800, 'America/New_York': -14_400 };

type EventSpec = typeof eventSpec extends fc.Arbitrary<infer T> ? T : never;

function incrementOf(event: EventSpec, zone: string): DayIncrement {
  const date = addDays(FIRST_DAY, event.day);
  // A local second of that local day (zones away from DST edges in March 10-13 for New York: -4 h all along).
  const epoch = Date.parse(`${date}T00:00:00Z`) / 1000 + event.second - zoneOffsetSeconds[zone]!;
  return {
    date,
    counters: { [EVENTS]: 1, ...(event.amount > 0 ? { [AMOUNT]: event.amount } : {}) },
    signals: event.filters.map((i: number) => `${FILTERS[i]}@${epoch}`),
  };
}

/**
 * Buckets as the rules and journeys read them. With writes in flight together, which events of a busy day came
 * while it was still light (exact signals) depends on their order; then a heavy day's signals compare by the hour.
 */
const readable = (buckets: readonly DayBucket[], heavyDates: ReadonlySet<string> = new Set()) =>
  buckets.map(({ date, counters, signals }) => {
    const read = (signals ?? []).map((signal) => (heavyDates.has(date) ? coarsenSignal(signal, HEAVY_DAY_SIGNAL_SECONDS) : signal));
    return { date, counters, signals: [...new Set(read)].sort() };
  });

describe('the day layout, live, in memory and imported', () => {
  it('reads back the same counters and signals', async () => {
    let caseNumber = 0;
    await fc.assert(
      fc.asyncProperty(caseSpec, async ({ zone, events, inFlight }) => {
        caseNumber += 1;
        const user = `user-${caseNumber}`;
        const tableName = await dynalite.freshTable();
        const live = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 4, timeZone: zone });
        const memory = new MemoryReplayStore(4);
        const deliveries = events.flatMap((event, i) =>
          Array.from({ length: event.deliveries }, () => ({ key: `k${i}`, increment: incrementOf(event, zone) })),
        );
        for (const { key, increment } of deliveries) await memory.recordEvent(user, key, increment);
        let next = 0;
        const worker = async () => {
          for (let i = next++; i < deliveries.length; i = next++) await live.recordEvent(user, deliveries[i]!.key, deliveries[i]!.increment);
        };
        await Promise.all(Array.from({ length: inFlight }, worker));

        const stored = memory.storedUser(user)!;
        const layout = tableItemLayout({ shardCount: 4, timeZone: zone, now: () => new Date(`${addDays(FIRST_DAY, 4)}T12:00:00Z`) });
        for (const day of importedDays(stored.days.values(), stored.guards)) {
          const item = layout.dayItem('imported', day);
          if (item) await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: item }));
          await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: earlierLayoutItem('earlier', day) }));
        }

        const eventsByDate = new Map<string, number>();
        for (const event of events) eventsByDate.set(addDays(FIRST_DAY, event.day), (eventsByDate.get(addDays(FIRST_DAY, event.day)) ?? 0) + 1);
        const heavyDates = new Set(inFlight > 1 ? [...eventsByDate].filter(([, n]) => n > DEFAULT_LIGHT_DAY_EVENTS).map(([date]) => date) : []);
        const expected = readable((await memory.loadUser(user, FIRST_DAY)).buckets, heavyDates);
        expect(readable((await live.loadUser(user, FIRST_DAY)).buckets, heavyDates)).toEqual(expected);
        const replayed = readable((await memory.loadUser(user, FIRST_DAY)).buckets);
        expect(readable((await live.loadUser('imported', FIRST_DAY)).buckets)).toEqual(replayed);
        expect(readable((await live.loadUser('earlier', FIRST_DAY)).buckets)).toEqual(replayed);
        // Each event once, whatever its deliveries.
        expect(expected.reduce((sum, bucket) => sum + (bucket.counters[EVENTS] ?? 0), 0)).toBe(events.length);
      }),
      { numRuns: propertyRuns(12), endOnFailure: true },
    );
  }, 600_000);
});
