/**
 * Runs `strata simulate` (the command's own code, in memory) on one history and prints its wall time and this
 * process's peak RSS as JSON on the last line. Started by bench/simulate.ts, so that the RSS is the command's alone.
 */
import '../functions/local/cli-environment.js';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { simulate } from '../functions/cli/commands/simulate.js';
import { replayThreadsFor } from '../functions/replay/parallel-replay.js';

const [events, out, threadsArgument] = process.argv.slice(2);
const { size } = await stat(events!);
// The command's own choice unless the bench asks for a number of threads.
const threads = threadsArgument ? Number(threadsArgument) : replayThreadsFor(size);
const started = performance.now();
await simulate(
  { events: events!, rules: '.', days: '0', out: out!, threads: String(threads) },
  { info: () => undefined, error: (line) => process.stderr.write(line + '\n') },
);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  JSON.stringify({ seconds: Math.round(seconds * 10) / 10, maxRssKb: process.resourceUsage().maxRSS, threads, cores: availableParallelism() }) + '\n',
);
