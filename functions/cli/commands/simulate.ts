import { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readEventLines } from '../../local/event-lines.js';
import { EXAMPLE_EVENTS_FILE, EXAMPLE_EVENTS_OPTIONS, ensureExampleEvents } from '../../local/example-events.js';
import { renderReportHtml } from '../../local/report-html.js';
import { compareRulesets, runSimulation } from '../../local/simulation.js';
import type { SimulationSummary } from '../../local/simulation-summary.js';
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

function progressBar(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return (done, total) => {
    const filled = Math.round((done / total) * 30);
    if (filled === last && done !== total) return;
    last = filled;
    process.stderr.write(`\r  ${label} [${'#'.repeat(filled)}${' '.repeat(30 - filled)}] ${done}/${total} events`);
    if (done === total) process.stderr.write('\n');
  };
}

export interface SimulateOptions {
  events: string;
  rules: string;
  compare?: string;
  days: string;
  out?: string;
}

function printSummary(summary: SimulationSummary, out: CliOutput): void {
  out.info(`Tier distribution, ${summary.users} users, ${summary.firstDate} to ${summary.lastDate} (ruleset ${summary.rulesetVersion}):`);
  for (const line of formatWeeklyTable(summary)) out.info('  ' + line);
  const t = summary.transitions;
  out.info(`  promotions ${t.promotions}, grace entries ${t.graceStarted}, graces cleared ${t.graceCleared}, demotions ${t.demotions}`);
  for (const journey of summary.journeys) {
    const steps = journey.steps.map((s) => `${s.stepId} ${s.sent}`).join(' → ');
    out.info(`  journey ${journey.journeyId}: entered ${journey.entered} (held out ${journey.heldOut}); sent ${steps}; converted ${journey.converted.treated} treated, ${journey.converted.holdout} held out`);
  }
  out.info(`  events applied ${summary.events.applied}, duplicates ignored ${summary.events.duplicates}, lines skipped ${summary.events.skippedLines}`);
}

export async function simulate(options: SimulateOptions, out: CliOutput): Promise<SimulationSummary> {
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const candidate = options.compare ? await loadValidRuleset(resolve(options.compare), 'the --compare ruleset') : undefined;
  if (resolve(options.events) === resolve(EXAMPLE_EVENTS_FILE)) {
    const { users, days } = EXAMPLE_EVENTS_OPTIONS;
    if (await ensureExampleEvents(resolve(options.events))) out.info(`Generated ${options.events}: the example population, ${users} users over ${days} days (pass --events FILE.jsonl for your own).`);
  }
  const { events, skipped } = await readEventLines(resolve(options.events)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new UsageError(`simulate: no events file at ${options.events}`, 'generate one with `npm run examples` or pass --events FILE.jsonl');
    throw error;
  });
  for (const line of skipped.slice(0, 20)) out.error(`${options.events}:${line.line}: skipped: ${line.reason}`);
  if (skipped.length > 20) out.error(`... and ${skipped.length - 20} more skipped lines`);
  if (events.length === 0) throw new UsageError(`simulate: ${options.events} has no valid events`);
  const extraDays = Number(options.days);
  if (!Number.isInteger(extraDays) || extraDays < 0) throw new UsageError(`simulate: --days must be a whole number of days, not "${options.days}"`);

  out.info(`Simulating ${events.length} events on a virtual clock, ${extraDays} extra days of nightly reviews...`);
  const baseline = await runSimulation({ ruleset, events, skippedLines: skipped.length, extraDays, onProgress: progressBar(ruleset.version) });
  const summary: SimulationSummary = { ...baseline.summary };
  printSummary(summary, out);
  if (candidate) {
    const compared = await runSimulation({ ruleset: candidate, events, skippedLines: skipped.length, extraDays, onProgress: progressBar(candidate.version) });
    summary.compare = compareRulesets(baseline, compared);
    const c = summary.compare;
    out.info('');
    out.info(`With the rules in ${options.compare} (ruleset ${c.rulesetVersion}): ${c.usersMoved} users end in a different tier (${c.up} up, ${c.down} down)`);
    for (const move of c.moves) out.info(`  ${move.from} → ${move.to}: ${move.count}`);
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
    .description('replay an event history through the whole stack on a virtual clock and report what the rules and journeys do')
    .option('--events <file>', 'user events, one JSON object per line (the example history is generated on first use)', EXAMPLE_EVENTS_FILE)
    .option('--rules <dir>', 'the project directory whose rules/ and journeys/ to use', '.')
    .option('--compare <dir>', 'a second project directory: run its rules on the same events and show the difference')
    .option('--days <n>', 'keep running nightly reviews this many days after the last event', '0')
    .option('--out <dir>', 'write summary.json and report.html here')
    .action(async (options: SimulateOptions) => {
      await simulate(options, out);
    });
}
