/**
 * Exactly once, for the nightly count of journey tallies (core/tally-batches.ts), on the real pieces: the local queue
 * file and the batch items in a dynalite table. Whatever is enqueued (the same tally twice, as a retried Task does;
 * two different tallies under one id, as a stop racing the final Task does) and wherever a count crashes (between
 * two batch writes, or after its writes and before the queue forgets the tallies, in any round), the funnels read back
 * after several nights are exactly the sums of the first tally enqueued under each id: none lost, none twice.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDynamoCounters } from '../../functions/aws/dynamo-counters.js';
import { COUNTER_NAMES, type CounterDay, type ExecutionTally } from '../../functions/core/analytics.js';
import { addDays } from '../../functions/core/dates.js';
import { type CountLease, type TallyBatchStore, type TallySource, countTallies } from '../../functions/core/tally-batches.js';
import { type LocalTallyQueue, openLocalTallyQueue } from '../../functions/local/local-tally-queue.js';
import { countLeaseAt } from '../helpers/count-lease.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { propertyRuns } from '../helpers/property-runs.js';

const dynalite = useDynalite();
const FIRST_NIGHT = '2026-04-01';
const JOURNEYS = ['visitor-welcome', 'member-growth'];
const NAMES = [COUNTER_NAMES.sent('intro'), COUNTER_NAMES.deferred('intro'), COUNTER_NAMES.sent('offer'), COUNTER_NAMES.exited('offer', 'converted')];

const enqueueSpec = fc.record({
  /** A small pool of execution ids, so that ids repeat: duplicates and conflicting versions. */
  execution: fc.integer({ min: 0, max: 11 }),
  journey: fc.integer({ min: 0, max: JOURNEYS.length - 1 }),
  daysBeforeNight: fc.integer({ min: 0, max: 2 }),
  counts: fc.dictionary(fc.constantFrom(...NAMES), fc.integer({ min: 1, max: 4 }), { minKeys: 1 }),
  /** Enqueued twice in a row, as a Task retried after its enqueue does. */
  twice: fc.boolean(),
});
const crashSpec = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('between-writes' as const), afterWrites: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('before-remove' as const), inRound: fc.integer({ min: 0, max: 2 }) }),
);
const nightSpec = fc.record({
  enqueues: fc.array(enqueueSpec, { maxLength: 10 }),
  crash: crashSpec,
  /** After a crash, the state machine's retry counts again the same night; otherwise the next night does. */
  retrySameNight: fc.boolean(),
  roundSize: fc.constantFrom(2, 5, 200),
});
const caseSpec = fc.record({ nights: fc.array(nightSpec, { minLength: 2, maxLength: 6 }), maxBytes: fc.constantFrom(90, 200, 960) });

class Crash extends Error {
  override readonly name = 'Crash';
}

type Night = typeof nightSpec extends fc.Arbitrary<infer T> ? T : never;

/** The counting ports, with the night's crash injected; a crashed process releases nothing. */
function crashing(queue: LocalTallyQueue, store: TallyBatchStore, crash: Night['crash']): { source: TallySource; batches: TallyBatchStore } {
  let writes = 0;
  let rounds = 0;
  return {
    source: {
      receive: (max) => queue.receive(max),
      async remove(receipts) {
        if (crash.kind === 'before-remove' && rounds++ === crash.inRound) throw new Crash('after the writes, before the remove');
        await queue.remove(receipts);
      },
      release: async () => {},
      waiting: () => queue.waiting(),
    },
    batches: {
      holdCountLease: (lease) => store.holdCountLease(lease),
      readTallyBatches: (from) => store.readTallyBatches(from),
      async writeTallyBatch(drainDate, encoded) {
        if (crash.kind === 'between-writes' && writes++ === crash.afterWrites) throw new Crash('between two batch writes');
        await store.writeTallyBatch(drainDate, encoded);
      },
    },
  };
}

function sumsByJourney(tallies: Iterable<ExecutionTally>): Record<string, Record<string, Record<string, number>>> {
  const sums: Record<string, Record<string, Record<string, number>>> = {};
  for (const tally of tallies) {
    const day = ((sums[tally.journeyId] ??= {})[tally.date] ??= {});
    for (const [name, value] of Object.entries(tally.counts)) day[name] = (day[name] ?? 0) + value;
  }
  return sums;
}

/** A count's lease on the night of `date`. */
const leaseOf = (owner: string, date: string): CountLease => countLeaseAt(owner, new Date(`${date}T02:00:00Z`));

const asSums = (days: readonly CounterDay[]): Record<string, Record<string, number>> => Object.fromEntries(days.map((day) => [day.date, day.counts]));

