/**
 * `npm run bench` (`-- --quick` for a run of about six minutes): measures Strata against the performance targets in
 * DESIGN.md, writes bench/results.json, prints the table and refreshes README.md's bench section. Ratios inside a
 * section (for example simulate against --full-stack) always come from the same run.
 *
 * `-- --only dev,simulate` measures just those sections and keeps the others from the existing results.json, each
 * section recording when, in which mode and under what load it was measured: a full run takes most of an hour, and
 * one slow section should not need the rest to be measured again.
 */
import '../functions/local/cli-environment.js';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadRulesetOrThrow } from '../functions/core/ruleset.js';
import { readProjectFiles } from '../functions/local/project-files.js';
import { type CapacityFigures, type HeavyUserResult, measureCapacity, measureHeavyUser } from './capacity.js';
import { type CliFigures, measureCli } from './cli.js';
import { measureColdStart } from './cold-start.js';
import { type DevFigures, measureDev } from './dev.js';
import { type CountersResult, measureCounters } from './counters.js';
import { type CostResult, type Prices, costModel } from './cost.js';
import { measureEvaluation } from './evaluation.js';
import { type ImportFigures, measureImport } from './import.js';
import { type JourneyFigures, measureJourneys } from './journeys.js';
import { renderTable, replaceReadmeSection, targetChecks, type TargetCheck } from './report.js';
import { type RejudgeCost, measureRejudge } from './rejudge.js';
import { type ReviewResult, measureActiveUserReviews, measureNightlyReview, measureShardThroughput } from './review.js';
import { type StorageResult, measureStorage } from './storage.js';
import { type SimulateFigures, measureSimulate } from './simulate.js';
import { measureThroughput } from './throughput.js';

export interface BenchOptions {
  projectRoot: string;
  quick: boolean;
  capacityUsers: number;
  evaluationIterations: number;
  throughputEvents: number;
  reviewUsers: number;
  /** Users due in the one shard whose review throughput is measured. */
  reviewShardUsers: number;
  coldStartRuns: number;
  activeUserDays: number;
  heavyUser: { eventsPerDay: number; days: number; extremeEvents: number; windowEventsPerDay: number };
  storageUsers: number;
  simulateUsers: number;
  simulateBigEvents: number;
  cliRuns: number;
  /** Users of the example population re-judged after a rules change. */
  rejudgeUsers?: number;
  /** Users of the example population replayed through the embedded stack to measure the analytics counters. */
  countersUsers?: number;
  devEvents: number;
  devUsers: number;
  devIdleSeconds: number;
  /** Events of the example history `strata import` writes into dynalite; 1,000,000 in a full run. */
  importEvents?: number;
  /** Measure only these sections; the rest are taken from `previous`. */
  only?: ReadonlySet<BenchSection>;
  previous?: BenchResults;
  log?: (line: string) => void;
}

interface ReviewFigures {
  review: Omit<ReviewResult, 'reviewsPerActiveUser30d'>;
  active: { reviewsLast30Days: number; tier: string };
  shard: { usersPerSecondPerShard: number };
}

export const BENCH_SECTIONS = [
  'evaluation',
  'capacity',
  'heavyUser',
  'storage',
  'throughput',
  'review',
  'journeys',
  'coldStart',
  'cli',
  'dev',
  'simulate',
  'rejudge',
  'import',
  'counters',
] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];

/** When, in which mode and under what machine load one section was measured. */
export interface SectionRun {
  at: string;
  quick: boolean;
  seconds: number;
  loadAverage: number[];
}

