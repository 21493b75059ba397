/**
 * The user event that producers post, and its validation. Events are untrusted input: sizes and shapes are
 * bounded, and keys that could pollute prototypes are refused before anything reads them.
 */
import * as z from 'zod';
import { InvalidEventError, jsonPointer } from './errors.js';
import { FORBIDDEN_KEYS } from './ruleset-schema.js';

export const MAX_PROPERTIES_BYTES = 8 * 1024;
export const MAX_PROPERTIES_DEPTH = 4;
/** No producer of Strata's kind has history before this; an earlier stamp is a unit or default-value bug. */
export const EARLIEST_OCCURRED_AT = '2000-01-01T00:00:00Z';
/** How far ahead of the receiving clock an event may be stamped (producers' clocks drift; a year off is a bug). */
export const DEFAULT_MAX_FUTURE_MS = 86_400_000;
/**
 * DynamoDB numbers: magnitudes from 1E-130 to 9.9999999999999999999999999999999999999E+125, or zero. That upper bound
 * has no exact double; every double below 1E+126 is at most it, so the check is "under 1E+126".
 */
const DYNAMO_MAGNITUDE_LIMIT = 1e126;
const DYNAMO_MIN_MAGNITUDE = 1e-130;

/** Where a received event's time must fall: checked only where a clock is at hand (ingest), not in offline files. */
export interface EventTimeBounds {
  now: Date;
  /** Defaults to DEFAULT_MAX_FUTURE_MS. */
  maxFutureMs?: number;
}

const ISO_DATE_TIME_WITHOUT_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

function describeBadOccurredAt(input: unknown): string {
  if (typeof input !== 'string')
    return `must be an ISO 8601 time with a zone, for example 2026-11-02T09:30:00Z; found ${input === undefined ? 'nothing' : JSON.stringify(input)}`;
  if (ISO_DATE_TIME_WITHOUT_ZONE.test(input)) {
    return `"${input}" has no time zone: add Z for UTC or an offset such as +08:00 (for example ${input}Z)`;
  }
  return `"${input.slice(0, 64)}" is not an ISO 8601 time with a zone, for example 2026-11-02T09:30:00Z`;
}

function propertiesProblems(value: unknown, path: Array<string | number>, depth: number, out: string[][]): void {
  if (value === null || typeof value !== 'object') return;
  if (depth > MAX_PROPERTIES_DEPTH) {
    out.push([jsonPointer(path), `is nested deeper than ${MAX_PROPERTIES_DEPTH} levels`]);
    return;
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) out.push([jsonPointer([...path, key]), 'is a reserved key and is not allowed']);
    else propertiesProblems((value as Record<string, unknown>)[key], [...path, key], depth + 1, out);
  }
}

export const userEventSchema = z.strictObject({
  eventId: z.string().min(1).max(128).describe('Unique per event; a resend with the same id is applied once.'),
  userId: z.string().min(1).max(128),
  type: z
    .string()
    .regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/, 'must be dotted lower-case words, for example "order.paid"')
    .max(128),
  occurredAt: z.iso
    .datetime({ offset: true, error: (issue) => describeBadOccurredAt(issue.input) })
    .describe('ISO 8601 time with a zone, for example 2026-11-02T09:30:00Z.'),
  properties: z.record(z.string(), z.unknown()).default({}),
});
export type UserEvent = z.infer<typeof userEventSchema>;

/**
 * Parse untrusted input into a UserEvent. Throws InvalidEventError listing every problem with its JSON pointer;
 * the caller routes the event to the dead-letter queue with that reason.
 */
export function parseUserEvent(input: unknown, eventRef = 'unknown', timeBounds?: EventTimeBounds): UserEvent {
  const hostile: string[][] = [];
  if (input !== null && typeof input === 'object') {
    for (const key of Object.keys(input)) {
      if (FORBIDDEN_KEYS.has(key)) hostile.push([jsonPointer([key]), 'is a reserved key and is not allowed']);
    }
  }
  const parsed = userEventSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => ({ pointer: jsonPointer(issue.path), message: issue.message }));
    throw new InvalidEventError(refOf(input, eventRef), [
      ...hostile.map(([pointer, message]) => ({ pointer: pointer!, message: message! })),
      ...problems,
    ]);
  }
  const event = parsed.data;
  const problems: string[][] = [...hostile];
  // The raw input, not the parsed copy: zod's record drops a "__proto__" key silently, and it must be refused.
  propertiesProblems((input as Record<string, unknown>)['properties'], ['properties'], 1, problems);
  unstorableNumbers(event.properties, ['properties'], problems);
  const timeProblem = occurredAtProblem(event.occurredAt, timeBounds);
  if (timeProblem) problems.push(['/occurredAt', timeProblem]);
  const size = Buffer.byteLength(JSON.stringify(event.properties), 'utf8');
  if (size > MAX_PROPERTIES_BYTES) {
    problems.push(['/properties', `is ${size} bytes; the limit is ${MAX_PROPERTIES_BYTES} (send ids, not documents)`]);
  }
  if (problems.length > 0) {
    throw new InvalidEventError(
      refOf(input, eventRef),
      problems.map(([pointer, message]) => ({ pointer: pointer!, message: message! })),
    );
  }
  return event;
}

function occurredAtProblem(occurredAt: string, bounds: EventTimeBounds | undefined): string | undefined {
  const at = Date.parse(occurredAt);
  if (at < Date.parse(EARLIEST_OCCURRED_AT)) {
    return `${occurredAt} is before ${EARLIEST_OCCURRED_AT.slice(0, 10)}; check the producer's clock and units (seconds vs milliseconds)`;
  }
  if (!bounds) return undefined;
  const maxFutureMs = bounds.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  const latest = bounds.now.getTime() + maxFutureMs;
  if (at > latest) {
    const hours = Math.round((maxFutureMs / 3_600_000) * 100) / 100;
    return `${occurredAt} is more than ${hours} h ahead of the receiving clock (${bounds.now.toISOString()}); check the producer's clock and time zone`;
  }
  return undefined;
}

/** A number DynamoDB cannot store would fail the write on every retry; refusing it here gives the reason instead. */
function unstorableNumbers(value: unknown, path: Array<string | number>, out: string[][]): void {
  if (typeof value === 'number') {
    const magnitude = Math.abs(value);
    if (magnitude !== 0 && (magnitude >= DYNAMO_MAGNITUDE_LIMIT || magnitude < DYNAMO_MIN_MAGNITUDE)) {
      out.push([jsonPointer(path), `${value} is outside the range DynamoDB can store (magnitude 1e-130 to 9.99e125)`]);
    }
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) unstorableNumbers(child, [...path, Array.isArray(value) ? Number(key) : key], out);
}

function refOf(input: unknown, fallback: string): string {
  if (input && typeof input === 'object' && typeof (input as { eventId?: unknown }).eventId === 'string') {
    return (input as { eventId: string }).eventId.slice(0, 128);
  }
  return fallback;
}
