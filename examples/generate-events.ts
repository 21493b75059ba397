/**
 * Writes an example event stream (see functions/local/example-population.ts for who is in it):
 *
 *   npx tsx examples/generate-events.ts --users 2000 --days 60 --seed 7 --out examples/events.jsonl
 */
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { generateEvents, toJsonLines } from '../functions/local/example-population.js';

const program = new Command('generate-events')
  .option('--users <n>', 'how many users', '2000')
  .option('--days <n>', 'how many days', '60')
  .option('--seed <n>', 'random seed', '7')
  .option('--start <date>', 'first day (local date, Asia/Shanghai)', '2026-09-01')
  .option('--out <file>', 'output JSON Lines file', 'examples/events.jsonl')
  .parse();
const opts = program.opts<{ users: string; days: string; seed: string; start: string; out: string }>();
const events = generateEvents({ users: Number(opts.users), days: Number(opts.days), seed: Number(opts.seed), start: opts.start });
writeFileSync(opts.out, toJsonLines(events));
process.stdout.write(`wrote ${events.length} events for ${opts.users} users over ${opts.days} days to ${opts.out}\n`);
