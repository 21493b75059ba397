import { Command } from 'commander';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { basename, join, resolve } from 'node:path';
import type { Ruleset } from '../../core/ruleset.js';
import { type SkippedLine, streamEventLines } from '../../local/event-lines.js';
import { EXAMPLE_EVENTS_FILE, EXAMPLE_EVENTS_OPTIONS, ensureExampleEvents } from '../../local/example-events.js';
import { renderReportHtml } from '../../local/report-html.js';
import { compareRulesets, movesCsv } from '../../replay/compare.js';
import { PARTITIONED_REPLAY_BYTES, replayThreadsFor, startParallelReplay } from '../../replay/parallel-replay.js';
import { type ReplayOptions, type SimulationResult, runReplay } from '../../replay/replay-engine.js';
import { REPLAY_HOLDOUT_CAVEAT, describeDifference, describeGroup } from '../../replay/holdout-text.js';
import type { ComparedSide, RulesetComparison, SimulationSummary } from '../../replay/simulation-summary.js';
import { loadValidRuleset } from '../load-ruleset.js';
import { type CliOutput, UsageError } from '../output.js';

// Also exported from here, where it used to live, for callers that import it with the simulator.
export { loadValidRuleset };

export function formatWeeklyTable(summary: SimulationSummary): string[] {
  const tierIds = summary.tiers.map((t) => t.id);
  const width = Math.max(8, ...tierIds.map((t) => t.length + 1));
  const lines = [`${'week ending'.padEnd(12)}${tierIds.map((t) => t.padStart(width)).join('')}`];
  summary.days.forEach((day, i) => {
    if ((i + 1) % 7 !== 0 && i !== summary.days.length - 1) return;
    lines.push(`${day.date.padEnd(12)}${tierIds.map((t) => String(day.tiers[t] ?? 0).padStart(width)).join('')}`);
  });
  return lines;
}

/** A bar on a terminal; elsewhere (a CI log, a pipe) one line per tenth, so that a long run shows it is alive. */
export function progressReporter(
  label: string,
  unit: string,
  out: CliOutput,
  isTty = Boolean(process.stderr.isTTY),
): (done: number, total: number) => void {
  // Off a terminal 0 % is not worth a line; on one, the empty bar is.
  let last = isTty ? -1 : 0;
  return (done, total) => {
    const fraction = total > 0 ? done / total : 1;
    if (isTty) {
      const filled = Math.round(fraction * 30);
      if (filled === last && done !== total) return;
      last = filled;
      process.stderr.write(`\r  ${label} [${'#'.repeat(filled)}${' '.repeat(30 - filled)}] ${done}/${total} ${unit}`);
      if (done === total) process.stderr.write('\n');
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth === last) return;
    last = tenth;
    out.info(`  ${label}: ${tenth * 10}% (${done}/${total} ${unit})`);
  };
}

/** Off a terminal, a run shorter than this needs no progress lines. */
const PROGRESS_MIN_EVENTS = 20_000;

function readingProgress(out: CliOutput): (bytesRead: number, totalBytes: number) => void {
  const report = progressReporter('reading', 'MB', out);
  const megabytes = (bytes: number): number => Math.round(bytes / 1e5) / 10;
  // A file that reads in a blink needs no progress of its own.
  return (bytesRead, totalBytes) => {
    if (totalBytes >= 16e6) report(megabytes(bytesRead), megabytes(totalBytes));
  };
}

export interface SimulateOptions {
  events: string;
  rules: string;
  compare?: string;
  days: string;
  out?: string;
  movesCsv?: string;
  /** Replay through the embedded stack (dynalite, the local queue, aws-local-stepfunctions) instead of in memory. */
  fullStack?: boolean;
  /** Worker threads for the in-memory replay, each replaying a share of the users; by default one per core for a big history. */
  threads?: string;
}

async function replayWith(fullStack: boolean | undefined, replay: ReplayOptions): Promise<SimulationResult> {
  if (!fullStack) return runReplay(replay);
  // Loaded only when asked for: the embedded stack brings dynalite and the AWS SDK.
  const { runSimulation } = await import('../../local/simulation.js');
  return runSimulation(replay);
}

