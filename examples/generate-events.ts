/**
 * Writes an example event stream (see functions/local/example-population.ts for who is in it):
 *
 *   npx tsx examples/generate-events.ts --users 2000 --days 60 --seed 7 --out examples/events.jsonl
 */
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { EXAMPLE_EVENTS_FILE, EXAMPLE_EVENTS_OPTIONS as defaults } from '../functions/local/example-events.js';
import { generateEvents, toJsonLines } from '../functions/local/example-population.js';

const program = new Command('generate-events')
  .option('--users <n>', 'how many users', String(defaults.users))
  .option('--days <n>', 'how many days', String(defaults.days))
  .option('--seed <n>', 'random seed', String(defaults.seed))
  .option('--start <date>', 'first day (local date, Asia/Shanghai)', defaults.start)
  .option('--out <file>', 'output JSON Lines file', EXAMPLE_EVENTS_FILE)
  .parse();
const opts = program.opts<{ users: string; days: string; seed: string; start: string; out: string }>();
const events = generateEvents({ users: Number(opts.users), days: Number(opts.days), seed: Number(opts.seed), start: opts.start });
writeFileSync(opts.out, toJsonLines(events));
process.stdout.write(`wrote ${events.length} events for ${opts.users} users over ${opts.days} days to ${opts.out}\n`);
