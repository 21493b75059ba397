/**
 * The embedded stack's tally queue (core/tally-batches.ts): where journey executions' tallies wait for the nightly
 * count. With a data folder it is a durable append-only file of encoded tallies, one a line (tally-queue.txt): an
 * enqueue resolves once its line is fsync'd, so a crash loses nothing enqueued. The count removes what it stored by
 * rewriting the file with what is left, the crash-safe way (durable-file.ts): a crash leaves the old file (the count
 * repeats, and drops the tallies it finds stored) or the new one. Without a folder (tests, the bench) it is in memory.
 *
 * One process owns the file (the stack); `strata report` only counts its lines.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionTally } from '../core/analytics.js';
import { type ReceivedTally, type TallyQueue, type TallySource, decodeTally, encodeTally } from '../core/tally-batches.js';
import { type DurableFile, openDurableFile } from './durable-file.js';

export const TALLY_QUEUE_FILE = 'tally-queue.txt';

export interface LocalTallyQueue extends TallyQueue, TallySource {
  /** Waits for the writes under way and closes the file; later enqueues are refused. */
  close(): Promise<void>;
}

interface Queued {
  receipt: string;
  line: string;
  tally: ExecutionTally;
  /** Received by the drain under way, and neither removed nor released yet. */
  inFlight: boolean;
}

/**
 * The file's whole lines. What follows the last line break is a line a crash cut short (its enqueue never resolved,
 * so it is enqueued again): it is dropped, even when it still reads as a tally, since its last count may be cut.
 */
async function readLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).split('\n').slice(0, -1);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The tallies a data folder's queue file holds (a line cut short by a crash is none: its enqueue never resolved). */
export async function readQueuedTallies(dataDir: string): Promise<ExecutionTally[]> {
  return (await readLines(join(dataDir, TALLY_QUEUE_FILE))).flatMap((line) => {
    const tally = decodeTally(line);
    return tally ? [tally] : [];
  });
}

export async function openLocalTallyQueue(dataDir?: string): Promise<LocalTallyQueue> {
  let file: DurableFile | undefined;
  const queued: Queued[] = [];
  let next = 0;
  const push = (line: string, tally: ExecutionTally): void => {
    queued.push({ receipt: String(next++), line, tally, inFlight: false });
  };
  if (dataDir !== undefined) {
    await mkdir(dataDir, { recursive: true });
    const path = join(dataDir, TALLY_QUEUE_FILE);
    for (const line of await readLines(path)) {
      const tally = decodeTally(line);
      if (tally) push(line.trim(), tally);
    }
    file = await openDurableFile(path);
    // Drops a line a crash cut short, so that the next append starts a line of its own.
    await file.replaceWith(contents());
  }

  function contents(): string {
    return queued.map((entry) => entry.line + '\n').join('');
  }

  /** Takes the entries out of the queue; the file is rewritten once the appends before it are on disk. */
  async function take(receipts: readonly string[]): Promise<void> {
    const gone = new Set(receipts);
    for (let i = queued.length - 1; i >= 0; i--) if (gone.has(queued[i]!.receipt)) queued.splice(i, 1);
    await file?.replaceWith(contents());
  }

  return {
    async enqueue(tally) {
      const line = encodeTally(tally);
      // In the list before the append, so that a rewrite queued meanwhile keeps it.
      push(line, tally);
      await file?.append(line + '\n');
    },
    async receive(max) {
      const received: ReceivedTally[] = [];
      for (const entry of queued) {
        if (received.length >= max) break;
        if (entry.inFlight) continue;
        entry.inFlight = true;
        received.push({ receipt: entry.receipt, tally: entry.tally });
      }
      return received;
    },
    remove: take,
    async release(receipts) {
      const released = new Set(receipts);
      for (const entry of queued) if (released.has(entry.receipt)) entry.inFlight = false;
    },
    async waiting() {
      return queued.length;
    },
    async close() {
      await file?.close();
    },
  };
}