function horizonText(days: number | null): string {
  return days === null ? 'their stay in the tier' : `${Math.round(days * 10) / 10} days of entry or until leaving the tier`;
}

function printSummary(summary: SimulationSummary, out: CliOutput): void {
  out.info(`Tier distribution, ${summary.users} users, ${summary.firstDate} to ${summary.lastDate} (ruleset ${summary.rulesetVersion}):`);
  for (const line of formatWeeklyTable(summary)) out.info('  ' + line);
  const t = summary.transitions;
  out.info(`  promotions ${t.promotions}, grace entries ${t.graceStarted}, graces cleared ${t.graceCleared}, demotions ${t.demotions}`);
  for (const journey of summary.journeys) {
    const steps = journey.steps.map((s) => `${s.stepId} ${s.sent}`).join(' → ');
    const { treated, heldOut } = journey.observed;
    out.info(`  journey ${journey.journeyId}: entered ${journey.entered} (held out ${journey.heldOut}); sent ${steps}`);
    out.info(
      `    converted within ${horizonText(journey.observed.horizonDays)}: treated ${describeGroup(treated)}, held out ${describeGroup(heldOut)}; ${describeDifference(journey.observed)}`,
    );
  }
  if (summary.journeys.some((journey) => journey.observed.heldOut.users > 0)) out.info(`  ${REPLAY_HOLDOUT_CAVEAT}`);
  const e = summary.events;
  out.info(`  events applied ${e.applied}, duplicates ignored ${e.duplicates}, lines skipped ${e.skippedLines}, rejected by ingest ${e.rejected}`);
}

const sideName = (side: ComparedSide): string => `${side.label}${side.describe ? ` @ ${side.describe}` : ''} (ruleset ${side.rulesetVersion})`;

/** The folder's name, and `git describe` when the folder is in a git checkout (nothing when it is not). */
async function describeSide(dir: string, ruleset: Ruleset): Promise<ComparedSide> {
  const path = resolve(dir);
  const describe = await new Promise<string | undefined>((done) => {
    execFile('git', ['-C', path, 'describe', '--always', '--dirty', '--tags'], { timeout: 5_000 }, (error, stdout) =>
      done(error ? undefined : stdout.trim() || undefined),
    );
  });
  return { label: basename(path), ...(describe ? { describe } : {}), rulesetVersion: ruleset.version };
}

function printComparison(c: RulesetComparison, out: CliOutput): void {
  out.info('');
  out.info(`Comparison. Baseline: ${sideName(c.baseline)}. The change: ${sideName(c.candidate)}.`);
  out.info(`  With the change, ${c.usersMoved} users end in a different tier (${c.up} up, ${c.down} down)`);
  for (const move of c.moves) out.info(`    ${move.from} → ${move.to}: ${move.count}`);
  for (const journey of c.journeys) {
    const { before, after } = journey;
    const steps = [...new Set([...Object.keys(before?.sent ?? {}), ...Object.keys(after?.sent ?? {})])];
    const pair = (a: number | undefined, b: number | undefined): string => `${a ?? '–'} → ${b ?? '–'}`;
    out.info(
      `  journey for ${journey.tier} (${after?.journeyId ?? before?.journeyId}): entered ${pair(before?.entered, after?.entered)}; ` +
        `${steps.map((step) => `${step} ${pair(before?.sent[step], after?.sent[step])}`).join(', ')}; converted ${pair(before?.converted, after?.converted)}`,
    );
  }
  const ship = c.shipDay;
  out.info(
    `  On the day the change ships (every user judged by it once, from where the baseline leaves them): ${ship.promoted} promoted at once, ${ship.graceStarted} enter grace, ${ship.demoted} demoted${ship.tierRemoved ? `, ${ship.tierRemoved} in a tier the change removes` : ''}`,
  );
}

