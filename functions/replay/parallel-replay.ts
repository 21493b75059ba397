/**
 * The in-memory replay of a history file on several cores: one worker thread per partition of the users
 * (functions/replay/partitions.ts). Each worker reads the file, keeps its own users' events, and replays them on the
 * clock of the whole history, which this thread puts together from every worker's event times. The results are
 * added up here. Memory is spread the same way: no thread holds the whole history, this one holds none of it.
 */
import { availableParallelism } from 'node:os';
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
  partition: { index: number; count: number };
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

/** Threads worth starting for a history of this size: one per core, but a small history is not worth a thread. */
export function replayThreadsFor(fileBytes: number): number {
  return fileBytes < 32e6 ? 1 : Math.min(availableParallelism(), 8);
}

export interface ParallelReplayInput {
  file: string;
  threads: number;
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

/** Starts the workers and waits until each has read the file. */
export async function startParallelReplay(input: ParallelReplayInput): Promise<ParallelReplay> {
  let progress: ((done: number) => void) | undefined;
  const links = Array.from({ length: input.threads }, (_, index) => {
    const data: ReplayWorkerData = { file: input.file, partition: { index, count: input.threads }, rulesDirs: input.rulesets.map((r) => r.dir) };
    return new WorkerLink(startBundledWorker('replay-worker', import.meta.url, data), (message) => {
      if (message.kind === 'reading') input.onReading?.(message.bytesRead, message.totalBytes);
      else if (message.kind === 'progress') progress?.(message.done);
      else return false;
      return true;
    });
  });
  const close = async (): Promise<void> => {
    await Promise.all(links.map((link) => link.worker.terminate()));
  };
  try {
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
