import { formatProblem } from '../core/errors.js';
import { loadRuleset, type Ruleset } from '../core/ruleset.js';
import { readProjectFiles } from '../local/project-files.js';
import { UsageError } from './output.js';

/**
 * The project's ruleset, or a UsageError listing every problem. Its own module (not the simulator's) so that
 * commands reading one user load only the rules, never the whole local stack.
 */
export async function loadValidRuleset(projectDir: string, what: string): Promise<Ruleset> {
  const { ruleset, problems } = loadRuleset(await readProjectFiles(projectDir));
  if (!ruleset) {
    throw new UsageError(
      `${what} in ${projectDir} has ${problems.length} problem(s):\n  ${problems.map(formatProblem).join('\n  ')}`,
      'run `strata validate` and fix them first',
    );
  }
  return ruleset;
}