function reportRejections(eventsFile: string, result: SimulationResult, out: CliOutput): void {
  const { rejected } = result;
  for (const event of rejected.slice(0, 20))
    out.error(`${eventsFile}:${event.line ?? '?'}: rejected by ingest (event ${event.eventId}): ${event.reason}`);
  if (rejected.length > 20) out.error(`... and ${rejected.length - 20} more events rejected by ingest`);
}

export async function simulate(options: SimulateOptions, out: CliOutput): Promise<SimulationSummary> {
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const candidate = options.compare ? await loadValidRuleset(resolve(options.compare), 'the --compare ruleset') : undefined;
  const extraDays = Number(options.days);
  if (!Number.isInteger(extraDays) || extraDays < 0) throw new UsageError(`simulate: --days must be a whole number of days, not "${options.days}"`);
  if (resolve(options.events) === resolve(EXAMPLE_EVENTS_FILE)) {
    const { users, days } = EXAMPLE_EVENTS_OPTIONS;
    if (await ensureExampleEvents(resolve(options.events)))
      out.info(`Generated ${options.events}: the example population, ${users} users over ${days} days (pass --events FILE.jsonl for your own).`);
  }
  const eventsFile = resolve(options.events);
  const fileBytes = await stat(eventsFile).then(
    (stats) => stats.size,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT')
        throw new UsageError(`simulate: no events file at ${options.events}`, 'generate one with `npm run examples` or pass --events FILE.jsonl');
      throw error;
    },
  );
  const threads = simulateThreads(options, fileBytes);
  const history =
    threads > 1 || (!options.fullStack && fileBytes >= PARTITIONED_REPLAY_BYTES)
      ? await readInThreads(eventsFile, threads, options, ruleset, candidate, out)
      : await readInProcess(eventsFile, options.fullStack, out);
  try {
    const { skipped } = history;
    for (const line of skipped.slice(0, 20)) out.error(`${options.events}:${line.line}: skipped: ${line.reason}`);
    if (skipped.length > 20) out.error(`... and ${skipped.length - 20} more skipped lines`);
    if (history.events === 0) throw new UsageError(`simulate: ${options.events} has no valid events`);

    const engine = options.fullStack ? 'through the embedded stack (--full-stack)' : threads > 1 ? `in memory on ${threads} threads` : 'in memory';
    out.info(`Simulating ${history.events} events ${engine} on a virtual clock, ${extraDays} extra days of nightly reviews...`);
    const progress = (ruleset: Ruleset): Pick<ReplayOptions, 'onProgress'> =>
      history.events >= PROGRESS_MIN_EVENTS || process.stderr.isTTY ? { onProgress: progressReporter(ruleset.version, 'events', out) } : {};
    const replay = (side: Ruleset, shipDay?: Ruleset): Promise<SimulationResult> =>
      history.replay({ ruleset: side, extraDays, skippedLines: skipped.length, ...progress(side), ...(shipDay ? { shipDayRuleset: shipDay } : {}) });
    return await reportOn(options, out, ruleset, candidate, await replay(ruleset, candidate), candidate ? () => replay(candidate) : undefined);
  } finally {
    await history.close();
  }
}

function simulateThreads(options: SimulateOptions, fileBytes: number): number {
  if (options.threads === undefined) return options.fullStack ? 1 : replayThreadsFor(fileBytes);
  const threads = Number(options.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64)
    throw new UsageError(`simulate: --threads must be a whole number from 1 to 64, not "${options.threads}"`);
  if (options.fullStack && threads > 1) throw new UsageError('simulate: --threads is for the in-memory replay; --full-stack runs on one thread');
  return threads;
}

/** A history ready to replay under a ruleset, read in this thread or by worker threads. */
interface ReadHistory {
  events: number;
  skipped: SkippedLine[];
  replay(options: Omit<ReplayOptions, 'events' | 'lines'>): Promise<SimulationResult>;
  close(): Promise<void>;
}

