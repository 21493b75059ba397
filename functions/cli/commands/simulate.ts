import { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatProblem } from '../../core/errors.js';
import { loadRuleset, type Ruleset } from '../../core/ruleset.js';
import { readEventLines } from '../../local/event-lines.js';
import { readProjectFiles } from '../../local/project-files.js';
import { type SimulationSummary, runSimulation } from '../../local/simulation.js';
import { type CliOutput, UsageError } from '../output.js';

export async function loadValidRuleset(projectDir: string, what: string): Promise<Ruleset> {
  const { ruleset, problems } = loadRuleset(await readProjectFiles(projectDir));
  if (!ruleset) {
    throw new UsageError(`${what} in ${projectDir} has ${problems.length} problem(s):\n  ${problems.map(formatProblem).join('\n  ')}`, 'run `strata validate` and fix them first');
  }
  return ruleset;
}

function pad(text: string | number, width: number): string {
  return String(text).padStart(width);
}

export function formatWeeklyTable(summary: SimulationSummary, tierIds: string[]): string[] {
  const width = Math.max(8, ...tierIds.map((t) => t.length + 1));
  const lines = [`${'week ending'.padEnd(12)}${tierIds.map((t) => pad(t, width)).join('')}`];
  summary.days.forEach((day, i) => {
    if ((i + 1) % 7 !== 0 && i !== summary.days.length - 1) return;
    lines.push(`${day.date.padEnd(12)}${tierIds.map((t) => pad(day.tiers[t] ?? 0, width)).join('')}`);
  });
  return lines;
}

function progressBar(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    const filled = Math.round((done / total) * 30);
    process.stderr.write(`\r  [${'#'.repeat(filled)}${' '.repeat(30 - filled)}] ${done}/${total} events`);
    if (done === total) process.stderr.write('\n');
  };
}

export interface SimulateOptions {
  events: string;
  rules: string;
  days: string;
  out?: string;
}

export async function simulate(options: SimulateOptions, out: CliOutput): Promise<SimulationSummary> {
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const { events, skipped } = await readEventLines(resolve(options.events)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new UsageError(`simulate: no events file at ${options.events}`, 'generate one with `npm run examples` or pass --events FILE.jsonl');
    throw error;
  });
  for (const line of skipped.slice(0, 20)) out.error(`${options.events}:${line.line}: skipped: ${line.reason}`);
  if (skipped.length > 20) out.error(`... and ${skipped.length - 20} more skipped lines`);
  if (events.length === 0) throw new UsageError(`simulate: ${options.events} has no valid events`);
  const extraDays = Number(options.days);
  if (!Number.isInteger(extraDays) || extraDays < 0) throw new UsageError(`simulate: --days must be a whole number of days, not "${options.days}"`);

  out.info(`Simulating ${events.length} events with ruleset ${ruleset.version} (${ruleset.tiers.map((t) => t.id).join(' < ')}), ${extraDays} extra days...`);
  const summary = await runSimulation({ ruleset, events, skippedLines: skipped.length, extraDays, onProgress: progressBar() });
  const tierIds = ruleset.tiers.map((t) => t.id);
  out.info('');
  out.info(`Tier distribution, ${summary.users} users, ${summary.firstDate} to ${summary.lastDate}:`);
  for (const line of formatWeeklyTable(summary, tierIds)) out.info('  ' + line);
  out.info('');
  out.info(`  promotions ${summary.promotions}, grace entries ${summary.graceStarted}, graces cleared ${summary.graceCleared}, demotions ${summary.demotions}`);
  out.info(`  journeys started: ${tierIds.map((t) => `${t} ${summary.journeysStarted[t] ?? 0}`).join(', ')}`);
  out.info(`  events applied ${summary.eventsApplied}, duplicates ignored ${summary.duplicateEvents}, lines skipped ${summary.skippedLines}`);
  if (options.out) {
    await mkdir(resolve(options.out), { recursive: true });
    const { finalTierByUser: _perUser, ...printable } = summary;
    await writeFile(join(resolve(options.out), 'summary.json'), JSON.stringify(printable, null, 2) + '\n');
    out.info(`  wrote ${join(options.out, 'summary.json')}`);
  }
  return summary;
}

export function simulateCommand(out: CliOutput): Command {
  return new Command('simulate')
    .description('replay an event history through the tier engine on a virtual clock and report what the rules do')
    .option('--events <file>', 'user events, one JSON object per line', 'examples/events.jsonl')
    .option('--rules <dir>', 'the project directory whose rules/ and journeys/ to use', '.')
    .option('--days <n>', 'keep running nightly reviews this many days after the last event', '0')
    .option('--out <dir>', 'write summary.json here')
    .action(async (options: SimulateOptions) => {
      await simulate(options, out);
    });
}
