/**
 * What the analytics counters cost per event: the example population replayed through the embedded stack (the real
 * ingest, journey-step and review handlers on dynalite, the compiled journeys on the local runner, a virtual clock),
 * with every DynamoDB request's ConsumedCapacity read off the client. A request on a `STATS#…` key is a counter's,
 * the nightly count's batch items of journey tallies (`STATS#TALLIES`) included. After the last day the nightly review
 * runs once more, so that the tallies of the executions that ended on it are counted too.
 *
 *   tsx bench/counters.ts [users]     prints the figures as JSON
 */
import { fileURLToPath } from 'node:url';
import { addDays, localDate } from '../functions/core/dates.js';
import { TALLY_BATCHES_KEY, TALLY_COUNT_LEASE_SORT_KEY } from '../functions/aws/dynamo-counters.js';
import type { UserEvent } from '../functions/core/event.js';
import { instantAtLocalTime } from '../functions/core/local-time.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { createVirtualClock } from '../functions/local/clock.js';
import { generateEvents } from '../functions/local/example-population.js';
import { startLocalStack } from '../functions/local/local-stack.js';
import { localEnvelope } from '../functions/local/local-bus.js';
import { POPULATION_START } from './capacity.js';

export interface CountersResult {
  users: number;
  events: number;
  /** Counter write units ÷ events ingested: the budget is 0.1. */
  countersWruPerEvent: number;
  /** Every write unit of the run (store, journeys, review, counters) ÷ events, for scale. */
  allWruPerEvent: number;
  /**
   * Counter writes by item kind: tier changes, entries and conversions; per-step journey counts; the nightly count's
   * batches of journey executions' tallies; nightly snapshots.
   */
  counterWrites: { tierItems: number; journeyItems: number; tallyItems: number; countLeases: number; snapshots: number };
  /**
   * The same writes by what caused them, read off each write's guard: tier changes (with the entry they start),
   * journey entries without a tier move, conversions, erasures; per-step counts of executions compiled before the
   * tally; the nightly count's batch items; snapshots. What a design that merges writes can save is read here.
   */
  counterWritesByCause: CounterWritesByCause;
  /** Journey executions' tallies (ended or stopped) that the nightly counts wrote into those batch items. */
  talliesCounted: number;
  counterWru: number;
  /** Events the stack applied (duplicates aside). */
  eventsApplied: number;
}

export interface CounterWritesByCause {
  tierChanges: number;
  entriesWithoutMove: number;
  conversions: number;
  erasures: number;
  stepCounts: number;
  /** Batch items of the nightly count, each holding up to ~1 KB of journey executions' tallies. */
  tallyBatches: number;
  /** The nightly count's lease, taken once a night when tallies wait (two review runs at once never both count). */
  countLeases: number;
  snapshots: number;
}

const HOUR_MS = 3_600_000;
const REVIEW_MINUTE = 2 * 60;
const r3 = (value: number): number => Math.round(value * 1000) / 1000;

interface Metered {
  input?: {
    Key?: Record<string, { S?: string }>;
    Item?: Record<string, { S?: string }>;
    ExpressionAttributeNames?: Record<string, string>;
  };
}
const WRITE_COMMANDS: ReadonlySet<string> = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand']);

