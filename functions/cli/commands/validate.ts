import { Command } from 'commander';
import { resolve } from 'node:path';
import { formatProblem } from '../../core/errors.js';
import { loadRuleset } from '../../core/ruleset.js';
import { readProjectFiles } from '../../local/project-files.js';
import { type CliOutput, UsageError } from '../output.js';

export async function validateProject(projectDir: string, out: CliOutput, options: { strict?: boolean } = {}): Promise<number> {
  const files = await readProjectFiles(projectDir);
  if (Object.keys(files).length === 0) {
    throw new UsageError(`validate: no rules/ or journeys/ JSON files under ${projectDir}`, 'run it in a Strata project, or pass the project directory');
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
  return 0;
}

export function validateCommand(out: CliOutput): Command {
  return new Command('validate')
    .description('check every rule and journey file and how they fit together')
    .argument('[dir]', 'the project directory', '.')
    .option('--strict', 'treat warnings (likely mistakes that still load) as errors')
    .action(async (dir: string, options: { strict?: boolean }) => {
      process.exitCode = await validateProject(resolve(dir), out, options);
    });
}
