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

function readLine(raw: string, lineNumber: number, into: NumberedEventLines, keep?: LineFilter): void {
  const line = raw.trim();
  if (line === '') return;
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    if (!keep || keep(undefined)) into.skipped.push({ line: lineNumber, reason: 'not valid JSON' });
    return;
  }
  if (keep && !keep(json)) return;
  try {
    into.events.push(parseUserEvent(json, `line ${lineNumber}`));
    into.lines.push(lineNumber);
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    into.skipped.push({ line: lineNumber, reason: error.problems.map((p) => `${p.pointer || '/'}: ${p.message}`).join('; ') });
  }
}

export function parseEventLines(text: string): NumberedEventLines {
  const read: NumberedEventLines = { events: [], skipped: [], lines: [] };
  text.split('\n').forEach((raw, index) => readLine(raw, index + 1, read));
  return read;
}

/**
 * Reads a history of any size line by line, never holding the file's text whole. `onProgress` gets the bytes read
 * so far and the file's size.
 */
export async function streamEventLines(
  file: string,
  onProgress?: (bytesRead: number, totalBytes: number) => void,
  keep?: LineFilter,
): Promise<NumberedEventLines> {
  const { size } = await stat(file);
  const read: NumberedEventLines = { events: [], skipped: [], lines: [] };
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let lineNumber = 0;
  let reported = 0;
  for await (const raw of createInterface({ input: stream, crlfDelay: Infinity })) {
    readLine(raw, ++lineNumber, read, keep);
    if (onProgress && stream.bytesRead - reported >= 1 << 22) {
      reported = stream.bytesRead;
      onProgress(stream.bytesRead, size);
    }
  }
  onProgress?.(size, size);
  return read;
}

export async function readEventLines(file: string): Promise<NumberedEventLines> {
  return parseEventLines(await readFile(file, 'utf8'));
}