export interface BenchResults {
  at: string;
  quick: boolean;
  machine: { cpu: string; cores: number; node: string; loadAverage: number[] };
  capacity: {
    users: number;
    measuredEvents: number;
    noChange: CapacityFigures;
    tierChange: CapacityFigures;
    meanPerEvent: { read: number; write: number };
    byOperation: Record<string, unknown>;
    /** Write units the analytics counters add per event (the issue's budget: 0.1), measured on the embedded stack. */
    countersWruPerEvent: number;
    counters: CountersResult;
    seedSeconds: number;
    heavyUser: HeavyUserResult;
  };
  storage: StorageResult;
  evaluation: { coreUs: number; jreUs: number; plainJsUs: number; coreOverJre: number };
  throughput: { eventsPerSec: number; dynaliteOpsPerSec: number; ratio: number; events: number; ingestConcurrency: number };
  review: ReviewResult & { activeUserTier: string; usersPerSecondPerShard: number };
  journeys: Record<string, JourneyFigures>;
  coldStart: { bundleBytes: number; importMsMedian: number; importMsSamples: number[] };
  cli: CliFigures;
  dev: DevFigures;
  cost: CostResult;
  rejudge: RejudgeCost;
  simulate: SimulateFigures;
  import: ImportFigures;
  sections: Partial<Record<BenchSection, SectionRun>>;
  targets?: TargetCheck[];
}

export function benchOptions(quick: boolean, projectRoot = '.'): BenchOptions {
  return quick
    ? {
        projectRoot,
        quick,
        capacityUsers: 1_000,
        evaluationIterations: 2_000,
        throughputEvents: 800,
        reviewUsers: 10_000,
        coldStartRuns: 10,
        reviewShardUsers: 500,
        activeUserDays: 45,
        cliRuns: 10,
        heavyUser: { eventsPerDay: 1_000, days: 1, extremeEvents: 5_000, windowEventsPerDay: 1_000 },
        storageUsers: 40,
        devEvents: 3_000,
        devUsers: 300,
        devIdleSeconds: 10,
        simulateUsers: 200,
        simulateBigEvents: 100_000,
      }
    : {
        projectRoot,
        quick,
        capacityUsers: 10_000,
        evaluationIterations: 10_000,
        throughputEvents: 3_000,
        reviewUsers: 100_000,
        coldStartRuns: 10,
        reviewShardUsers: 2_000,
        activeUserDays: 60,
        cliRuns: 10,
        heavyUser: { eventsPerDay: 1_000, days: 3, extremeEvents: 100_000, windowEventsPerDay: 1_000 },
        storageUsers: 300,
        devEvents: 100_000,
        devUsers: 10_000,
        devIdleSeconds: 60,
        simulateUsers: 200,
        simulateBigEvents: 1_000_000,
      };
}

const r1 = (value: number): number => Math.round(value * 10) / 10;
const r3 = (value: number): number => Math.round(value * 1000) / 1000;

