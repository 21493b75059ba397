/**
 * Differential property of the roll-up: whatever a heavy user's history (busy days, redeliveries, late events and
 * resends to days already rolled up, writes in flight beside a roll-up) and wherever a roll-up stops (a crash before
 * any of its writes: seal, segment, drain, delete), every window read of the DynamoDB store on dynalite returns what
 * the in-memory replay store holds: the same counters and signals per day, each event counted once. The next read
 * finishes a stopped roll-up, and drained day items go once their guards can no longer be needed.
 */
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { SEGMENT_DAYS, segmentFirstDate, segmentKey, userKey } from '../../functions/aws/table-schema.js';
import { addDays } from '../../functions/core/dates.js';
import { type DayIncrement, DEFAULT_LIGHT_DAY_EVENTS, HEAVY_DAY_SIGNAL_SECONDS, coarsenSignal } from '../../functions/core/metrics.js';
import type { DayBucket } from '../../functions/core/state.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { propertyRuns } from '../helpers/property-runs.js';

const dynalite = useDynalite();
/** The first day of a segment period, so that the history covers whole periods and a part of the next. */
const FIRST_DAY = segmentFirstDate('2026-03-10');
const DAYS = 20;
const FILTERS = ['sAbCdEfGhIj', 'sKlMnOpQrSt'];
const EVENTS = 'n_events_0';
const AMOUNT = 's_amount_0';

const eventSpec = fc.record({
  second: fc.integer({ min: 0, max: 86_399 }),
  filters: fc.subarray([0, 1]),
  // Quarters: exact in binary, so the replay store's sums compare with DynamoDB's decimal ones.
  quarters: fc.integer({ min: 0, max: 400 }),
  redelivered: fc.boolean(),
});
const lateSpec = fc.record({
  day: fc.integer({ min: 0, max: DAYS - 1 }),
  event: eventSpec,
  /** A resend of an earlier event (its key) with this day's date, or a new event. */
  resendOf: fc.option(fc.nat(), { nil: undefined }),
});
const caseSpec = fc.record({
  // Each day past the keys a light day holds, so that it turns heavy.
  perDay: fc.array(fc.integer({ min: DEFAULT_LIGHT_DAY_EVENTS + 1, max: DEFAULT_LIGHT_DAY_EVENTS + 6 }), { minLength: DAYS, maxLength: DAYS }),
  events: fc.array(eventSpec, { minLength: 30, maxLength: 30 }),
  late: fc.array(lateSpec, { minLength: 4, maxLength: 24 }),
  /** Roll-up writes after which a crash stops the roll-up (counted over the whole case). */
  crashes: fc.uniqueArray(fc.integer({ min: 1, max: 50 }), { maxLength: 5 }),
  readEvery: fc.constantFrom(1, 2, 3),
  inFlight: fc.constantFrom(1, 4),
});

function incrementOf(date: string, event: typeof eventSpec extends fc.Arbitrary<infer T> ? T : never): DayIncrement {
  const epoch = Date.parse(`${date}T00:00:00Z`) / 1000 + event.second;
  return {
    date,
    counters: { [EVENTS]: 1, ...(event.quarters > 0 ? { [AMOUNT]: event.quarters / 4 } : {}) },
    signals: event.filters.map((i) => `${FILTERS[i]}@${epoch}`),
  };
}

/** Buckets as the rules read them: a busy day's signals by the hour (which events came while it was light varies). */
const readable = (buckets: readonly DayBucket[]) =>
  buckets.map(({ date, counters, signals }) => ({
    date,
    counters: Object.fromEntries(Object.entries(counters).filter(([, value]) => value !== 0)),
    signals: [...new Set((signals ?? []).map((signal) => coarsenSignal(signal, HEAVY_DAY_SIGNAL_SECONDS)))].sort(),
  }));

