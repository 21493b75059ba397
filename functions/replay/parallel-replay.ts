/**
 * The in-memory replay of a history file on several cores: one worker thread per partition of the users
 * (functions/replay/partitions.ts). Each worker reads the file, keeps its own users' events, and replays them on the
 * clock of the whole history, which this thread puts together from every worker's event times. The results are
 * added up here. Memory is bounded the same way: a worker spills its users' events to temporary files, one per
 * sub-partition of its users, and replays the sub-partitions one at a time, so that no thread holds more than a
 * sub-partition's events; this one holds none. The temporary files live in a folder of the OS's temporary
 * directory that close() removes, also when reading or a replay fails.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Ruleset } from '../core/ruleset.js';
import { startBundledWorker } from '../local/bundled-worker.js';
import type { SkippedLine } from '../local/event-lines.js';
import { mergeHistoryTimes, mergeResults } from './partitions.js';
import type { RejectedEvent } from './rejections.js';
import type { SimulationResult } from './replay-engine.js';
import type { ShipDayChange } from './ship-day.js';
import type { SimulationSummary } from './simulation-summary.js';

export interface ReplayWorkerData {
  file: string;
  /** This thread's partition of `count`, replayed in `subPartitions` parts one after the other. */
  partition: { index: number; count: number; subPartitions: number };
  /** The folder for the thread's temporary files. */
  spillDir: string;
  /** Project folders whose rulesets the runs name by index. */
  rulesDirs: string[];
}

export type ToWorker =
  | { kind: 'run'; ruleset: number; shipDayRuleset?: number; extraDays: number; skippedLines: number }
  | { kind: 'clock'; times: Float64Array }
  | { kind: 'close' };

export type ToMain =
  | { kind: 'reading'; bytesRead: number; totalBytes: number }
  | { kind: 'read'; events: number; skipped: SkippedLine[] }
  | { kind: 'times'; times: Float64Array }
  | { kind: 'progress'; done: number }
  | {
      kind: 'result';
      summary: SimulationSummary;
      finalTierByUser: Array<[string, string]>;
      rejected: RejectedEvent[];
      shipDay?: ShipDayChange[];
    }
  | { kind: 'failed'; message: string; stack?: string };

export class ParallelReplayError extends Error {
  override readonly name = 'ParallelReplayError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`Parallel replay: ${message}`, options);
  }
}

/**
 * From this size on, a history is replayed by worker threads (even one), which hold a sub-partition of it at a time;
 * below it, in the command's own thread, which holds it whole, and a thread is not worth starting.
 */
export const PARTITIONED_REPLAY_BYTES = 32e6;

/** Threads worth starting for a history of this size: one per core, but a small history is not worth a thread. */
export function replayThreadsFor(fileBytes: number): number {
  return fileBytes < PARTITIONED_REPLAY_BYTES ? 1 : Math.min(availableParallelism(), 8);
}

/**
 * How much of a history file's text a sub-partition holds, at most: its events, parsed and prepared, take a few
 * times that in memory while it is replayed.
 */
export const SUB_PARTITION_BYTES = 8e6;

/** Sub-partitions per thread for a history of this size, so that each holds at most SUB_PARTITION_BYTES of it. */
export function subPartitionsFor(fileBytes: number, threads: number): number {
  return Math.max(1, Math.ceil(fileBytes / threads / SUB_PARTITION_BYTES));
}

export interface ParallelReplayInput {
  file: string;
  threads: number;
  /** Sub-partitions per thread; by default as subPartitionsFor the file's size. */
  subPartitions?: number;
  /** Each ruleset a run may use, with the project folder a worker loads it from. */
  rulesets: Array<{ ruleset: Ruleset; dir: string }>;
  onReading?: (bytesRead: number, totalBytes: number) => void;
}

export interface ParallelRun {
  ruleset: number;
  shipDayRuleset?: number;
  extraDays: number;
  skippedLines: number;
  onProgress?: (done: number, total: number) => void;
}