describe('the nightly count of journey tallies', () => {
  it('counts the first tally enqueued under each id exactly once, through duplicates, conflicts and crashes', async () => {
    await fc.assert(
      fc.asyncProperty(caseSpec, async ({ nights, maxBytes }) => {
        const dataDir = await mkdtemp(join(tmpdir(), 'strata-tally-property-'));
        const tableName = await dynalite.freshTable();
        const store = createDynamoCounters({ client: dynalite.client, tableName });
        let queue = await openLocalTallyQueue(dataDir);
        const first = new Map<string, ExecutionTally>();
        try {
          for (const [i, night] of nights.entries()) {
            const date = addDays(FIRST_NIGHT, i);
            for (const spec of night.enqueues) {
              const tally: ExecutionTally = {
                id: `j${spec.execution}`,
                journeyId: JOURNEYS[spec.journey]!,
                date: addDays(date, -spec.daysBeforeNight),
                counts: spec.counts,
              };
              if (!first.has(tally.id)) first.set(tally.id, tally);
              await queue.enqueue(tally);
              if (spec.twice) await queue.enqueue(tally);
            }
            // A retry is the same review execution, so the same lease owner; the next night's run comes a day later.
            const count = (ports: ReturnType<typeof crashing>) =>
              countTallies(ports, {
                drainDate: date,
                lease: leaseOf(`night-${i}`, date),
                hasTimeLeft: () => true,
                roundSize: night.roundSize,
                maxBytes,
              });
            try {
              await count(crashing(queue, store, night.crash));
            } catch (error) {
              if (!(error instanceof Crash)) throw error;
              // The process died: what the queue holds is what its file holds.
              await queue.close();
              queue = await openLocalTallyQueue(dataDir);
              if (night.retrySameNight) await count(crashing(queue, store, { kind: 'none' }));
            }
          }
          // The last night's count runs clean: the queue ends empty.
          const lastNight = addDays(FIRST_NIGHT, nights.length);
          await countTallies(
            { source: queue, batches: store },
            { drainDate: lastNight, lease: leaseOf('last-night', lastNight), hasTimeLeft: () => true, maxBytes },
          );
          expect(await queue.waiting()).toBe(0);
          const expected = sumsByJourney(first.values());
          for (const journeyId of JOURNEYS) {
            const read = await store.readJourneyDays(journeyId, addDays(FIRST_NIGHT, -2));
            expect(asSums(read), journeyId).toEqual(expected[journeyId] ?? {});
          }
          // Each tally id is stored once across every batch item.
          const stored = (await store.readTallyBatches(FIRST_NIGHT)).flatMap((batch) => batch.tallies.map((tally) => tally.id));
          expect(stored.length).toBe(new Set(stored).size);
          expect(new Set(stored)).toEqual(new Set(first.keys()));
        } finally {
          await queue.close();
          await rm(dataDir, { recursive: true, force: true });
        }
      }),
      { numRuns: propertyRuns(25) },
    );
  }, 240_000);

  it('lets one count at a time write: a second count at the same moment leaves the queue to the lease holder', async () => {
    const tableName = await dynalite.freshTable();
    const store = createDynamoCounters({ client: dynalite.client, tableName });
    const queue = await openLocalTallyQueue();
    const tally: ExecutionTally = { id: 'jtwice', journeyId: JOURNEYS[0]!, date: FIRST_NIGHT, counts: { [NAMES[0]!]: 1 } };
    // Two deliveries of one tally (a Task retried after its enqueue): without the lease each count would get one,
    // find the id uncounted, and store it.
    await queue.enqueue(tally);
    await queue.enqueue(tally);
    let second: Awaited<ReturnType<typeof countTallies>> | undefined;
    const first = await countTallies(
      {
        source: queue,
        batches: {
          ...store,
          holdCountLease: (lease) => store.holdCountLease(lease),
          readTallyBatches: (from) => store.readTallyBatches(from),
          async writeTallyBatch(drainDate, encoded) {
            // The second review run starts while the first holds its lease and has not written yet.
            second ??= await countTallies(
              { source: queue, batches: store },
              { drainDate, lease: leaseOf('run-b', FIRST_NIGHT), hasTimeLeft: () => true, roundSize: 1 },
            );
            await store.writeTallyBatch(drainDate, encoded);
          },
        },
      },
      { drainDate: FIRST_NIGHT, lease: leaseOf('run-a', FIRST_NIGHT), hasTimeLeft: () => true, roundSize: 1 },
    );
    expect(second).toMatchObject({ counted: 0, done: true, leaseHeldElsewhere: true });
    expect(first).toMatchObject({ counted: 1, duplicates: 1, done: true });
    expect(await queue.waiting()).toBe(0);
    expect(asSums(await store.readJourneyDays(JOURNEYS[0]!, FIRST_NIGHT))).toEqual({ [FIRST_NIGHT]: { [NAMES[0]!]: 1 } });
    // A resumed count of the same run renews its own lease; once it lapses, the next night's run takes it.
    const later = new Date(`${FIRST_NIGHT}T02:10:00Z`);
    expect(await store.holdCountLease({ owner: 'run-a', now: later, until: new Date(later.getTime() + 60_000) })).toBe(true);
    expect(await store.holdCountLease({ owner: 'run-b', now: later, until: new Date(later.getTime() + 60_000) })).toBe(false);
    expect(await store.holdCountLease(leaseOf('next-night', addDays(FIRST_NIGHT, 1)))).toBe(true);
    await queue.close();
  });
});
