/**
 * `npm run bench`: measures Strata against the targets in its design and writes bench/results.json.
 * (This first cut measures evaluation speed; the capacity, throughput, review, journey, cold-start and cost
 * sections build on it.)
 */
import '../functions/local/polyfills.js';
import '../functions/local/quiet-sdk-warnings.js';
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { loadRulesetOrThrow } from '../functions/core/ruleset.js';
import { readProjectFiles } from '../functions/local/project-files.js';
import { measureEvaluation } from './evaluation.js';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const ruleset = loadRulesetOrThrow(await readProjectFiles('.'));
  const evaluation = await measureEvaluation(ruleset, quick ? 2000 : 10000);
  const results = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    evaluation: { coreUs: round(evaluation.coreUs), jreUs: round(evaluation.jreUs), plainJsUs: round(evaluation.plainJsUs) },
  };
  await writeFile('bench/results.json', JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(`evaluation: core ${results.evaluation.coreUs} µs, bare json-rules-engine ${results.evaluation.jreUs} µs, plain JS ${results.evaluation.plainJsUs} µs ` +
    `(core/jre ${evaluation.coreOverJre.toFixed(2)}, plain/jre ${evaluation.plainOverJre.toFixed(2)})\n`);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
