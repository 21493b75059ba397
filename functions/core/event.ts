/**
 * The user event that producers post, and its validation. Events are untrusted input: sizes and shapes are
 * bounded, and keys that could pollute prototypes are refused before anything reads them.
 */
import * as z from 'zod';
import { InvalidEventError, jsonPointer } from './errors.js';
import { FORBIDDEN_KEYS } from './ruleset-schema.js';

export const MAX_PROPERTIES_BYTES = 8 * 1024;
export const MAX_PROPERTIES_DEPTH = 4;

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
  occurredAt: z.iso.datetime({ offset: true }).describe('ISO 8601 time with a zone, for example 2026-11-02T09:30:00Z.'),
  properties: z.record(z.string(), z.unknown()).default({}),
});
export type UserEvent = z.infer<typeof userEventSchema>;

/**
 * Parse untrusted input into a UserEvent. Throws InvalidEventError listing every problem with its JSON pointer;
 * the caller routes the event to the dead-letter queue with that reason.
 */
export function parseUserEvent(input: unknown, eventRef = 'unknown'): UserEvent {
  const hostile: string[][] = [];
  if (input !== null && typeof input === 'object') {
    for (const key of Object.keys(input)) {
      if (FORBIDDEN_KEYS.has(key)) hostile.push([jsonPointer([key]), 'is a reserved key and is not allowed']);
    }
  }
  const parsed = userEventSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => ({ pointer: jsonPointer(issue.path), message: issue.message }));
    throw new InvalidEventError(refOf(input, eventRef), [...hostile.map(([pointer, message]) => ({ pointer: pointer!, message: message! })), ...problems]);
  }
  const event = parsed.data;
  const problems: string[][] = [...hostile];
  // The raw input, not the parsed copy: zod's record drops a "__proto__" key silently, and it must be refused.
  propertiesProblems((input as Record<string, unknown>)['properties'], ['properties'], 1, problems);
  const size = Buffer.byteLength(JSON.stringify(event.properties), 'utf8');
  if (size > MAX_PROPERTIES_BYTES) {
    problems.push(['/properties', `is ${size} bytes; the limit is ${MAX_PROPERTIES_BYTES} (send ids, not documents)`]);
  }
  if (problems.length > 0) {
    throw new InvalidEventError(refOf(input, eventRef), problems.map(([pointer, message]) => ({ pointer: pointer!, message: message! })));
  }
  return event;
}

function refOf(input: unknown, fallback: string): string {
  if (input && typeof input === 'object' && typeof (input as { eventId?: unknown }).eventId === 'string') {
    return (input as { eventId: string }).eventId.slice(0, 128);
  }
  return fallback;
}