export async function measureCounters(ruleset: Ruleset, options: { users: number; days?: number; seed?: number }): Promise<CountersResult> {
  const events: UserEvent[] = generateEvents({ users: options.users, days: options.days ?? 60, seed: options.seed ?? 11, start: POPULATION_START });
  events.sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt));
  const zone = ruleset.timezone;
  const firstDate = localDate(events[0]!.occurredAt, zone);
  const lastDate = localDate(events[events.length - 1]!.occurredAt, zone);
  const clock = createVirtualClock(instantAtLocalTime(firstDate, 0, zone));
  const stack = await startLocalStack({ ruleset, clock, batchWindowMs: 0, ingestConcurrency: 4 });
  clock.settleWith(() => stack.settle());
  const units = { all: 0, counters: 0 };
  const writes = { tierItems: 0, journeyItems: 0, tallyItems: 0, countLeases: 0, snapshots: 0 };
  /** Every counter write's item partition and guard (`g|<occurrence id>`; '' for an unguarded write). */
  const guards: Array<{ partition: string; guard: string }> = [];
  stack.dynalite.client.middlewareStack.add(
    (next, context) => async (args) => {
      const output = await next(args);
      const consumed = (output.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity?.CapacityUnits ?? 0;
      const command = (args as Metered).input;
      const key = command?.Key?.['pk']?.S ?? command?.Item?.['pk']?.S ?? '';
      if (!WRITE_COMMANDS.has(context.commandName ?? '')) return output;
      units.all += consumed;
      if (key.startsWith('STATS#')) {
        units.counters += consumed;
        if (key === 'STATS#TIERS') writes.tierItems += 1;
        else if (key === 'STATS#CENSUS') writes.snapshots += 1;
        else if (key === TALLY_BATCHES_KEY && command?.Item?.['sk']?.S === TALLY_COUNT_LEASE_SORT_KEY) writes.countLeases += 1;
        else if (key === TALLY_BATCHES_KEY) writes.tallyItems += 1;
        else writes.journeyItems += 1;
        if (key !== 'STATS#CENSUS' && key !== TALLY_BATCHES_KEY)
          guards.push({ partition: key, guard: command?.ExpressionAttributeNames?.['#g'] ?? '' });
      }
      return output;
    },
    { step: 'initialize', name: 'benchCounterCapacity' },
  );
  let eventsApplied = 0;
  let talliesCounted = 0;
  let byCause: CounterWritesByCause | undefined;
  try {
    await stack.store.setReviewCheckpoint(addDays(firstDate, -1));
    let next = 0;
    for (let date = firstDate; date <= lastDate; date = addDays(date, 1)) {
      const dayStart = instantAtLocalTime(date, 0, zone).getTime();
      for (let hour = 0; hour < 24; hour++) {
        if (hour * 60 === REVIEW_MINUTE) {
          await clock.advanceTo(instantAtLocalTime(date, REVIEW_MINUTE, zone));
          talliesCounted += (await stack.runNightlyReview()).talliesCounted;
          await stack.settle();
        }
        const sliceEnd = dayStart + (hour + 1) * HOUR_MS;
        const slice: UserEvent[] = [];
        while (next < events.length && Date.parse(events[next]!.occurredAt) < sliceEnd) slice.push(events[next++]!);
        if (slice.length === 0) continue;
        await clock.advanceTo(new Date(sliceEnd));
        await stack.bus.put(
          slice.map((event) =>
            localEnvelope({ source: 'bench.counters', detailType: event.type, detail: { ...event }, time: new Date(event.occurredAt) }),
          ),
        );
        await stack.settle();
      }
    }
    await clock.advanceTo(instantAtLocalTime(addDays(lastDate, 1), REVIEW_MINUTE, zone));
    talliesCounted += (await stack.runNightlyReview()).talliesCounted;
    await stack.settle();
    eventsApplied = stack.counters.eventsRecorded;
    byCause = writesByCause(guards, writes);
  } finally {
    await stack.close();
  }
  return {
    users: options.users,
    events: events.length,
    countersWruPerEvent: r3(units.counters / events.length),
    allWruPerEvent: r3(units.all / events.length),
    counterWrites: writes,
    counterWritesByCause: byCause,
    talliesCounted,
    counterWru: units.counters,
    eventsApplied,
  };
}

/**
 * Sorts the guarded and per-step counter writes by their guard's occurrence id (core/analytics.ts): `n` a tier
 * change, `j` on the tier item a journey entry without a move, `c` a conversion, `x` an erasure; unguarded writes on
 * a journey item are per-step counts. An execution's tally is never written on its own any more (it is queued and
 * counted in the nightly batches), so a guard that fits none, such as a tally's, fails the bench.
 */
function writesByCause(
  guards: ReadonlyArray<{ partition: string; guard: string }>,
  items: { tallyItems: number; countLeases: number; snapshots: number },
): CounterWritesByCause {
  const byCause: CounterWritesByCause = {
    tierChanges: 0,
    entriesWithoutMove: 0,
    conversions: 0,
    erasures: 0,
    stepCounts: 0,
    tallyBatches: items.tallyItems,
    countLeases: items.countLeases,
    snapshots: items.snapshots,
  };
  for (const { partition, guard } of guards) {
    if (guard === '') byCause.stepCounts += 1;
    else if (partition === 'STATS#TIERS' && guard.startsWith('g|j')) byCause.entriesWithoutMove += 1;
    else if (guard.startsWith('g|n')) byCause.tierChanges += 1;
    else if (guard.startsWith('g|c')) byCause.conversions += 1;
    else if (guard.startsWith('g|x')) byCause.erasures += 1;
    else throw new Error(`bench/counters: a counter write with guard ${guard} on ${partition} matches no known cause`);
  }
  return byCause;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [{ loadRulesetOrThrow }, { readProjectFiles }] = await Promise.all([
    import('../functions/core/ruleset.js'),
    import('../functions/local/project-files.js'),
  ]);
  const ruleset = loadRulesetOrThrow(await readProjectFiles(process.cwd()));
  const result = await measureCounters(ruleset, { users: Number(process.argv[2] ?? 200) });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}