/** One worker and the messages it has sent that nobody has taken yet. */
class WorkerLink {
  private readonly inbox: ToMain[] = [];
  private waiting: { resolve: (message: ToMain) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    readonly worker: Worker,
    private readonly onSide: (message: ToMain) => boolean,
  ) {
    worker.on('message', (message: ToMain) => {
      if (this.onSide(message)) return;
      if (message.kind === 'failed')
        return this.fail(new ParallelReplayError(`a worker thread failed: ${message.message}`, { cause: message.stack }));
      this.inbox.push(message);
      this.deliver();
    });
    worker.on('error', (error) => this.fail(new ParallelReplayError(`a worker thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => {
      if (code !== 0) this.fail(new ParallelReplayError(`a worker thread exited with code ${code} (out of memory?)`));
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.deliver();
  }

  private deliver(): void {
    if (!this.waiting) return;
    const { resolve, reject } = this.waiting;
    if (this.inbox.length > 0) {
      this.waiting = undefined;
      resolve(this.inbox.shift()!);
    } else if (this.failure) {
      this.waiting = undefined;
      reject(this.failure);
    }
  }

  async receive<K extends ToMain['kind']>(kind: K): Promise<Extract<ToMain, { kind: K }>> {
    const message = await new Promise<ToMain>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
    if (message.kind !== kind) throw new ParallelReplayError(`expected a ${kind} message from a worker thread, got ${message.kind}`);
    return message as Extract<ToMain, { kind: K }>;
  }

  send(message: ToWorker): void {
    this.worker.postMessage(message);
  }
}

export interface ParallelReplay {
  /** Events kept (valid lines) and lines skipped, in file order, over all workers. */
  events: number;
  skipped: SkippedLine[];
  run(run: ParallelRun): Promise<SimulationResult>;
  close(): Promise<void>;
}

/**
 * Makes the folder for the threads' temporary files, removed should the process end before close() removes it: on
 * exit (process.exit on the way out), and on Ctrl-C or a kill, which then go on as they would have (the process ends
 * by the signal) unless someone else listens for it. The watch starts before the folder exists, so that no signal
 * finds it unwatched. Returns the folder and the function that stops watching.
 */
async function makeSpillDir(): Promise<{ dir: string; stopWatching: () => void }> {
  let dir: string | undefined;
  const remove = (): void => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    remove();
    stopWatching();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const stopWatching = (): void => {
    process.off('exit', remove);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('exit', remove);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    dir = await mkdtemp(join(tmpdir(), 'strata-simulate-'));
  } catch (error) {
    stopWatching();
    throw error;
  }
  return { dir, stopWatching };
}

/** Starts the workers and waits until each has read the file. */
export async function startParallelReplay(input: ParallelReplayInput): Promise<ParallelReplay> {
  const subPartitions = input.subPartitions ?? subPartitionsFor((await stat(input.file)).size, input.threads);
  const { dir: spillDir, stopWatching } = await makeSpillDir();
  let progress: ((done: number) => void) | undefined;
  const links: WorkerLink[] = [];
  const close = async (): Promise<void> => {
    try {
      await Promise.all(links.map((link) => link.worker.terminate()));
    } finally {
      await rm(spillDir, { recursive: true, force: true });
      stopWatching();
    }
  };
  try {
    for (let index = 0; index < input.threads; index++) {
      const data: ReplayWorkerData = {
        file: input.file,
        partition: { index, count: input.threads, subPartitions },
        spillDir,
        rulesDirs: input.rulesets.map((r) => r.dir),
      };
      const worker = startBundledWorker('replay-worker', import.meta.url, data);
      links.push(
        new WorkerLink(worker, (message) => {
          if (message.kind === 'reading') input.onReading?.(message.bytesRead, message.totalBytes);
          else if (message.kind === 'progress') progress?.(message.done);
          else return false;
          return true;
        }),
      );
    }
    const reads = await Promise.all(links.map((link) => link.receive('read')));
    return {
      events: reads.reduce((sum, read) => sum + read.events, 0),
      skipped: reads.flatMap((read) => read.skipped).sort((a, b) => a.line - b.line),
      async run(run) {
        const { onProgress, ...order } = run;
        for (const link of links) link.send({ kind: 'run', ...order });
        const clock = mergeHistoryTimes((await Promise.all(links.map((link) => link.receive('times')))).map((message) => message.times));
        if (clock.length === 0) throw new ParallelReplayError('no events to replay');
        let done = 0;
        progress = (more) => {
          done += more;
          onProgress?.(done, clock.length);
        };
        for (const link of links) link.send({ kind: 'clock', times: clock });
        const parts = await Promise.all(links.map((link) => link.receive('result')));
        progress = undefined;
        return mergeResults(
          input.rulesets[run.ruleset]!.ruleset,
          parts.map((part) => ({
            summary: part.summary,
            finalTierByUser: new Map(part.finalTierByUser),
            rejected: part.rejected,
            ...(part.shipDay ? { shipDay: part.shipDay } : {}),
          })),
        );
      },
      async close() {
        for (const link of links) link.send({ kind: 'close' });
        await close();
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}