export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const log = options.log ?? (() => undefined);
  const files = await readProjectFiles(options.projectRoot);
  const ruleset = loadRulesetOrThrow(files);
  const sections: Partial<Record<BenchSection, SectionRun>> = {};
  /** Measures a section, or takes it from the previous results when `--only` leaves it out. */
  const section = async <T>(name: BenchSection, body: () => Promise<T>, previous: () => T | undefined): Promise<T> => {
    if (options.only && !options.only.has(name)) {
      const kept = previous();
      const run = options.previous?.sections?.[name];
      if (kept !== undefined && run) {
        sections[name] = run;
        return kept;
      }
      log(`${name}: not in results.json yet, so measured now`);
    }
    const started = performance.now();
    const result = await body();
    const seconds = (performance.now() - started) / 1000;
    sections[name] = { at: new Date().toISOString(), quick: options.quick, seconds: r1(seconds), loadAverage: loadavg().map(r3) };
    log(`${name}: ${seconds.toFixed(1)} s`);
    return result;
  };
  const before = options.previous;

  const evaluation = await section(
    'evaluation',
    () => measureEvaluation(ruleset, options.evaluationIterations),
    () => before?.evaluation,
  );
  const capacity = await section(
    'capacity',
    () => measureCapacity(ruleset, { users: options.capacityUsers }),
    () =>
      before && {
        users: before.capacity.users,
        measuredEvents: before.capacity.measuredEvents,
        noChange: before.capacity.noChange,
        tierChange: before.capacity.tierChange,
        meanPerEvent: before.capacity.meanPerEvent,
        byOperation: before.capacity.byOperation,
        seedSeconds: before.capacity.seedSeconds,
      },
  );
  const heavyUser = await section(
    'heavyUser',
    () => measureHeavyUser(ruleset, options.heavyUser),
    () => before?.capacity.heavyUser,
  );
  const storage = await section(
    'storage',
    () => measureStorage(ruleset, { users: options.storageUsers }),
    () => before?.storage,
  );
  const throughput = await section(
    'throughput',
    () => measureThroughput(ruleset, { events: options.throughputEvents, concurrency: 8 }),
    () =>
      before && {
        eventsPerSec: before.throughput.eventsPerSec,
        dynaliteOpsPerSec: before.throughput.dynaliteOpsPerSec,
        ratio: before.throughput.ratio,
        events: before.throughput.events,
        concurrency: before.throughput.ingestConcurrency,
      },
  );
  const reviewFigures = await section(
    'review',
    async (): Promise<ReviewFigures> => {
      const nightly = await measureNightlyReview(ruleset, { users: options.reviewUsers });
      const activeUser = await measureActiveUserReviews(ruleset, options.activeUserDays);
      const oneShard = await measureShardThroughput(ruleset, { users: options.reviewShardUsers });
      return {
        review: nightly,
        active: { reviewsLast30Days: activeUser.reviewsLast30Days, tier: activeUser.tier },
        shard: { usersPerSecondPerShard: oneShard.usersPerSecondPerShard },
      };
    },
    () =>
      before && {
        review: before.review,
        active: { reviewsLast30Days: before.review.reviewsPerActiveUser30d, tier: before.review.activeUserTier },
        shard: { usersPerSecondPerShard: before.review.usersPerSecondPerShard },
      },
  );
  const { review, active, shard } = reviewFigures;
  const journeys = await section(
    'journeys',
    () => measureJourneys(ruleset),
    () => before?.journeys,
  );
  const coldStart = await section(
    'coldStart',
    () => measureColdStart(options.projectRoot, files, options.coldStartRuns),
    () => before?.coldStart,
  );
  const cli = await section(
    'cli',
    () => measureCli(options.projectRoot, options.cliRuns),
    () => before?.cli,
  );
  const dev = await section(
    'dev',
    () =>
      measureDev({ projectRoot: options.projectRoot, events: options.devEvents, users: options.devUsers, idleSeconds: options.devIdleSeconds, log }),
    () => before?.dev,
  );
  const simulate = await section(
    'simulate',
    () => measureSimulate(ruleset, { users: options.simulateUsers, bigEvents: options.simulateBigEvents }),
    () => before?.simulate,
  );

  const prices = JSON.parse(await readFile(fileURLToPath(new URL('./prices.json', import.meta.url)), 'utf8')) as Prices;
  const rejudge = await section(
    'rejudge',
    () => measureRejudge(ruleset, prices, { users: options.rejudgeUsers ?? (options.quick ? 300 : 2_000) }),
    () => before?.rejudge,
  );
  const importFigures = await section(
    'import',
    () => measureImport(ruleset, { events: options.importEvents ?? (options.quick ? 50_000 : 1_000_000) }),
    () => before?.import,
  );
  // 300 users in the quick run too: the nightly snapshot is one write a day whatever the population, and 60 users
  // (40 events a day) would make it a fifth of the counters' cost, which no deployment sees.
  const counters = await section(
    'counters',
    () => measureCounters(ruleset, { users: options.countersUsers ?? 300 }),
    () => before?.capacity.counters,
  );
  const threeSend = Object.values(journeys).find((j) => j.sends === 3) ?? Object.values(journeys)[0]!;
  const cost = costModel(prices, {
    perEvent: capacity.meanPerEvent,
    countersWritePerEvent: counters.countersWruPerEvent,
    talliesPerEvent: counters.events > 0 ? counters.talliesCounted / counters.events : 0,
    tierChangeShare: capacity.measuredEvents > 0 ? capacity.tierChange.events / capacity.measuredEvents : 0,
    journey: threeSend,
  });
  const results: BenchResults = {
    at: new Date().toISOString(),
    quick: Object.values(sections).some((run) => run.quick),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      loadAverage: loadavg().map(r3),
    },
    sections,
    capacity: {
      users: capacity.users,
      measuredEvents: capacity.measuredEvents,
      noChange: capacity.noChange,
      tierChange: capacity.tierChange,
      meanPerEvent: capacity.meanPerEvent,
      byOperation: capacity.byOperation,
      countersWruPerEvent: counters.countersWruPerEvent,
      counters,
      seedSeconds: capacity.seedSeconds,
      heavyUser,
    },
    storage,
    evaluation: {
      coreUs: r1(evaluation.coreUs),
      jreUs: r1(evaluation.jreUs),
      plainJsUs: r3(evaluation.plainJsUs),
      coreOverJre: r3(evaluation.coreOverJre),
    },
    throughput: {
      eventsPerSec: r1(throughput.eventsPerSec),
      dynaliteOpsPerSec: r1(throughput.dynaliteOpsPerSec),
      ratio: r3(throughput.ratio),
      events: throughput.events,
      ingestConcurrency: throughput.concurrency,
    },
    review: {
      users: review.users,
      due: review.due,
      itemsRead: review.itemsRead,
      ratio: r3(review.ratio),
      seconds: r1(review.seconds),
      fullScanItemsRead: review.fullScanItemsRead,
      fullScanSeconds: r1(review.fullScanSeconds),
      seedSeconds: r1(review.seedSeconds),
      reviewsPerActiveUser30d: active.reviewsLast30Days,
      activeUserTier: active.tier,
      usersPerSecondPerShard: r1(shard.usersPerSecondPerShard),
    },
    journeys,
    coldStart,
    cli,
    dev,
    cost,
    rejudge,
    simulate: {
      ...simulate,
      eventsPerSec: r1(simulate.eventsPerSec),
      fullStackEventsPerSec: r1(simulate.fullStackEventsPerSec),
      eventsPerCpuSec: r1(simulate.eventsPerCpuSec),
    },
    import: {
      ...importFigures,
      seconds: r1(importFigures.seconds),
      eventsPerSec: r1(importFigures.eventsPerSec),
      writeRequestsPerEvent: r3(importFigures.writeRequestsPerEvent),
      wruPerEvent: r3(importFigures.wruPerEvent),
    },
  };
  results.targets = targetChecks(results);
  return results;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const only = parseOnly(process.argv);
  const previous = only ? await readPreviousResults() : undefined;
  const started = performance.now();
  const results = await runBench({ ...benchOptions(quick), only, previous, log: (line) => process.stderr.write(`bench: ${line}\n`) });
  await writeFile('bench/results.json', JSON.stringify(results, null, 2) + '\n');
  const table = renderTable(results);
  process.stdout.write(`${table}\n\nbench: done in ${((performance.now() - started) / 1000).toFixed(0)} s; wrote bench/results.json\n`);
  const readme = await readFile('README.md', 'utf8').catch(() => '');
  const updated = replaceReadmeSection(readme, table);
  if (updated === undefined)
    process.stdout.write('bench: README.md has no <!-- bench:start --> / <!-- bench:end --> markers; the section is printed above\n');
  else if (updated !== readme) {
    await writeFile('README.md', updated);
    process.stdout.write('bench: refreshed the bench section of README.md\n');
  }
}

