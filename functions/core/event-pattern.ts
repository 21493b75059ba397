/**
 * EventBridge's event-pattern language, so that the embedded stack routes events exactly as the deployed rules do.
 *
 * The patterns Strata deploys are plain JSON constants here: the CDK stack puts them on its rules and the local
 * router matches with them, so the two can never drift apart.
 *
 * Semantics follow EventBridge (and aws/event-ruler, which implements it):
 * - fields are ANDed, the values listed for one field are ORed;
 * - a field in the event that is an array matches if any of its elements matches;
 * - every matcher except `exists: false` needs the field to be present, and only leaf values (not objects) count;
 * - a nested object in the pattern matches a nested object in the event (or any element of an array of objects).
 */
import { jsonPointer } from './errors.js';

/** The envelope EventBridge wraps around every entry put on a bus; patterns match against it. */
export interface EventBridgeEnvelope<Detail = Record<string, unknown>> {
  version: string;
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  /** ISO 8601 UTC, to the second: `2026-11-02T09:30:00Z`. */
  time: string;
  region: string;
  resources: string[];
  detail: Detail;
}

export type EventPatternScalar = string | number | boolean | null;

export type NumericOperator = '<' | '<=' | '=' | '>' | '>=';
/** `['>', 0]`, `['=', 3]`, or a range with the lower bound first: `['>', 0, '<=', 5]`. */
export type NumericRange = readonly [NumericOperator, number] | readonly ['>' | '>=', number, '<' | '<=', number];

export type AnythingBut = string | number | readonly string[] | readonly number[] | { readonly prefix: string } | { readonly suffix: string };

export type EventPatternMatcher =
  | EventPatternScalar
  | { readonly prefix: string }
  | { readonly suffix: string }
  | { readonly 'equals-ignore-case': string }
  | { readonly 'anything-but': AnythingBut }
  | { readonly numeric: NumericRange }
  | { readonly exists: boolean };

/** A field maps to the list of values it may match, or to a pattern for the object nested under it. */
export interface EventPattern {
  readonly [field: string]: readonly EventPatternMatcher[] | EventPattern;
}

export interface EventPatternProblem {
  /** RFC 6901 pointer into the pattern. */
  pointer: string;
  message: string;
}

/** A pattern that cannot be interpreted; `validateEventPattern` lists every such problem up front. */
export class InvalidEventPatternError extends Error {
  override readonly name = 'InvalidEventPatternError';
  constructor(readonly problems: EventPatternProblem[]) {
    super('EventPattern: ' + problems.map((problem) => `${problem.pointer || '/'}: ${problem.message}`).join('; '));
  }
}

// ---- The patterns Strata deploys ---------------------------------------------------------------------------

/** Sources starting with this are Strata's own notices; producers' events never use it for ingest. */
export const RESERVED_SOURCE_PREFIX = 'strata.';

/**
 * User events to ingest: everything a producer sends, never Strata's own. The pattern deliberately does not
 * require `userId` or `eventId`: an event without them would match no rule and vanish without a trace, whereas
 * ingest dead-letters it with a reason naming the missing field.
 */
export const USER_EVENTS_PATTERN: EventPattern = deepFreeze({
  source: [{ 'anything-but': { prefix: RESERVED_SOURCE_PREFIX } }],
});

/** Journey sends (content, invite, offer) for the delivery channels. */
export const JOURNEY_ACTIONS_PATTERN: EventPattern = deepFreeze({
  source: ['strata.journeys'],
  'detail-type': ['JourneyAction'],
});

/** Tier notices: promotions, demotions, grace started and cleared. */
export const TIER_NOTICES_PATTERN: EventPattern = deepFreeze({ source: ['strata.tiers'] });

// ---- Matching ----------------------------------------------------------------------------------------------

type Leaf = EventPatternScalar;

export function matchesEventPattern(pattern: EventPattern, event: EventBridgeEnvelope<unknown>): boolean {
  return matchesObject(pattern, event, []);
}

function matchesObject(pattern: EventPattern, node: unknown, path: string[]): boolean {
  return Object.keys(pattern).every((field) => {
    const fieldPattern = pattern[field]!;
    const value = isJsonObject(node) && Object.hasOwn(node, field) ? node[field] : undefined;
    if (Array.isArray(fieldPattern)) return matchesField(fieldPattern, leavesOf(value), [...path, field]);
    const nestedPattern = fieldPattern as EventPattern;
    const candidates = objectsOf(value);
    // With no object to descend into, every nested field is absent: only `exists: false` can still match.
    if (candidates.length === 0) return matchesObject(nestedPattern, undefined, [...path, field]);
    return candidates.some((candidate) => matchesObject(nestedPattern, candidate, [...path, field]));
  });
}

