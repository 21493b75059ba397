/**
 * Reads a JSON Lines file of user events. A malformed line is reported by line number and skipped, never fatal:
 * a backtest over real history should tell you what it could not read and go on.
 */
import { readFile } from 'node:fs/promises';
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

export function parseEventLines(text: string): EventLines {
  const events: UserEvent[] = [];
  const skipped: SkippedLine[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      skipped.push({ line: index + 1, reason: 'not valid JSON' });
      return;
    }
    try {
      events.push(parseUserEvent(json, `line ${index + 1}`));
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error;
      skipped.push({ line: index + 1, reason: error.problems.map((p) => `${p.pointer || '/'}: ${p.message}`).join('; ') });
    }
  });
  return { events, skipped };
}

export async function readEventLines(file: string): Promise<EventLines> {
  return parseEventLines(await readFile(file, 'utf8'));
}
