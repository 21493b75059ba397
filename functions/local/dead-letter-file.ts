/**
 * The embedded stack's dead-letter queue: `<data>/dlq.jsonl`, one JSON line per event that can never be applied,
 * with what the AWS dead-letter queue keeps (the original body, the reason, the event id) and when it arrived.
 * `strata dlq` lists it and redrives it; a redriven letter is retired by a mark once the stack accepted it again.
 */
import { randomUUID } from 'node:crypto';
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeadLetter } from '../aws/sqs-dead-letter.js';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';

export const DLQ_FILE = 'dlq.jsonl';

export interface DeadLetterLine extends DeadLetter {
  /** Names the letter for a redrive's mark. */
  id: string;
  /** When it was dead-lettered (wall time). */
  at: string;
}

export function deadLetterLine(letter: DeadLetter, at: Date): DeadLetterLine {
  return { id: randomUUID(), at: at.toISOString(), eventRef: letter.eventRef, reason: letter.reason, body: letter.body };
}

export interface DeadLetterFile {
  /** The letters not yet redriven, with their 1-based line in the file. */
  letters: Array<DeadLetterLine & { line: number }>;
  /** Lines that are neither letters nor marks (a torn last line after a crash): skipped, never dropped. */
  unreadable: number[];
}

/**
 * Reads the file: letters, minus those a `{"redriven": id}` mark retires. The file is only ever appended to while
 * the stack runs (by the stack's dead letters and by redrive's marks), so the two writers never overwrite each
 * other; `compactDeadLetters` drops retired letters when the stack starts.
 */
export async function readDeadLetters(dataDir: string): Promise<DeadLetterFile> {
  let text: string;
  try {
    text = await readFile(join(dataDir, DLQ_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { letters: [], unreadable: [] };
    throw error;
  }
  const letters: DeadLetterFile['letters'] = [];
  const redriven = new Set<string>();
  const unreadable: number[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    try {
      const parsed = JSON.parse(raw) as Partial<DeadLetterLine> & { redriven?: unknown };
      if (typeof parsed.redriven === 'string') {
        redriven.add(parsed.redriven);
        return;
      }
      if (typeof parsed.body !== 'string' || typeof parsed.reason !== 'string') throw new Error('not a dead letter');
      letters.push({
        id: String(parsed.id ?? `line-${index + 1}`),
        at: String(parsed.at ?? ''),
        eventRef: String(parsed.eventRef ?? ''),
        reason: parsed.reason,
        body: parsed.body,
        line: index + 1,
      });
    } catch {
      unreadable.push(index + 1);
    }
  });
  return { letters: letters.filter((letter) => !redriven.has(letter.id)), unreadable };
}

/** Retires letters once their events are accepted again: appended marks, so a letter arriving meanwhile is kept. */
export async function markRedriven(dataDir: string, ids: Iterable<string>, at: Date): Promise<void> {
  const lines = [...ids].map((id) => JSON.stringify({ redriven: id, at: at.toISOString() }) + '\n').join('');
  if (lines) await appendFile(join(dataDir, DLQ_FILE), lines);
}

/** Rewrites the file without retired letters; only while nothing else writes to it (the stack starting). */
export async function compactDeadLetters(dataDir: string): Promise<void> {
  const path = join(dataDir, DLQ_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!text.includes('"redriven"')) return;
  const { letters, unreadable } = await readDeadLetters(dataDir);
  const keep = new Set([...letters.map((letter) => letter.line), ...unreadable]);
  const kept = text.split('\n').filter((_raw, index) => keep.has(index + 1));
  const next = `${path}.next`;
  await writeFile(next, kept.map((line) => line + '\n').join(''));
  await rename(next, path);
}

/** The EventBridge envelope a dead letter's body holds, or undefined when it is not one (a body that was never JSON). */
export function envelopeOf(body: string): EventBridgeEnvelope | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<EventBridgeEnvelope>;
    const detail = parsed.detail as unknown;
    if (
      typeof parsed.source !== 'string' ||
      typeof parsed['detail-type'] !== 'string' ||
      detail === null ||
      typeof detail !== 'object' ||
      Array.isArray(detail)
    ) {
      return undefined;
    }
    return parsed as EventBridgeEnvelope;
  } catch {
    return undefined;
  }
}
