/**
 * The replay store hands out what it keeps without rebuilding it on every read (functions/replay/memory-store.ts):
 * each day's bucket and key list, the days in date order, and a user's window copies, kept until something they show
 * changes. Whatever the writes (events on light days that turn heavy, resends settled across days, sends, days
 * added out of order), every read must show exactly what the stored days hold at that moment, as a read that built
 * it all afresh would, and an event key is known exactly while a day or guard holds it. The same for the shortcuts
 * beside it: copyToSettle's single pass against the list-and-sort it replaced, tier history kept in version order,
 * and the review-date search given the decision's qualified tier.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays } from '../../functions/core/dates.js';
import { RESEND_HORIZON_DAYS, copyToSettle } from '../../functions/core/ingest.js';
import { DEFAULT_LIGHT_DAY_EVENTS, factsAt } from '../../functions/core/metrics.js';
import type { WindowCopies } from '../../functions/core/ports.js';
import { qualify } from '../../functions/core/qualify.js';
import { nextReviewDate } from '../../functions/core/review-date.js';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { type DayBucket, type HistoryEntry, newProfile } from '../../functions/core/state.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';

const USER = 'u-views';
const FIRST_DAY = '2026-03-10';
const DATES = [0, 1, 2, 3, 4, 5].map((day) => addDays(FIRST_DAY, day));
const COUNTER = 'n_events_0';

/** The window as a read built from scratch would show it, from what the store keeps. */
function freshWindow(store: MemoryReplayStore, fromDate: string): { buckets: DayBucket[]; copies: WindowCopies } {
  const days = [...(store.storedUser(USER)?.days.values() ?? [])].filter((day) => day.date >= fromDate).sort((a, b) => (a.date < b.date ? -1 : 1));
  const lightKeys: Record<string, string[]> = {};
  const heavyDates: string[] = [];
  for (const day of days) {
    if (day.heavy) heavyDates.push(day.date);
    else if (day.eventKeys.size > 0) lightKeys[day.date] = [...day.eventKeys];
  }
  const buckets = days.map((day): DayBucket => {
    const bucket: DayBucket = { date: day.date, counters: { ...day.counters } };
    if (day.signals) bucket.signals = [...day.signals];
    if (day.sends !== undefined) bucket.sends = day.sends;
    return bucket;
  });
  return { buckets, copies: { lightKeys, heavyDates } };
}

const operation = fc.oneof(
  // Many events on few keys and dates: days pass the light-day limit, and keys come back on other dates.
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('event' as const), key: fc.integer({ min: 0, max: 40 }), date: fc.constantFrom(...DATES) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      key: fc.integer({ min: 0, max: 40 }),
      date: fc.constantFrom(...DATES),
      on: fc.constantFrom('light' as const, 'heavy' as const),
      claim: fc.constantFrom(...DATES),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('send' as const), id: fc.integer({ min: 0, max: 5 }), date: fc.constantFrom(...DATES) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), from: fc.constantFrom(DATES[0]!, DATES[0]!, DATES[2]!, DATES[4]!) }) },
);

