/**
 * Events that ingest would refuse: valid as events, but not under this ruleset (a summed property that is not a
 * number, an attribute of the wrong type). Ingest throws on them and production dead-letters them; a replay counts
 * them and says why, by line, so that they do not silently vanish from the numbers.
 */
import { InvalidEventError } from '../core/errors.js';
import type { UserEvent } from '../core/event.js';
import { applyEventToAttributes, dayCounters } from '../core/metrics.js';
import type { Ruleset } from '../core/ruleset.js';

export interface RejectedEvent {
  /** Line in the history file (1-based), when the events came from one. */
  line?: number;
  eventId: string;
  reason: string;
}

/** How many rejections summary.json lists; the count covers them all. */
export const MAX_LISTED_REJECTIONS = 50;

/** Why ingest would refuse this event under this ruleset, or undefined if it would take it. */
export function ingestRejection(ruleset: Ruleset, event: UserEvent): string | undefined {
  try {
    // Of an event's increment only the counters can refuse it (its date and signals are read from a valid stamp).
    dayCounters(ruleset, event);
    // The attribute checks look at the event alone; the stored attributes only decide which value wins.
    applyEventToAttributes(ruleset, { attributes: {} }, event);
    return undefined;
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    return error.problems.map((p) => `${p.pointer || '/'}: ${p.message}`).join('; ');
  }
}

/** Splits a history into what ingest takes and what it refuses, naming the refused by line. */
export function screenEvents(
  ruleset: Ruleset,
  events: readonly UserEvent[],
  lines?: readonly number[],
): { accepted: UserEvent[]; rejected: RejectedEvent[] } {
  const accepted: UserEvent[] = [];
  const rejected: RejectedEvent[] = [];
  events.forEach((event, i) => {
    const reason = ingestRejection(ruleset, event);
    const line = lines?.[i];
    if (reason === undefined) accepted.push(event);
    else rejected.push({ ...(line !== undefined ? { line } : {}), eventId: event.eventId, reason });
  });
  return { accepted, rejected };
}