function matchesField(matchers: readonly EventPatternMatcher[], leaves: Leaf[], path: string[]): boolean {
  return matchers.some((matcher, index) => {
    if (isJsonObject(matcher) && 'exists' in matcher) return matcher.exists === leaves.length > 0;
    return leaves.some((leaf) => matchesLeaf(matcher, leaf, [...path, String(index)]));
  });
}

function matchesLeaf(matcher: EventPatternMatcher, leaf: Leaf, path: string[]): boolean {
  if (matcher === null || typeof matcher !== 'object') return leaf === matcher;
  if ('prefix' in matcher) return typeof leaf === 'string' && leaf.startsWith(matcher.prefix);
  if ('suffix' in matcher) return typeof leaf === 'string' && leaf.endsWith(matcher.suffix);
  if ('equals-ignore-case' in matcher) {
    return typeof leaf === 'string' && leaf.toLowerCase() === matcher['equals-ignore-case'].toLowerCase();
  }
  if ('anything-but' in matcher) return !matchesExcluded(matcher['anything-but'], leaf);
  if ('numeric' in matcher) return typeof leaf === 'number' && inNumericRange(matcher.numeric, leaf);
  throw new InvalidEventPatternError([{ pointer: jsonPointer(path), message: `cannot interpret ${JSON.stringify(matcher)}` }]);
}

function matchesExcluded(excluded: AnythingBut, leaf: Leaf): boolean {
  if (typeof excluded === 'string' || typeof excluded === 'number') return leaf === excluded;
  if ('prefix' in excluded) return typeof leaf === 'string' && leaf.startsWith(excluded.prefix);
  if ('suffix' in excluded) return typeof leaf === 'string' && leaf.endsWith(excluded.suffix);
  return (excluded as ReadonlyArray<string | number>).includes(leaf as string | number);
}

const COMPARE: Record<NumericOperator, (value: number, bound: number) => boolean> = {
  '<': (value, bound) => value < bound,
  '<=': (value, bound) => value <= bound,
  '=': (value, bound) => value === bound,
  '>': (value, bound) => value > bound,
  '>=': (value, bound) => value >= bound,
};

function inNumericRange(range: NumericRange, value: number): boolean {
  for (let index = 0; index + 1 < range.length; index += 2) {
    const operator = range[index] as NumericOperator;
    if (!COMPARE[operator](value, range[index + 1] as number)) return false;
  }
  return true;
}

/** The scalar values a field holds: itself, or the scalars in it if it is an array. Objects are not leaves. */
function leavesOf(value: unknown): Leaf[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap(leavesOf);
  if (isJsonObject(value)) return [];
  return [value as Leaf];
}

function objectsOf(value: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(value)) return value.flatMap(objectsOf);
  return isJsonObject(value) ? [value] : [];
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// ---- Validation --------------------------------------------------------------------------------------------

const SUPPORTED_OPERATORS = ['prefix', 'suffix', 'equals-ignore-case', 'anything-but', 'numeric', 'exists'] as const;
/** Valid in EventBridge but not implemented by this matcher: refused so a local run never silently differs. */
const UNSUPPORTED_OPERATORS = new Set(['wildcard', 'cidr']);
const LOWER_BOUNDS = new Set(['>', '>=']);
const UPPER_BOUNDS = new Set(['<', '<=']);

/**
 * Every reason EventBridge (or this matcher) would refuse the pattern, like PutRule rejecting it. An empty list
 * means `matchesEventPattern` can interpret every part of it.
 */
export function validateEventPattern(pattern: unknown): EventPatternProblem[] {
  const problems: EventPatternProblem[] = [];
  if (!isJsonObject(pattern)) {
    return [{ pointer: '', message: `must be a JSON object of fields to match, not ${describe(pattern)}` }];
  }
  checkObject(pattern, [], problems);
  return problems;
}

function checkObject(pattern: Record<string, unknown>, path: string[], problems: EventPatternProblem[]): void {
  const fields = Object.keys(pattern);
  if (fields.length === 0) {
    problems.push({ pointer: jsonPointer(path), message: 'is empty: a pattern must name at least one field to match' });
  }
  for (const field of fields) {
    const value = pattern[field];
    const fieldPath = [...path, field];
    if (field === '$or') {
      problems.push({
        pointer: jsonPointer(fieldPath),
        message: '"$or" is not supported by Strata\'s pattern matcher; use one rule per alternative',
      });
    } else if (Array.isArray(value)) {
      checkMatchers(value, fieldPath, problems);
    } else if (isJsonObject(value)) {
      checkObject(value, fieldPath, problems);
    } else {
      problems.push({
        pointer: jsonPointer(fieldPath),
        message: `must be a list of values to match or an object of nested fields, not ${describe(value)} (wrap it in a list: [${JSON.stringify(value)}])`,
      });
    }
  }
}

