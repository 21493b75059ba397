/**
 * The embedded stack's dead-letter queue: `<data>/dlq.jsonl`, one JSON line per event that can never be applied,
 * with what the AWS dead-letter queue keeps (the original body, the reason, the event id) and when it arrived.
 * `strata dlq` lists it and redrives it.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeadLetter } from '../aws/sqs-dead-letter.js';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';

export const DLQ_FILE = 'dlq.jsonl';

export interface DeadLetterLine extends DeadLetter {
  /** When it was dead-lettered (wall time). */
  at: string;
}

export function deadLetterLine(letter: DeadLetter, at: Date): DeadLetterLine {
  return { at: at.toISOString(), eventRef: letter.eventRef, reason: letter.reason, body: letter.body };
}

export interface DeadLetterFile {
  letters: Array<DeadLetterLine & { line: number }>;
  /** Lines that are not dead letters (a torn last line after a crash): kept as they are, never dropped. */
  unreadable: number[];
  /** The file's size when read: a line appended later is not among `letters`, and a rewrite keeps it. */
  bytes: number;
}

export async function readDeadLetters(dataDir: string): Promise<DeadLetterFile> {
  let text: string;
  try {
    text = await readFile(join(dataDir, DLQ_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { letters: [], unreadable: [], bytes: 0 };
    throw error;
  }
  const letters: DeadLetterFile['letters'] = [];
  const unreadable: number[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    try {
      const parsed = JSON.parse(raw) as Partial<DeadLetterLine>;
      if (typeof parsed.body !== 'string' || typeof parsed.reason !== 'string') throw new Error('not a dead letter');
      letters.push({ at: String(parsed.at ?? ''), eventRef: String(parsed.eventRef ?? ''), reason: parsed.reason, body: parsed.body, line: index + 1 });
    } catch {
      unreadable.push(index + 1);
    }
  });
  return { letters, unreadable, bytes: Buffer.byteLength(text, 'utf8') };
}

/**
 * Removes the given lines (1-based, as read) and keeps everything else, including anything the running stack
 * appended after the file was read. Written beside the file and renamed over it, so a crash leaves one or the other.
 */
export async function removeDeadLetters(dataDir: string, read: DeadLetterFile, lines: ReadonlySet<number>): Promise<void> {
  const path = join(dataDir, DLQ_FILE);
  const current = await readFile(path);
  const known = current.subarray(0, read.bytes).toString('utf8').split('\n');
  const kept = known.filter((raw, index) => raw.trim() !== '' && !lines.has(index + 1));
  const appendedSince = current.subarray(read.bytes).toString('utf8');
  const next = `${path}.next`;
  await writeFile(next, kept.map((line) => line + '\n').join('') + appendedSince);
  await rename(next, path);
}

/** The EventBridge envelope a dead letter's body holds, or undefined when it is not one (a body that was never JSON). */
export function envelopeOf(body: string): EventBridgeEnvelope | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<EventBridgeEnvelope>;
    const detail = parsed.detail as unknown;
    if (typeof parsed.source !== 'string' || typeof parsed['detail-type'] !== 'string' || detail === null || typeof detail !== 'object' || Array.isArray(detail)) {
      return undefined;
    }
    return parsed as EventBridgeEnvelope;
  } catch {
    return undefined;
  }
}
