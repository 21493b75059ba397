/**
 * `<data>/clock.json`: the journey time a `strata dev` run has reached. A scaled clock runs days in seconds, so by
 * the time the stack stops its journey time is far ahead of the wall clock; started again from the wall time, it
 * would jump back behind everything stored (sends, waits, tier dates). The next start carries on from here instead.
 * Written every second and on stop (to a temporary file, then renamed, so it is never half written); after a crash
 * journey time resumes from at most a second of wall time before it.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from './clock.js';

export const CLOCK_FILE = 'clock.json';
const EVERY_MS = 1_000;

export async function readClockCheckpoint(dataDir: string): Promise<Date | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, CLOCK_FILE), 'utf8');
  } catch {
    return undefined; // never stopped or checkpointed: start from the wall time
  }
  try {
    const reached = new Date((JSON.parse(text) as { journeyTime?: unknown }).journeyTime as string);
    return Number.isNaN(reached.getTime()) ? undefined : reached;
  } catch {
    return undefined;
  }
}

/** Records the clock's time every second until `stop()`, which records it once more. */
export function keepClockCheckpoint(dataDir: string, clock: Clock): { stop(): Promise<void> } {
  const path = join(dataDir, CLOCK_FILE);
  let writing: Promise<void> = Promise.resolve();
  const record = (): Promise<void> =>
    (writing = writing
      .then(async () => {
        await writeFile(path + '.tmp', JSON.stringify({ journeyTime: clock.now().toISOString() }) + '\n');
        await rename(path + '.tmp', path);
      })
      .catch(() => {
        // A missed checkpoint only means the next start resumes from an earlier one.
      }));
  const timer = setInterval(() => void record(), EVERY_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await record();
    },
  };
}
