import { Command } from 'commander';
import { resolve } from 'node:path';
import { formatProblem } from '../../core/errors.js';
import { type JourneyChange, journeyChanges } from '../../core/journey/journey-changes.js';
import { type JourneyDefinition, journeySchema } from '../../core/journey/journey-schema.js';
import { type ProjectFiles, loadRuleset } from '../../core/ruleset.js';
import { GitRefError, readProjectFilesAtRef } from '../../local/git-files.js';
import { readProjectFiles } from '../../local/project-files.js';
import { type CliOutput, UsageError } from '../output.js';

export interface ValidateOptions {
  /** Treat warnings (likely mistakes that still load) as errors. */
  strict?: boolean;
  /** A git ref: also list the journey changes since it that affect users mid-journey. */
  against?: string;
}

export async function validateProject(projectDir: string, out: CliOutput, options: ValidateOptions = {}): Promise<number> {
  const files = await readProjectFiles(projectDir);
  if (Object.keys(files).length === 0) {
    throw new UsageError(
      `validate: no rules/ or journeys/ JSON files under ${projectDir}`,
      'run it in a Strata project, or pass the project directory',
    );
  }
  const { ruleset, problems, warnings } = loadRuleset(files);
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (problems.length > 0) {
    for (const problem of problems) out.error(formatProblem(problem));
    out.error(`\n${count(problems.length, 'problem')} found in ${Object.keys(files).length} files.`);
    return 1;
  }
  if (warnings.length > 0) {
    for (const warning of warnings) out.error(formatProblem(warning));
    out.error(
      `\n${count(warnings.length, 'warning')}: likely mistakes that still load. ` +
        (options.strict ? 'Failing because of --strict.' : 'Fix them, or pass --strict to make them fail the check.') +
        '\n',
    );
    if (options.strict) return 1;
  }
  out.info(
    `OK: ${Object.keys(files).length} files, ${ruleset!.tiers.length} tiers (${ruleset!.tiers.map((t) => t.id).join(' < ')}), ` +
      `${ruleset!.metrics.length} metrics, ${Object.keys(ruleset!.attributes).length} attributes, ${Object.keys(ruleset!.journeys).length} journeys; ruleset version ${ruleset!.version}`,
  );
  if (options.against !== undefined) await reportChangesAgainst(projectDir, options.against, ruleset!.journeys, out);
  return 0;
}

/** The journey changes since `ref` that users already in a journey would notice, and what happens to them. */
async function reportChangesAgainst(projectDir: string, ref: string, current: Record<string, JourneyDefinition>, out: CliOutput): Promise<void> {
  let oldFiles: ProjectFiles;
  try {
    oldFiles = await readProjectFilesAtRef(projectDir, ref);
  } catch (error) {
    if (error instanceof GitRefError) throw new UsageError(`validate --against ${ref}: ${error.problem}`, error.hint);
    throw error;
  }
  const { journeys: before, unreadable } = journeysOf(oldFiles);
  const changes = journeyChanges(before, current);
  out.info('');
  for (const file of unreadable) out.info(`note: ${ref}:${file} is not a valid journey there, so its changes are not listed`);
  if (changes.length === 0) {
    out.info(`No journey changes since ${ref} that affect users mid-journey.`);
    return;
  }
  out.info(`Journey changes since ${ref} that affect users mid-journey:`);
  for (const [tier, ofTier] of groupByTier(changes)) {
    out.info(`  ${tier} (${ofTier[0]!.journeyId}):`);
    for (const change of ofTier) {
      out.info(`    - ${change.detail}`);
      out.info(`      ${change.effect}`);
    }
  }
  out.info('');
  out.info(
    `Journeys are pinned to their version: an execution that started before the deploy finishes on the version it started with ` +
      `(the one at ${ref}, or earlier), and users who enter a journey after the deploy get this one.`,
  );
}

/** The journeys at the old ref by tier, read by shape only: the old files met the old version's rules. */
function journeysOf(files: ProjectFiles): { journeys: Record<string, JourneyDefinition>; unreadable: string[] } {
  const journeys: Record<string, JourneyDefinition> = {};
  const unreadable: string[] = [];
  for (const [file, text] of Object.entries(files)) {
    if (!file.startsWith('journeys/')) continue;
    let parsed;
    try {
      parsed = journeySchema.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) journeys[parsed.data.tier] = parsed.data;
    else unreadable.push(file);
  }
  return { journeys, unreadable };
}

function groupByTier(changes: JourneyChange[]): Map<string, JourneyChange[]> {
  const byTier = new Map<string, JourneyChange[]>();
  for (const change of changes) byTier.set(change.tier, [...(byTier.get(change.tier) ?? []), change]);
  return byTier;
}

export function validateCommand(out: CliOutput): Command {
  return new Command('validate')
    .description('check every rule and journey file and how they fit together')
    .argument('[dir]', 'the project directory', '.')
    .option('--strict', 'treat warnings (likely mistakes that still load) as errors')
    .option('--against <ref>', 'also list the journey changes since this git ref that affect users mid-journey')
    .action(async (dir: string, options: ValidateOptions) => {
      process.exitCode = await validateProject(resolve(dir), out, options);
    });
}
