/**
 * `strata simulate` speed: the in-memory replay engine and the full-stack replay on the same example history in the
 * same run, and a million-event history through the whole command (streamed read, replay, summary) in a child
 * process, whose peak RSS is its own.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ruleset } from '../functions/core/ruleset.js';
import { generateEvents, toJsonLines } from '../functions/local/example-population.js';
import { runSimulation } from '../functions/local/simulation.js';
import { runReplay } from '../functions/replay/replay-engine.js';

export interface SimulateFigures {
  /** Events in the history both engines replayed. */
  events: number;
  eventsPerSec: number;
  fullStackEventsPerSec: number;
  /** In-memory events per second of CPU time: one core's rate, whatever else the machine is doing. */
  eventsPerCpuSec: number;
  millionEvents: { events: number; seconds: number; peakRssMb: number };
}

export interface SimulateBenchOptions {
  /** Users of the example population replayed by both engines (2,000 over 60 days is examples/events.jsonl). */
  users: number;
  /** Events of the big history; 1,000,000 in a full run. */
  bigEvents: number;
}

/** The example population's events per user over 60 days, for sizing the big history. */
const EVENTS_PER_USER = 27.3;

export async function measureSimulate(ruleset: Ruleset, options: SimulateBenchOptions): Promise<SimulateFigures> {
  const events = generateEvents({ users: options.users, days: 60, seed: 7, start: '2026-09-01' });
  const cpuBefore = process.cpuUsage();
  let started = performance.now();
  const inMemory = await runReplay({ ruleset, events });
  const inMemorySeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  started = performance.now();
  const fullStack = await runSimulation({ ruleset, events });
  const fullStackSeconds = (performance.now() - started) / 1000;
  if (JSON.stringify(inMemory.summary) !== JSON.stringify(fullStack.summary))
    throw new Error('Bench: the in-memory and full-stack summaries differ on the same history');

  const millionEvents = await measureBigHistory(Math.round(options.bigEvents / EVENTS_PER_USER));
  return {
    events: events.length,
    eventsPerSec: events.length / inMemorySeconds,
    fullStackEventsPerSec: events.length / fullStackSeconds,
    eventsPerCpuSec: events.length / ((cpu.user + cpu.system) / 1e6),
    millionEvents,
  };
}

async function measureBigHistory(users: number): Promise<SimulateFigures['millionEvents']> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-simulate-'));
  try {
    const file = join(dir, 'events.jsonl');
    const events = generateEvents({ users, days: 60, seed: 11, start: '2026-09-01' });
    await writeFile(file, toJsonLines(events));
    const count = events.length;
    events.length = 0;
    const child = fileURLToPath(new URL('./simulate-child.ts', import.meta.url));
    const output = await new Promise<string>((resolve, reject) => {
      const run = spawn(process.execPath, ['--import', 'tsx', child, file, join(dir, 'out')], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      run.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      run.on('error', reject);
      run.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`Bench: the million-event simulate exited with ${code}`))));
    });
    const { seconds, maxRssKb } = JSON.parse(output.trim().split('\n').pop()!) as { seconds: number; maxRssKb: number };
    return { events: count, seconds, peakRssMb: Math.round(maxRssKb / 1024) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