async function readInProcess(eventsFile: string, fullStack: boolean | undefined, out: CliOutput): Promise<ReadHistory> {
  const { events, lines, skipped } = await streamEventLines(eventsFile, readingProgress(out));
  return { events: events.length, skipped, replay: (options) => replayWith(fullStack, { ...options, events, lines }), close: async () => undefined };
}

async function readInThreads(
  eventsFile: string,
  threads: number,
  options: SimulateOptions,
  ruleset: Ruleset,
  candidate: Ruleset | undefined,
  out: CliOutput,
): Promise<ReadHistory> {
  const rulesets = [{ ruleset, dir: resolve(options.rules) }, ...(candidate ? [{ ruleset: candidate, dir: resolve(options.compare!) }] : [])];
  const parallel = await startParallelReplay({ file: eventsFile, threads, rulesets, onReading: readingProgress(out) });
  const indexOf = (side: Ruleset): number => rulesets.findIndex((r) => r.ruleset === side);
  return {
    events: parallel.events,
    skipped: parallel.skipped,
    replay: ({ ruleset: side, shipDayRuleset, extraDays, skippedLines, onProgress }) =>
      parallel.run({
        ruleset: indexOf(side),
        ...(shipDayRuleset ? { shipDayRuleset: indexOf(shipDayRuleset) } : {}),
        extraDays: extraDays ?? 0,
        skippedLines: skippedLines ?? 0,
        ...(onProgress ? { onProgress } : {}),
      }),
    close: () => parallel.close(),
  };
}

async function reportOn(
  options: SimulateOptions,
  out: CliOutput,
  ruleset: Ruleset,
  candidate: Ruleset | undefined,
  baseline: SimulationResult,
  replayCandidate: (() => Promise<SimulationResult>) | undefined,
): Promise<SimulationSummary> {
  reportRejections(options.events, baseline, out);
  const summary: SimulationSummary = { ...baseline.summary };
  printSummary(summary, out);
  if (candidate && replayCandidate) {
    const compared = await replayCandidate();
    reportRejections(`${options.events} (under the --compare rules)`, compared, out);
    const c = compareRulesets(baseline, compared, {
      baseline: await describeSide(options.rules, ruleset),
      candidate: await describeSide(options.compare!, candidate),
    });
    summary.compare = c;
    printComparison(c, out);
    if (options.movesCsv) {
      await writeFile(resolve(options.movesCsv), movesCsv(c.users));
      out.info(`  wrote ${c.users.length} moves to ${options.movesCsv}`);
    }
  } else if (options.movesCsv) {
    throw new UsageError('simulate: --moves-csv needs --compare DIR', 'the moves are between the rules in --rules and in --compare');
  }
  if (options.out) {
    const dir = resolve(options.out);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    await writeFile(join(dir, 'report.html'), renderReportHtml(summary));
    out.info(`  wrote ${join(options.out, 'summary.json')} and ${join(options.out, 'report.html')}`);
  }
  return summary;
}

export function simulateCommand(out: CliOutput): Command {
  return new Command('simulate')
    .description('replay an event history on a virtual clock and report what the rules and journeys do')
    .option('--events <file>', 'user events, one JSON object per line (the example history is generated on first use)', EXAMPLE_EVENTS_FILE)
    .option('--rules <dir>', 'the project directory whose rules/ and journeys/ to use', '.')
    .option('--compare <dir>', 'a second project directory: run its rules on the same events and show the difference')
    .option('--days <n>', 'keep running nightly reviews this many days after the last event', '0')
    .option('--out <dir>', 'write summary.json and report.html here')
    .option('--moves-csv <file>', 'with --compare: write every user who ends in a different tier (userId,from,to) to this CSV file')
    .option(
      '--threads <n>',
      'worker threads for the in-memory replay, each replaying a share of the users (default: one per core for a history over 32 MB; a history that size is replayed a part at a time, in bounded memory, on any number)',
    )
    .option(
      '--full-stack',
      'replay through the embedded stack (dynalite, local queue, Step Functions emulator) instead of in memory: slower, the fidelity reference',
    )
    .action(async (options: SimulateOptions) => {
      await simulate(options, out);
    });
}
