/**
 * `strata simulate` speed: the in-memory replay engine on the example history (examples/events.jsonl), the in-memory
 * engine and the full-stack replay on a smaller history in the same run, and a million-event history through the
 * whole command (streamed read, replay on one worker thread per core, summary) in a child process, whose peak RSS
 * is its own.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ruleset } from '../functions/core/ruleset.js';
import { EXAMPLE_EVENTS_OPTIONS } from '../functions/local/example-events.js';
import { generateEvents, toJsonLines } from '../functions/local/example-population.js';
import { runSimulation } from '../functions/local/simulation.js';
import { runReplay } from '../functions/replay/replay-engine.js';

export interface SimulateFigures {
  /** Events of the example history (examples/events.jsonl) that the in-memory rate is measured on. */
  events: number;
  /** In-memory engine, one thread, on the example history. */
  eventsPerSec: number;
  /** In-memory events per second of CPU time: one core's rate, whatever else the machine is doing. */
  eventsPerCpuSec: number;
  /** The full stack, on a smaller history (the full stack runs at a few hundred events/s). */
  fullStackEventsPerSec: number;
  /** That smaller history, and the in-memory rate on it, checked to give the same summary as the full stack. */
  fullStackHistory: { events: number; inMemoryEventsPerSec: number };
  millionEvents: { events: number; seconds: number; peakRssMb: number; threads: number };
}

export interface SimulateBenchOptions {
  /** Users of the example population that the full stack replays (2,000 over 60 days is examples/events.jsonl). */
  users: number;
  /** Events of the big history; 1,000,000 in a full run. */
  bigEvents: number;
}

async function timedReplay<T>(replay: () => Promise<T>): Promise<{ result: T; seconds: number; cpuSeconds: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await replay();
  const cpu = process.cpuUsage(cpuBefore);
  return { result, seconds: (performance.now() - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

export async function measureSimulate(ruleset: Ruleset, options: SimulateBenchOptions): Promise<SimulateFigures> {
  const example = generateEvents(EXAMPLE_EVENTS_OPTIONS);
  const inMemory = await timedReplay(() => runReplay({ ruleset, events: example }));

  const events = generateEvents({ ...EXAMPLE_EVENTS_OPTIONS, users: options.users });
  const sameHistory = await timedReplay(() => runReplay({ ruleset, events }));
  const fullStack = await timedReplay(() => runSimulation({ ruleset, events }));
  if (JSON.stringify(sameHistory.result.summary) !== JSON.stringify(fullStack.result.summary))
    throw new Error('Bench: the in-memory and full-stack summaries differ on the same history');

  const eventsPerUser = example.length / EXAMPLE_EVENTS_OPTIONS.users;
  const millionEvents = await measureBigHistory(Math.round(options.bigEvents / eventsPerUser));
  return {
    events: example.length,
    eventsPerSec: example.length / inMemory.seconds,
    eventsPerCpuSec: example.length / inMemory.cpuSeconds,
    fullStackEventsPerSec: events.length / fullStack.seconds,
    fullStackHistory: { events: events.length, inMemoryEventsPerSec: Math.round(events.length / sameHistory.seconds) },
    millionEvents,
  };
}

async function measureBigHistory(users: number): Promise<SimulateFigures['millionEvents']> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-simulate-'));
  try {
    const file = join(dir, 'events.jsonl');
    const events = generateEvents({ ...EXAMPLE_EVENTS_OPTIONS, users, seed: 11 });
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
    const { seconds, maxRssKb, threads } = JSON.parse(output.trim().split('\n').pop()!) as { seconds: number; maxRssKb: number; threads: number };
    return { events: count, seconds, peakRssMb: Math.round(maxRssKb / 1024), threads };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
