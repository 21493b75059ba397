/**
 * Plain words for the zod issues that both config formats share (numbers out of range, fractions where whole
 * numbers belong, lists of the wrong length), so that no marketer ever reads "Too big: expected number to be
 * <=50" and every message comes with a way to fix it.
 */
import type { z } from 'zod';

export interface IssueText {
  message: string;
  hint: string;
}

/** The value a zod issue is about, looked up in the raw document. */
export function valueAtPath(document: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let current = document;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/**
 * Text for range, whole-number and type issues, or undefined for other kinds (which each format words itself).
 * `fieldHint` is the format's own advice for the field, used in place of the generic one when it has some.
 */
export function describeValueIssue(issue: z.core.$ZodIssue, actual: unknown, fieldHint?: string): IssueText | undefined {
  const described = describeDefaultIssue(issue, actual, fieldHint);
  // A schema's own message (say "templateId must not be empty") already speaks plainly; it only lacks the hint.
  return described && !GENERIC_ZOD_MESSAGE.test(issue.message) ? { message: issue.message, hint: described.hint } : described;
}

/** zod's built-in wording, which is replaced; a message set in a schema does not start like this. */
const GENERIC_ZOD_MESSAGE = /^(Too small|Too big|Invalid input)/;

function describeDefaultIssue(issue: z.core.$ZodIssue, actual: unknown, fieldHint?: string): IssueText | undefined {
  const found = JSON.stringify(actual);
  switch (issue.code) {
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = Number(small ? issue.minimum : issue.maximum);
      const word = small ? 'at least' : 'at most';
      if (issue.origin === 'array') {
        const items = `${bound} item${bound === 1 ? '' : 's'}`;
        return {
          message: `needs ${word} ${items}`,
          hint: fieldHint ?? (small ? `add items until there are ${bound}` : `remove items until there are ${bound}`),
        };
      }
      if (issue.origin === 'string') {
        return { message: `must be ${word} ${bound} characters long`, hint: fieldHint ?? (small ? 'write a longer text' : 'shorten it') };
      }
      return { message: `must be ${word} ${bound}, found ${found}`, hint: fieldHint ?? (small ? `use ${bound} or more` : `use ${bound} or less`) };
    }
    case 'invalid_type':
      if (issue.expected === 'int' && typeof actual === 'number') {
        return { message: `must be a whole number, found ${found}`, hint: fieldHint ?? `round it, for example to ${Math.round(actual)}` };
      }
      return undefined;
    default:
      return undefined;
  }
}
