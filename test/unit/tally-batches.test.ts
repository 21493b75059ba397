/**
 * The encoding of journey tallies in the queue and in the nightly count's batch items (core/tally-batches.ts): it
 * reads back what it wrote, refuses what it could not read back, packs within the byte budget, and the readers count
 * each tally id once, by journey and entry date.
 */
import { describe, expect, it } from 'vitest';
import { COUNTER_NAMES, type ExecutionTally } from '../../functions/core/analytics.js';
import {
  TALLY_BATCH_BYTES,
  TallyEncodingError,
  decodeTally,
  decodeTallyBatch,
  encodeTally,
  journeyDaysFromBatches,
  mergeCounterDays,
  packTallies,
} from '../../functions/core/tally-batches.js';

const tally = (id: string, overrides: Partial<ExecutionTally> = {}): ExecutionTally => ({
  id,
  journeyId: 'visitor-welcome',
  date: '2026-03-02',
  counts: {
    [COUNTER_NAMES.sent('beginner_cases')]: 1,
    [COUNTER_NAMES.deferred('beginner_cases')]: 2,
    [COUNTER_NAMES.exited('free_camp', 'converted')]: 1,
  },
  ...overrides,
});

describe('tally encoding', () => {
  it('reads back every field of a tally, counter names with their `|` included', () => {
    const original = tally('jAbC-_09xyzXYZ12');
    const line = encodeTally(original);
    expect(line).toBe('jAbC-_09xyzXYZ12 visitor-welcome 2026-03-02 s|beginner_cases=1;d|beginner_cases=2;x|free_camp|converted=1');
    expect(decodeTally(line)).toEqual(original);
  });

  it('leaves zero counts out and keeps negative ones', () => {
    expect(decodeTally(encodeTally(tally('j1', { counts: { a: 0, b: -3 } })))?.counts).toEqual({ b: -3 });
  });

  it('refuses a part it could not read back, naming the tally and the part', () => {
    expect(() => encodeTally(tally('j 1'))).toThrow(TallyEncodingError);
    expect(() => encodeTally(tally('j1', { journeyId: 'a;b' }))).toThrow(/journey id "a;b"/);
    expect(() => encodeTally(tally('j1', { counts: { 's|a=b': 1 } }))).toThrow(/Tally j1: its counter name/);
    expect(() => encodeTally(tally('j1', { counts: { 's|a': 1.5 } }))).toThrow(/not a whole number/);
  });

  it('reads no tally from a line cut short or foreign', () => {
    const line = encodeTally(tally('j1'));
    for (const cut of [line.slice(0, 10), line.slice(0, line.indexOf('2026') + 4), line.slice(0, -2) + '=', '', '{"json":true}'])
      expect(decodeTally(cut), cut).toBeUndefined();
    // A cut can still read as a tally with a count cut short: so the local queue file reads only whole lines
    // (test/adapters/local-tally-queue.test.ts), and SQS messages and batch items are written whole.
  });
});

describe('packing tallies into batch items', () => {
  it('keeps every tally, in order, in as few texts as the byte budget allows', () => {
    const tallies = Array.from({ length: 40 }, (_, i) => tally(`j${String(i).padStart(16, '0')}`));
    const texts = packTallies(tallies);
    for (const text of texts) expect(Buffer.byteLength(text)).toBeLessThanOrEqual(TALLY_BATCH_BYTES);
    expect(texts.flatMap(decodeTallyBatch)).toEqual(tallies);
    const lineBytes = Buffer.byteLength(encodeTally(tallies[0]!)) + 1;
    expect(texts.length).toBe(Math.ceil(tallies.length / Math.floor((TALLY_BATCH_BYTES + 1) / lineBytes)));
  });

  it('gives a tally longer than the budget an item of its own rather than dropping it', () => {
    const long = tally('jlong', { counts: Object.fromEntries(Array.from({ length: 80 }, (_, i) => [COUNTER_NAMES.sent(`step_${i}`), 1])) });
    const texts = packTallies([tally('j1'), long, tally('j2')]);
    expect(texts).toHaveLength(3);
    expect(texts.flatMap(decodeTallyBatch).map((t) => t.id)).toEqual(['j1', 'jlong', 'j2']);
  });

  it('packs nothing into no item', () => {
    expect(packTallies([])).toEqual([]);
  });
});

describe('reading batches back', () => {
  it('counts each tally id once (the first stored), by journey and entry date, from the first date on', () => {
    const sent = COUNTER_NAMES.sent('beginner_cases');
    const batches = [
      { drainDate: '2026-03-03', tallies: [tally('a', { counts: { [sent]: 1 } }), tally('b', { date: '2026-03-01', counts: { [sent]: 1 } })] },
      {
        drainDate: '2026-03-04',
        tallies: [
          tally('a', { counts: { [sent]: 5 } }),
          tally('c', { date: '2026-03-03', counts: { [sent]: 1 } }),
          tally('d', { journeyId: 'other', counts: { [sent]: 1 } }),
        ],
      },
    ];
    expect(journeyDaysFromBatches(batches, 'visitor-welcome', '2026-03-02')).toEqual([
      { date: '2026-03-02', counts: { [sent]: 1 } },
      { date: '2026-03-03', counts: { [sent]: 1 } },
    ]);
  });

  it('sums two lists of days by date', () => {
    expect(
      mergeCounterDays(
        [{ date: '2026-03-02', counts: { a: 1 } }],
        [
          { date: '2026-03-01', counts: { a: 2 } },
          { date: '2026-03-02', counts: { a: 3, b: 1 } },
        ],
      ),
    ).toEqual([
      { date: '2026-03-01', counts: { a: 2 } },
      { date: '2026-03-02', counts: { a: 4, b: 1 } },
    ]);
  });
});