/** `--only a,b` (or `--only=a,b`): the sections to measure; undefined measures them all. Exits on an unknown name. */
export function parseOnly(argv: readonly string[]): ReadonlySet<BenchSection> | undefined {
  const index = argv.findIndex((arg) => arg === '--only' || arg.startsWith('--only='));
  if (index < 0) return undefined;
  const value = argv[index]!.startsWith('--only=') ? argv[index]!.slice('--only='.length) : (argv[index + 1] ?? '');
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const known: ReadonlySet<string> = new Set(BENCH_SECTIONS);
  const unknown = names.filter((name) => !known.has(name));
  if (names.length === 0 || unknown.length > 0)
    throw new BenchUsageError(
      `--only ${unknown.length > 0 ? `names unknown sections (${unknown.join(', ')})` : 'needs section names'}; choose from ${BENCH_SECTIONS.join(', ')}`,
    );
  return new Set(names as BenchSection[]);
}

class BenchUsageError extends Error {}

async function readPreviousResults(): Promise<BenchResults | undefined> {
  try {
    return JSON.parse(await readFile('bench/results.json', 'utf8')) as BenchResults;
  } catch {
    return undefined; // no earlier run: every section is measured now
  }
}

// Run only as the entry point, so that the test can import runBench.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    const message = error instanceof BenchUsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`bench: ${message}\n`);
    process.exitCode = 1;
  });
}
