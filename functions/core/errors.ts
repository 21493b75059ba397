/**
 * Errors and problem reports shared by every layer.
 *
 * Config and input problems are collected as values (never thrown one at a time) so that a marketer sees every
 * problem in one run, each naming the file, the JSON pointer inside it, what is wrong and how to fix it.
 */

export interface Problem {
  /** The file the problem is in, relative to the project directory (or an event id for event input). */
  file: string;
  /** RFC 6901 JSON pointer to the offending value; '' for the whole document. */
  pointer: string;
  message: string;
  hint?: string;
  /** 1-based position, for JSON syntax errors. */
  line?: number;
  column?: number;
  /** A warning is a likely mistake that still loads; every other problem is an error. */
  severity?: 'warning';
}

export function formatProblem(problem: Problem): string {
  const where = problem.line !== undefined ? `${problem.file}:${problem.line}:${problem.column ?? 1}` : problem.file;
  const hint = problem.hint ? ` (${problem.hint})` : '';
  const severity = problem.severity === 'warning' ? 'warning: ' : '';
  return `${where}: ${problem.pointer || '/'}: ${severity}${problem.message}${hint}`;
}

export function jsonPointer(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return '';
  return '/' + path.map((part) => String(part).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

/** A config directory that fails validation; carries every problem found. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: Problem[]) {
    super(`Ruleset: ${problems.length} problem(s) found:\n` + problems.map(formatProblem).join('\n'));
  }
}

/** A user event that can never be applied: it goes to the dead-letter queue with this reason. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  constructor(
    readonly eventRef: string,
    readonly problems: Array<{ pointer: string; message: string }>,
  ) {
    super(`Event ${eventRef}: ` + problems.map((p) => `${p.pointer || '/'}: ${p.message}`).join('; '));
  }
}

/** Exhaustiveness check for discriminated unions: a new variant fails the build until every switch handles it. */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`Unhandled ${what}: ${JSON.stringify(value)}`);
}