describe('the replay store, read after any writes', () => {
  it('shows the buckets, days in order and window copies a fresh read would', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 120 }), async (operations) => {
        const store = new MemoryReplayStore(4);
        const check = async (fromDate: string): Promise<void> => {
          const read = await store.loadUser(USER, fromDate);
          const fresh = freshWindow(store, fromDate);
          expect(read.buckets).toEqual(fresh.buckets);
          expect({ lightKeys: { ...read.copies!.lightKeys }, heavyDates: [...read.copies!.heavyDates] }).toEqual(fresh.copies);
          const journeyRead = await store.loadUserForJourney(USER, fromDate);
          expect(journeyRead.buckets).toEqual(fresh.buckets);
          // A key is known while any day or guard holds it.
          const stored = store.storedUser(USER);
          for (let key = 0; key <= 40; key++) {
            const held =
              stored !== undefined && (stored.guards.has(`k${key}`) || [...stored.days.values()].some((day) => day.eventKeys.has(`k${key}`)));
            expect(store.knowsEventKey(USER, `k${key}`)).toBe(held);
          }
        };
        for (const op of operations) {
          const increment = { date: 'date' in op ? op.date : DATES[0]!, counters: { [COUNTER]: 1 }, signals: [] };
          if (op.kind === 'event') await store.recordEvent(USER, `k${op.key}`, increment);
          else if (op.kind === 'settle') await store.settleCopy(USER, `k${op.key}`, increment, { on: op.on, claim: op.claim });
          else if (op.kind === 'send') await store.recordSend(USER, op.date, `a${op.id}`);
          // Reading twice in a row, and before and after each write, reads what was kept as well as what was made.
          else await check(op.from);
          await check(DATES[0]!);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('turns a day heavy past the light-day limit, and its copies show it', async () => {
    const store = new MemoryReplayStore(4);
    const increment = { date: DATES[1]!, counters: { [COUNTER]: 1 }, signals: [] };
    await store.recordEvent(USER, 'early', { ...increment, date: DATES[0]! });
    expect((await store.loadUser(USER, DATES[0]!)).copies!.lightKeys).toEqual({ [DATES[0]!]: ['early'] });
    for (let i = 0; i <= DEFAULT_LIGHT_DAY_EVENTS; i++) await store.recordEvent(USER, `busy${i}`, increment);
    const copies = (await store.loadUser(USER, DATES[0]!)).copies!;
    expect(copies.heavyDates).toEqual([DATES[1]]);
    expect(copies.lightKeys).toEqual({ [DATES[0]!]: ['early'] });
  });
});

describe('copyToSettle', () => {
  /** The list-and-sort it was written as before: every other light day holding the key, the earliest first. */
  function listed(copies: WindowCopies, eventKey: string, ownDate: string): { on: 'light' | 'heavy'; claim: string } | undefined {
    const elsewhere = Object.keys(copies.lightKeys)
      .filter((date) => date !== ownDate && copies.lightKeys[date]!.includes(eventKey))
      .sort();
    if (copies.lightKeys[ownDate]?.includes(eventKey)) {
      if (elsewhere.length > 0) return { on: 'light', claim: elsewhere[0]! };
      const from = addDays(ownDate, -RESEND_HORIZON_DAYS);
      const to = addDays(ownDate, RESEND_HORIZON_DAYS);
      return copies.heavyDates.some((date) => date !== ownDate && date >= from && date <= to) ? { on: 'light', claim: ownDate } : undefined;
    }
    if (copies.heavyDates.includes(ownDate) && elsewhere.length > 0) return { on: 'heavy', claim: elsewhere[0]! };
    return undefined;
  }

  const date = fc.integer({ min: -20, max: 20 }).map((day) => addDays(FIRST_DAY, day));
  const key = fc.constantFrom('k1', 'k2', 'k3');

  it('finds the claim the list-and-sort found', () => {
    fc.assert(
      fc.property(
        fc.dictionary(date, fc.uniqueArray(key, { maxLength: 3 })),
        fc.uniqueArray(date, { maxLength: 4 }),
        key,
        date,
        (lightKeys, heavyDates, eventKey, ownDate) => {
          const copies = { lightKeys, heavyDates };
          expect(copyToSettle(copies, eventKey, ownDate)).toEqual(listed(copies, eventKey, ownDate));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('tier history in the replay store', () => {
  const entry = (version: number, id: string): HistoryEntry => ({
    userId: USER,
    at: '2026-03-10T00:00:00.000Z',
    version,
    fromTier: 'visitor',
    toTier: 'member',
    explanation: {} as HistoryEntry['explanation'],
    id,
  });

  it('keeps entries in version order, a rewrite of the same entry replacing it, whatever order they come in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ version: fc.integer({ min: 1, max: 6 }), id: fc.constantFrom('a', 'b') }), { maxLength: 12 }),
        async (writes) => {
          const store = new MemoryReplayStore(4);
          let expected: HistoryEntry[] = [];
          for (const { version, id } of writes) {
            await store.appendHistory(entry(version, id));
            expected = [...expected.filter((e) => e.version !== version || e.id !== id), entry(version, id)].sort((a, b) => a.version - b.version);
          }
          expect(store.storedUser(USER)?.history ?? []).toEqual(expected);
        },
      ),
    );
  });

  it('keeps none where asked not to, and then refuses to list it rather than list nothing', async () => {
    const store = new MemoryReplayStore(4, { keepHistory: false });
    await store.appendHistory(entry(1, 'a'));
    await expect(store.listHistory(USER, 10)).rejects.toThrow(/keeps no tier history/);
  });
});

describe('the review-date search given the qualified tier', () => {
  it('finds the date it finds when it qualifies the user itself', async () => {
    const ruleset = loadRulesetOrThrow(await readProjectFiles('.'));
    const counters = ruleset.counters.map((counter) => counter.id);
    const today = '2026-04-15';
    const bucket = fc.record({
      day: fc.integer({ min: -95, max: 2 }),
      counts: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: counters.length, maxLength: counters.length }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(bucket, { selector: (b) => b.day, maxLength: 30 }),
        fc.constantFrom(...ruleset.tiers.map((t) => t.id)),
        async (specs, tier) => {
          const buckets: DayBucket[] = specs
            .map(({ day, counts }) => ({ date: addDays(today, day), counters: Object.fromEntries(counters.map((id, i) => [id, counts[i]!])) }))
            .sort((a, b) => (a.date < b.date ? -1 : 1));
          const now = new Date(`${today}T12:00:00Z`);
          const profile = { ...newProfile(USER, ruleset.baseTier, now), tier, version: 3 };
          const qualified = (await qualify(ruleset, factsAt(ruleset, buckets, profile.attributes, today))).tier;
          expect(await nextReviewDate(ruleset, profile, buckets, now, qualified)).toBe(await nextReviewDate(ruleset, profile, buckets, now));
        },
      ),
      { numRuns: 200 },
    );
  });
});
