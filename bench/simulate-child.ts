/**
 * Runs `strata simulate` (the command's own code, in memory) on one history and prints its wall time and this
 * process's peak RSS as JSON on the last line. Started by bench/simulate.ts, so that the RSS is the command's alone.
 */
import '../functions/local/cli-environment.js';
import { simulate } from '../functions/cli/commands/simulate.js';

const [events, out] = process.argv.slice(2);
const started = performance.now();
await simulate({ events: events!, rules: '.', days: '0', out: out! }, { info: () => undefined, error: (line) => process.stderr.write(line + '\n') });
const seconds = (performance.now() - started) / 1000;
process.stdout.write(JSON.stringify({ seconds: Math.round(seconds * 10) / 10, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
