/**
 * The local journey runner's durable record of its executions (`<data>/journey-executions.jsonl`), so that
 * journeys survive a restart of the embedded stack and `strata user` can tell a running journey from a finished one.
 *
 * One JSON line per change, each the execution's whole record (status, position, counters); the last line of an
 * execution wins. Lines are appended and fsync'd before `save` resolves (durable-file.ts: saves of the same moment
 * share an fsync). A crash can therefore only cut the last line short, and reading skips a cut-off last line. On open, and
 * whenever the appended lines outgrow the live records, the file is rewritten crash-safely with one line per
 * execution.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDurableFile } from './durable-file.js';
import type { AslDefinition } from '../core/journey/compile-journey.js';
import type { ExecutionRecord, ExecutionStore } from './journey-runner.js';

export const JOURNEY_EXECUTIONS_FILE = 'journey-executions.jsonl';
/** The compiled definitions executions run, one line per version: `{ "key": …, "definition": … }`. */
export const JOURNEY_DEFINITIONS_FILE = 'journey-definitions.jsonl';
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

export async function openJourneyExecutionLog(dataDir: string): Promise<JourneyExecutionLog> {
  const path = join(dataDir, JOURNEY_EXECUTIONS_FILE);
  await mkdir(dataDir, { recursive: true });
  // Each execution's latest line, kept as its text: a parsed record's objects take several times its bytes in the
  // heap, and the lines are only parsed again by records(), which the runner calls once when it starts.
  const lines = new Map((await readRecords(path)).map((record) => [record.executionName, JSON.stringify(record) + '\n']));
  const file = await openDurableFile(path);
  const snapshot = (): string => [...lines.values()].join('');
  // Also drops a last line that a crash cut short, before anything is appended after it.
  let compactedBytes = await replaceWithSnapshot();
  let appendedBytes = 0;
  /** Rewrites the file as the snapshot; the snapshot's text is not kept (it is the size of the file). */
  async function replaceWithSnapshot(): Promise<number> {
    const text = snapshot();
    await file.replaceWith(text);
    return Buffer.byteLength(text);
  }
  const definitionsPath = join(dataDir, JOURNEY_DEFINITIONS_FILE);
  const definitions = await readDefinitions(definitionsPath);
  const definitionsFile = await openDurableFile(definitionsPath);

  return {
    path,
    records: () => [...lines.values()].map((line) => JSON.parse(line) as ExecutionRecord),
    async save(record) {
      const line = JSON.stringify(record) + '\n';
      lines.set(record.executionName, line);
      await file.append(line);
      appendedBytes += Buffer.byteLength(line);
      if (appendedBytes > COMPACT_AFTER_BYTES && appendedBytes > compactedBytes * COMPACT_AFTER_RATIO) {
        appendedBytes = 0;
        // The appended log is whole without the rewrite, which only saves space: a failed one is not the save's.
        replaceWithSnapshot().then(
          (bytes) => {
            compactedBytes = bytes;
          },
          () => undefined,
        );
      }
    },
    definitions: () => new Map(definitions),
    async saveDefinition(key, definition) {
      if (definitions.has(key)) return;
      definitions.set(key, definition);
      await definitionsFile.append(JSON.stringify({ key, definition }) + '\n');
    },
    async close() {
      await file.close();
      await definitionsFile.close();
    },
  };
}

async function readDefinitions(path: string): Promise<Map<string, AslDefinition>> {
  const definitions = new Map<string, AslDefinition>();
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new JourneyExecutionLogError(`JourneyExecutionLog: could not read ${path} (${(error as Error).message})`, { cause: error });
  }
  // A last line cut short by a crash belongs to an execution that never started: its start waits for this line.
  for (const line of text.split('\n').slice(0, -1)) {
    if (!line) continue;
    const { key, definition } = JSON.parse(line) as { key: string; definition: AslDefinition };
    definitions.set(key, definition);
  }
  return definitions;
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
      throw new JourneyExecutionLogError(
        `JourneyExecutionLog: ${path} line ${index + 1} has no executionName; move the file aside to start with no journey history`,
      );
    }
    records.push(record);
  }
  return records;
}
