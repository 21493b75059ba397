/**
 * The local journey runner's durable record of its executions (`<data>/journey-executions.jsonl`), so that
 * journeys survive a restart of the embedded stack and `strata user` can tell a running journey from a finished one.
 *
 * One JSON line per change, each the execution's whole record (status, position, counters); the last line of an
 * execution wins. Lines are appended and fsync'd before `save` resolves, several saves of the same moment sharing one
 * fsync. A crash can therefore only cut the last line short, and reading skips a cut-off last line. On open, and
 * whenever the appended lines outgrow the live records, the file is rewritten with one line per execution: written
 * to a temporary file, fsync'd, then renamed over the log, so a crash mid-rewrite leaves the old log whole.
 */
import { type FileHandle, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ExecutionRecord, ExecutionStore } from './journey-runner.js';

export const JOURNEY_EXECUTIONS_FILE = 'journey-executions.jsonl';
const COMPACTING_SUFFIX = '.compacting';
/** Rewrite once the lines appended since the last rewrite pass both of these. */
const COMPACT_AFTER_BYTES = 1_048_576;
const COMPACT_AFTER_RATIO = 4;

export class JourneyExecutionLogError extends Error {
  override readonly name = 'JourneyExecutionLogError';
}

export interface JourneyExecutionLog extends ExecutionStore {
  readonly path: string;
  /** Waits for the writes under way, then closes the file; later saves are refused. */
  close(): Promise<void>;
}

interface PendingSave {
  line: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export async function openJourneyExecutionLog(dataDir: string): Promise<JourneyExecutionLog> {
  const path = join(dataDir, JOURNEY_EXECUTIONS_FILE);
  await mkdir(dataDir, { recursive: true });
  // A rewrite that a crash interrupted before its rename: the log itself is still whole.
  await rm(path + COMPACTING_SUFFIX, { force: true });
  const records = new Map((await readRecords(path)).map((record) => [record.executionName, record]));
  let compactedBytes = await rewrite(path, records);
  let appendedBytes = 0;
  let handle: FileHandle = await open(path, 'a');
  let queue: PendingSave[] = [];
  let flushing: Promise<void> | undefined;
  let closed = false;

  const flush = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      const text = batch.map((pending) => pending.line).join('');
      try {
        await handle.write(text);
        await handle.datasync();
        appendedBytes += Buffer.byteLength(text);
        for (const pending of batch) pending.resolve();
      } catch (error) {
        const failure = new JourneyExecutionLogError(`JourneyExecutionLog: could not write ${path} (${(error as Error).message}); journeys cannot record their progress until the disk is writable`, { cause: error });
        for (const pending of batch) pending.reject(failure);
        continue;
      }
      if (appendedBytes > COMPACT_AFTER_BYTES && appendedBytes > compactedBytes * COMPACT_AFTER_RATIO) {
        await handle.close();
        try {
          compactedBytes = await rewrite(path, records);
          appendedBytes = 0;
        } catch {
          // The appended log is whole and still holds everything; the rewrite only saves space, so try again later.
          compactedBytes = appendedBytes;
        }
        handle = await open(path, 'a');
      }
    }
    flushing = undefined;
  };

  return {
    path,
    records: () => [...records.values()].map((record) => structuredClone(record)),
    save(record) {
      if (closed) return Promise.reject(new JourneyExecutionLogError(`JourneyExecutionLog: ${path} is closed; a journey tried to record ${record.executionName} after the stack stopped`));
      records.set(record.executionName, record);
      return new Promise<void>((resolve, reject) => {
        queue.push({ line: JSON.stringify(record) + '\n', resolve, reject });
        flushing ??= flush();
      });
    },
    async close() {
      closed = true;
      await flushing;
      await handle.close();
    },
  };
}

/** One execution's latest record, read without opening the log for writing (for `strata user`). */
export async function readJourneyExecution(dataDir: string, executionName: string): Promise<ExecutionRecord | undefined> {
  const path = join(dataDir, JOURNEY_EXECUTIONS_FILE);
  const needle = JSON.stringify(executionName);
  let latest: ExecutionRecord | undefined;
  for (const record of await readRecords(path, (line) => line.includes(needle))) if (record.executionName === executionName) latest = record;
  return latest;
}

async function readRecords(path: string, keep: (line: string) => boolean = () => true): Promise<ExecutionRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new JourneyExecutionLogError(`JourneyExecutionLog: could not read ${path} (${(error as Error).message})`, { cause: error });
  }
  const lines = text.split('\n');
  // Only the last line can be cut short (a crash mid-append); every line before it ended with a newline.
  const complete = text.endsWith('\n') ? lines.slice(0, -1) : lines;
  const records: ExecutionRecord[] = [];
  for (const [index, line] of complete.entries()) {
    if (!keep(line)) continue;
    const isLast = index === complete.length - 1;
    let record: ExecutionRecord;
    try {
      record = JSON.parse(line) as ExecutionRecord;
    } catch (error) {
      if (isLast) continue;
      throw new JourneyExecutionLogError(
        `JourneyExecutionLog: ${path} line ${index + 1} is not JSON; the file was edited or damaged. Move it aside to start with no journey history`,
        { cause: error },
      );
    }
    if (typeof record?.executionName !== 'string') {
      throw new JourneyExecutionLogError(`JourneyExecutionLog: ${path} line ${index + 1} has no executionName; move the file aside to start with no journey history`);
    }
    records.push(record);
  }
  return records;
}

/** Replaces the log with one line per execution, crash-safely; returns the new size in bytes. */
async function rewrite(path: string, records: ReadonlyMap<string, ExecutionRecord>): Promise<number> {
  const text = [...records.values()].map((record) => JSON.stringify(record) + '\n').join('');
  const temporary = path + COMPACTING_SUFFIX;
  const file = await open(temporary, 'w');
  try {
    await file.write(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  // The rename itself is durable only once the folder is.
  const folder = await open(dirname(path), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
  return Buffer.byteLength(text);
}