describe('rolling heavy days up into segments', () => {
  it('reads the same days as the replay store at every point, crashes included', async () => {
    let caseNumber = 0;
    await fc.assert(
      fc.asyncProperty(caseSpec, async ({ perDay, events, late, crashes, readEvery, inFlight }) => {
        caseNumber += 1;
        const user = `heavy-${caseNumber}`;
        const tableName = await dynalite.freshTable();
        let now = new Date(`${addDays(FIRST_DAY, DAYS)}T12:00:00Z`);
        let steps = 0;
        const crashAt = new Set(crashes);
        const failures: unknown[] = [];
        const live = createDynamoTierStore({
          client: dynalite.client,
          tableName,
          shardCount: 4,
          rollUpReadBytes: 0,
          now: () => now,
          onRollUpFailure: (_userId, error) => {
            if (!String(error).includes('crash before roll-up write')) failures.push(error);
          },
          onRollUpStep: () => {
            steps += 1;
            if (crashAt.has(steps)) throw new Error(`crash before roll-up write ${steps}`);
          },
        });
        const memory = new MemoryReplayStore(4);
        /** A window read, which may roll up (and crash); what it returns must be what the replay store holds. */
        const readAndCompare = async (): Promise<void> => {
          // From the first day, and from inside a segment (a window may start mid-period).
          for (const from of [FIRST_DAY, addDays(FIRST_DAY, 3), addDays(FIRST_DAY, SEGMENT_DAYS + 5)]) {
            const expected = readable((await memory.loadUser(user, from)).buckets);
            // A crash stops the roll-up, never the read: every read is compared.
            expect(readable((await live.loadUser(user, from)).buckets)).toEqual(expected);
          }
        };
        const keys: Array<{ key: string; increment: DayIncrement }> = [];
        for (let day = 0; day < DAYS; day++) {
          const date = addDays(FIRST_DAY, day);
          const deliveries: Array<{ key: string; increment: DayIncrement }> = [];
          for (let i = 0; i < perDay[day]!; i++) {
            const event = events[(day * 7 + i) % events.length]!;
            const delivery = { key: `k${day}-${i}`, increment: incrementOf(date, event) };
            keys.push(delivery);
            deliveries.push(delivery, ...(event.redelivered ? [delivery] : []));
          }
          for (const { key, increment } of deliveries) await memory.recordEvent(user, key, increment);
          // The first keys go in order, so that the day turns heavy the same way in both stores.
          for (const { key, increment } of deliveries.slice(0, DEFAULT_LIGHT_DAY_EVENTS)) await live.recordEvent(user, key, increment);
          let next = DEFAULT_LIGHT_DAY_EVENTS;
          const worker = async () => {
            for (let i = next++; i < deliveries.length; i = next++) await live.recordEvent(user, deliveries[i]!.key, deliveries[i]!.increment);
          };
          await Promise.all(Array.from({ length: inFlight }, worker));
          if (day % readEvery === 0) await readAndCompare();
        }
        await readAndCompare();

        // Late events and resends (days all heavy by now), in flight beside roll-ups and their crashes.
        const lateDeliveries = late.map(({ day, event, resendOf }) => {
          const date = addDays(FIRST_DAY, day);
          return resendOf === undefined
            ? { key: `late-${day}-${event.second}`, increment: incrementOf(date, event) }
            : { key: keys[resendOf % keys.length]!.key, increment: { ...keys[resendOf % keys.length]!.increment, date } };
        });
        for (const { key, increment } of lateDeliveries) await memory.recordEvent(user, key, increment);
        let next = 0;
        const worker = async () => {
          for (let i = next++; i < lateDeliveries.length; i = next++) {
            await live.recordEvent(user, lateDeliveries[i]!.key, lateDeliveries[i]!.increment);
            if (i % 3 === 0) await live.loadUser(user, FIRST_DAY);
          }
        };
        await Promise.all(Array.from({ length: inFlight }, worker));
        await readAndCompare();
        await readAndCompare();

        // Long after: drained day items go, and the days still read the same.
        now = new Date(now.getTime() + 40 * 86_400_000);
        await readAndCompare();
        await readAndCompare();
        crashAt.clear();
        await readAndCompare();
        await readAndCompare();
        const { Items: items = [] } = await dynalite.client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :day)',
            ExpressionAttributeValues: { ':pk': { S: userKey(user) }, ':day': { S: 'DAY#' } },
          }),
        );
        // No day is left sealed under a stored segment (the reads finished every roll-up they found).
        const segments = new Set(items.map((item) => item['sk']!.S!).filter((sk) => sk.endsWith('~')));
        const sealedUnderSegment = items.filter((item) => {
          const date = item['sk']!.S!.slice('DAY#'.length);
          return item['rs'] !== undefined && segments.has(segmentKey(addDays(segmentFirstDate(date), SEGMENT_DAYS - 1)));
        });
        expect(sealedUnderSegment).toEqual([]);
        expect(failures).toEqual([]);
        // Each event once, whatever its deliveries.
        const expected = readable((await memory.loadUser(user, FIRST_DAY)).buckets);
        const total = expected.reduce((sum, bucket) => sum + (bucket.counters[EVENTS] ?? 0), 0);
        expect(total).toBe(keys.length + new Set(late.filter((l) => l.resendOf === undefined).map((l) => `${l.day}-${l.event.second}`)).size);
        expect(items.some((item) => item['sk']!.S!.endsWith('~'))).toBe(true);
      }),
      { numRuns: propertyRuns(6), endOnFailure: true },
    );
  }, 900_000);
});
