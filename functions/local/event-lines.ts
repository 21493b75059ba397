/**
 * Reads a JSON Lines file of user events. A malformed line is reported by line number and skipped, never fatal:
 * a backtest over real history should tell you what it could not read and go on.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { InvalidEventError } from '../core/errors.js';
import { type UserEvent, parseUserEvent } from '../core/event.js';

export interface SkippedLine {
  line: number;
  reason: string;
}

export interface EventLines {
  events: UserEvent[];
  skipped: SkippedLine[];
}

export interface NumberedEventLines extends EventLines {
  /** The line of each event in `events` (1-based). */
  lines: number[];
}

/**
 * Which lines a reader keeps: given the parsed JSON, or undefined for a line that is not JSON. A reader that keeps
 * part of a file (one worker thread's users) neither returns nor reports the lines it does not keep.
 */
export type LineFilter = (json: unknown) => boolean;

/** Where a reader puts each valid event it keeps, with its line number. */
export type EventSink = (event: UserEvent, lineNumber: number) => void;

function readLine(raw: string, lineNumber: number, sink: EventSink, skipped: SkippedLine[], keep?: LineFilter): void {
  const line = raw.trim();
  if (line === '') return;
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    if (!keep || keep(undefined)) skipped.push({ line: lineNumber, reason: 'not valid JSON' });
    return;
  }
  if (keep && !keep(json)) return;
  let event: UserEvent;
  try {
    event = parseUserEvent(json, `line ${lineNumber}`);
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    skipped.push({ line: lineNumber, reason: error.problems.map((p) => `${p.pointer || '/'}: ${p.message}`).join('; ') });
    return;
  }
  sink(event, lineNumber);
}

/** A sink that keeps every event it is handed, with its line number, in `read` (whose `skipped` the caller fills). */
export function eventCollector(): { read: NumberedEventLines; sink: EventSink } {
  const read: NumberedEventLines = { events: [], skipped: [], lines: [] };
  return {
    read,
    sink: (event, lineNumber) => {
      read.events.push(event);
      read.lines.push(lineNumber);
    },
  };
}

export function parseEventLines(text: string): NumberedEventLines {
  const { read, sink } = eventCollector();
  text.split('\n').forEach((raw, index) => readLine(raw, index + 1, sink, read.skipped));
  return read;
}

/**
 * Reads a history of any size line by line, never holding the file's text whole, and hands each valid event it keeps
 * to `sink` as it goes. `onProgress` gets the bytes read so far and the file's size. Resolves to the lines skipped.
 */
export async function visitEventLines(
  file: string,
  sink: EventSink,
  onProgress?: (bytesRead: number, totalBytes: number) => void,
  keep?: LineFilter,
): Promise<SkippedLine[]> {
  const { size } = await stat(file);
  const skipped: SkippedLine[] = [];
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let lineNumber = 0;
  let reported = 0;
  for await (const raw of createInterface({ input: stream, crlfDelay: Infinity })) {
    readLine(raw, ++lineNumber, sink, skipped, keep);
    if (onProgress && stream.bytesRead - reported >= 1 << 22) {
      reported = stream.bytesRead;
      onProgress(stream.bytesRead, size);
    }
  }
  onProgress?.(size, size);
  return skipped;
}

/** visitEventLines, keeping every event in memory. */
export async function streamEventLines(
  file: string,
  onProgress?: (bytesRead: number, totalBytes: number) => void,
  keep?: LineFilter,
): Promise<NumberedEventLines> {
  const { read, sink } = eventCollector();
  read.skipped = await visitEventLines(file, sink, onProgress, keep);
  return read;
}

export async function readEventLines(file: string): Promise<NumberedEventLines> {
  return parseEventLines(await readFile(file, 'utf8'));
}