function checkMatchers(matchers: unknown[], path: string[], problems: EventPatternProblem[]): void {
  if (matchers.length === 0) {
    problems.push({ pointer: jsonPointer(path), message: 'is an empty list, which matches nothing: list at least one value' });
  }
  matchers.forEach((matcher, index) => {
    const pointer = jsonPointer([...path, String(index)]);
    const problem = matcherProblem(matcher);
    if (problem) problems.push({ pointer, message: problem });
  });
}

function matcherProblem(matcher: unknown): string | undefined {
  if (matcher === null || ['string', 'number', 'boolean'].includes(typeof matcher)) return undefined;
  if (Array.isArray(matcher)) return 'a nested list is not a matcher: list the values directly';
  if (!isJsonObject(matcher)) return `is ${describe(matcher)}, which is not a value or a matcher`;
  const operators = Object.keys(matcher);
  if (operators.length !== 1) {
    return `a matcher object has exactly one operator, found ${operators.length}${operators.length ? ` (${operators.join(', ')})` : ''}`;
  }
  const operator = operators[0]!;
  const operand = matcher[operator];
  switch (operator) {
    case 'prefix':
    case 'suffix':
    case 'equals-ignore-case':
      return typeof operand === 'string' ? undefined : `"${operator}" takes a string, not ${describe(operand)}`;
    case 'anything-but':
      return anythingButProblem(operand);
    case 'numeric':
      return numericProblem(operand);
    case 'exists':
      return typeof operand === 'boolean' ? undefined : `"exists" takes true or false, not ${describe(operand)}`;
    default:
      return UNSUPPORTED_OPERATORS.has(operator)
        ? `"${operator}" is valid in EventBridge but not supported by Strata's pattern matcher`
        : `unknown operator "${operator}" (use one of: ${SUPPORTED_OPERATORS.join(', ')})`;
  }
}

function anythingButProblem(operand: unknown): string | undefined {
  if (typeof operand === 'string' || typeof operand === 'number') return undefined;
  if (Array.isArray(operand)) {
    if (operand.length === 0) return '"anything-but" needs at least one value';
    const allStrings = operand.every((value) => typeof value === 'string');
    const allNumbers = operand.every((value) => typeof value === 'number');
    return allStrings || allNumbers ? undefined : '"anything-but" takes a list of only strings or only numbers';
  }
  if (isJsonObject(operand)) {
    const keys = Object.keys(operand);
    const inner = keys[0];
    if (keys.length !== 1 || (inner !== 'prefix' && inner !== 'suffix')) {
      return '"anything-but" takes an object with exactly one of "prefix" or "suffix"';
    }
    const text = operand[inner];
    return typeof text === 'string' && text.length > 0 ? undefined : `"anything-but" "${inner}" takes a non-empty string`;
  }
  return `"anything-but" takes a string, a number, a list of them, or {"prefix": ...}; not ${describe(operand)}`;
}

function numericProblem(operand: unknown): string | undefined {
  const usage = '"numeric" takes an operator and a number, or a lower and an upper bound: [">", 0, "<=", 5]';
  if (!Array.isArray(operand) || (operand.length !== 2 && operand.length !== 4)) return usage;
  for (let index = 0; index < operand.length; index += 2) {
    const operator = operand[index];
    const bound = operand[index + 1];
    if (typeof operator !== 'string' || !(operator in COMPARE)) {
      return `"numeric" operator ${JSON.stringify(operator)} is not one of <, <=, =, >, >=`;
    }
    if (typeof bound !== 'number' || !Number.isFinite(bound)) return `"numeric" bound after "${operator}" must be a number`;
  }
  if (operand.length === 4) {
    if (!LOWER_BOUNDS.has(operand[0]) || !UPPER_BOUNDS.has(operand[2])) {
      return `"numeric" range must give the lower bound (> or >=) first and the upper bound (< or <=) second; ${usage}`;
    }
    if (operand[1] >= operand[3]) return `"numeric" range is empty: ${operand[1]} is not below ${operand[3]}`;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `a string (${JSON.stringify(value)})`;
  return `${typeof value === 'number' ? 'a number' : `a ${typeof value}`} (${String(value)})`;
}

/** The deployed patterns are shared by reference between the CDK stack and the router, so nothing may edit them. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
