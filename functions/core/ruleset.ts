/**
 * Loads and checks a Strata project (rules/ and journeys/) from file texts, and compiles it into a Ruleset:
 * the ladder, the metric counters, and one json-rules-engine Engine per ruleset version.
 *
 * Every problem is collected and returned at once, each naming the file, the JSON pointer and a fix.
 */
import { Engine } from 'json-rules-engine';
import type { ZodError, ZodType } from 'zod';
import { type Problem, jsonPointer } from './errors.js';
import { canonicalJson, sha256Hex, shortHash } from './hash.js';
import { isValidTimeZone } from './dates.js';
import { parseJsonText } from './json-text.js';
import { isPlainDottedPath, plainPathResolver } from './path-resolver.js';
import {
  type AttributeDefinition,
  type ConditionNode,
  FORBIDDEN_KEYS,
  KNOWN_OPERATORS,
  type KnownOperator,
  type MetricDefinition,
  type RuleDefinition,
  type TierDefinition,
  type TiersFile,
  ruleListSchema,
  ruleSchema,
  tiersFileSchema,
} from './ruleset-schema.js';
import { didYouMean } from './suggest.js';
import { describeValueIssue, valueAtPath } from './zod-issues.js';
import { registerSafeOperators } from './operators.js';
import type { JourneyDefinition, SignalFilter } from './journey/journey-schema.js';
import { checkJourneyDocument } from './journey/validate-journey.js';
import { semanticWarnings } from './semantic-checks.js';
import { journeySignalFilters } from './journey/signals.js';
import { CHANNELS_FILE, type ChannelConfig, loadChannelConfig } from './channels.js';

export const TIERS_FILE = 'rules/tiers.json';
/** Rule documents are small; a larger or deeper one is refused before it reaches the engine. */
export const MAX_RULE_FILE_BYTES = 64 * 1024;
export const MAX_CONDITION_DEPTH = 8;

/** A counter kept per user per day; metrics with the same event filter share one. */
export interface CounterSpec {
  id: string;
  eventTypes?: string[];
  where?: Record<string, string | number | boolean | Array<string | number | boolean>>;
  /** For sum counters: the numeric property to add. */
  sumProperty?: string;
}

export interface CompiledMetric {
  name: string;
  definition: MetricDefinition;
  countCounter: string;
  sumCounter?: string;
}

export interface Ruleset {
  /** Content hash of every file that shaped it; recorded with each decision. */
  version: string;
  timezone: string;
  tiers: TierDefinition[];
  baseTier: string;
  metrics: CompiledMetric[];
  counters: CounterSpec[];
  attributes: Record<string, AttributeDefinition>;
  rules: Record<string, RuleDefinition[]>;
  /** Numeric constants compared against each fact, for finding the dates when a time-based fact crosses one. */
  thresholds: Record<string, number[]>;
  journeys: Record<string, JourneyDefinition>;
  /** channels.json: how each channel a step names delivers. Not part of the version: it shapes no decision. */
  channels: ChannelConfig;
  signalFilters: SignalFilter[];
  engine: Engine;
  /** The longest metric window: how far back the window query reads. */
  maxWindowDays: number;
}

export type ProjectFiles = Record<string, string>;

/** Property names of the rule formats, for "did you mean" hints on misspelled keys. */
const FORMAT_VOCABULARY = [
  'timezone',
  'tiers',
  'metrics',
  'attributes',
  'id',
  'name',
  'graceDays',
  'minTenureDays',
  'downgrade',
  'journey',
  'kind',
  'windowDays',
  'eventTypes',
  'where',
  'property',
  'description',
  'type',
  'event',
  'conditions',
  'all',
  'any',
  'not',
  'fact',
  'operator',
  'value',
  'path',
  'priority',
  'params',
  'knownEventTypes',
];

export interface LoadResult {
  ruleset?: Ruleset;
  /** Errors: the ruleset is absent when there is any. */
  problems: Problem[];
  /** Likely mistakes in a ruleset that loads (semantic-checks.ts); only looked for when there are no errors. */
  warnings: Problem[];
}

export function tierIndex(ruleset: Ruleset, tier: string): number {
  // A plain loop (no callback made per call): every decision asks, several times.
  const { tiers } = ruleset;
  for (let i = 0; i < tiers.length; i++) if (tiers[i]!.id === tier) return i;
  return -1;
}

/** Parse a JSON file and report a syntax error with line and column. */
export function parseProjectJson(file: string, text: string, problems: Problem[]): unknown {
  const parsed = parseJsonText(text);
  if (parsed.ok) return parsed.value;
  problems.push({
    file,
    pointer: '',
    message: parsed.message,
    line: parsed.line,
    column: parsed.column,
    hint: 'fix the JSON syntax; an editor with JSON support shows the spot',
  });
  return undefined;
}

/** Advice per field of the rule formats, used when a value is out of range or of the wrong kind. */
const RULE_FIELD_HINTS: Record<string, string> = {
  tiers: 'list 2 to 7 tiers, lowest first',
  graceDays: 'a whole number of days from 0 to 365; 0 moves the user down at the first review after they stop qualifying',
  minTenureDays: 'a whole number of days from 0 to 365',
  windowDays: 'a whole number of days from 1 to 400, today included',
  priority: 'a whole number of 1 or more',
};

/** For anything without a better hint: the schema is where the format is spelled out. */
const SCHEMA_HINT = 'see the JSON Schema in schemas/; an editor shows it when the file names its "$schema"';

export function zodProblems(file: string, error: ZodError, document: unknown, knownKeys: readonly string[] = FORMAT_VOCABULARY): Problem[] {
  return error.issues.map((issue): Problem => {
    const pointer = jsonPointer(issue.path);
    const field = issue.path[issue.path.length - 1];
    const fieldHint = typeof field === 'string' ? RULE_FIELD_HINTS[field] : undefined;
    const actual = valueAtPath(document, issue.path);
    const described = describeValueIssue(issue, actual, fieldHint);
    if (described) return { file, pointer, ...described };
    switch (issue.code) {
      case 'unrecognized_keys': {
        const key = issue.keys[0]!;
        return {
          file,
          pointer: jsonPointer([...issue.path, key]),
          message: `unknown property "${key}"`,
          hint: didYouMean(key, knownKeys, 'remove it or check its spelling'),
        };
      }
      case 'invalid_type': {
        const found = actual === undefined ? 'nothing' : Array.isArray(actual) ? 'an array' : actual === null ? 'null' : `a ${typeof actual}`;
        return actual === undefined
          ? { file, pointer, message: `is required`, hint: `add ${describeExpected(issue.expected)}` }
          : {
              file,
              pointer,
              message: `must be ${describeExpected(issue.expected)}, found ${found}`,
              hint: fieldHint ?? `write ${describeExpected(issue.expected)} here`,
            };
      }
      case 'invalid_union':
        if ((issue as { note?: string }).note === 'No matching discriminator') {
          const options = [...issue.message.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
          return {
            file,
            pointer,
            message: actual === undefined ? 'is required' : `${JSON.stringify(actual)} is not a known ${String(field ?? 'value')}`,
            hint: typeof actual === 'string' ? didYouMean(actual, options, `use one of: ${options.join(', ')}`) : `use one of: ${options.join(', ')}`,
          };
        }
        return { file, pointer, message: issue.message, hint: SCHEMA_HINT };
      case 'invalid_value': {
        const options = 'values' in issue ? (issue.values as unknown[]) : undefined;
        if (options?.length) {
          const hint =
            typeof actual === 'string'
              ? didYouMean(actual, options.map(String), `use one of: ${options.map((o) => JSON.stringify(o)).join(', ')}`)
              : `use one of: ${options.map((o) => JSON.stringify(o)).join(', ')}`;
          return { file, pointer, message: `${JSON.stringify(actual)} is not allowed here`, hint };
        }
        return { file, pointer, message: issue.message, hint: SCHEMA_HINT };
      }
      default:
        return { file, pointer, message: issue.message, hint: fieldHint ?? SCHEMA_HINT };
    }
  });
}

function describeExpected(expected: string): string {
  switch (expected) {
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'boolean':
      return 'true or false';
    default:
      return expected;
  }
}

export function validateWithSchema<T>(
  file: string,
  schema: ZodType<T>,
  document: unknown,
  problems: Problem[],
  knownKeys: readonly string[] = FORMAT_VOCABULARY,
): T | undefined {
  const result = schema.safeParse(document);
  if (result.success) return result.data;
  problems.push(...zodProblems(file, result.error, document, knownKeys));
  return undefined;
}

function counterIdFor(definition: MetricDefinition, sum: boolean): string {
  const filter = {
    eventTypes: definition.eventTypes ? [...definition.eventTypes].sort() : undefined,
    where: definition.where,
    sumProperty: sum && definition.kind === 'sum' ? definition.property : undefined,
  };
  // Keyed by the filter, not the metric name or window: changing a window keeps history; changing a filter
  // starts a fresh counter rather than reinterpreting old counts.
  return (sum ? 's_' : 'n_') + shortHash(canonicalJson(filter), 8).replace(/[-]/g, 'x');
}

function compileMetrics(metrics: Record<string, MetricDefinition>): { compiled: CompiledMetric[]; counters: CounterSpec[] } {
  const counters = new Map<string, CounterSpec>();
  const compiled: CompiledMetric[] = [];
  for (const [name, definition] of Object.entries(metrics)) {
    const countCounter = counterIdFor(definition, false);
    counters.set(countCounter, { id: countCounter, eventTypes: definition.eventTypes, where: definition.where });
    let sumCounter: string | undefined;
    if (definition.kind === 'sum') {
      sumCounter = counterIdFor(definition, true);
      counters.set(sumCounter, { id: sumCounter, eventTypes: definition.eventTypes, where: definition.where, sumProperty: definition.property });
    }
    compiled.push({ name, definition, countCounter, sumCounter });
  }
  return { compiled, counters: [...counters.values()].sort((a, b) => (a.id < b.id ? -1 : 1)) };
}

/** What people write from habit, and the operator it means. */
const OPERATOR_FOR_SYMBOL: Record<string, KnownOperator> = {
  '>': 'greaterThan',
  '>=': 'greaterThanInclusive',
  '≥': 'greaterThanInclusive',
  '<': 'lessThan',
  '<=': 'lessThanInclusive',
  '≤': 'lessThanInclusive',
  '=': 'equal',
  '==': 'equal',
  '===': 'equal',
  '!=': 'notEqual',
  '!==': 'notEqual',
  '<>': 'notEqual',
  '≠': 'notEqual',
};

const NUMERIC_OPERATORS = new Set(['lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive']);
const LIST_OPERATORS = new Set(['in', 'notIn']);
const ELEMENT_OPERATORS = new Set(['contains', 'doesNotContain']);

type FactKind = 'number' | 'string' | 'boolean' | 'tags';

function factKinds(tiers: TiersFile): Map<string, FactKind> {
  const kinds = new Map<string, FactKind>();
  for (const name of Object.keys(tiers.metrics)) kinds.set(name, 'number');
  for (const [name, attribute] of Object.entries(tiers.attributes)) {
    if (kinds.has(name)) continue; // reported as a clash; judging rules by either kind would only add noise
    kinds.set(name, attribute.type === 'tags' ? 'tags' : attribute.type === 'days-since' ? 'number' : attribute.type);
  }
  return kinds;
}

interface ConditionCheckContext {
  file: string;
  facts: Map<string, FactKind>;
  problems: Problem[];
  thresholds: Record<string, number[]>;
}

function checkCondition(node: ConditionNode, path: Array<string | number>, depth: number, context: ConditionCheckContext): void {
  const { file, problems } = context;
  const pointer = jsonPointer(path);
  if (depth > MAX_CONDITION_DEPTH) {
    problems.push({
      file,
      pointer,
      message: `conditions are nested deeper than ${MAX_CONDITION_DEPTH} levels`,
      hint: 'flatten the rule with all/any',
    });
    return;
  }
  if (node.condition !== undefined) {
    problems.push({ file, pointer: pointer + '/condition', message: 'shared conditions are not supported', hint: 'write the conditions inline' });
    return;
  }
  if (node.params !== undefined) {
    problems.push({
      file,
      pointer: pointer + '/params',
      message: 'fact params are not supported: Strata facts take no parameters',
      hint: 'remove "params"',
    });
  }
  const groups = (['all', 'any', 'not'] as const).filter((key) => node[key] !== undefined);
  const isLeaf = node.fact !== undefined || node.operator !== undefined || node.value !== undefined;
  if (groups.length + (isLeaf ? 1 : 0) !== 1) {
    problems.push({
      file,
      pointer,
      message:
        groups.length + (isLeaf ? 1 : 0) === 0
          ? 'a condition is empty'
          : `a condition mixes ${[...groups, ...(isLeaf ? ['fact'] : [])].join(' and ')}`,
      hint: 'use either {"all": [...]}, {"any": [...]}, {"not": {...}} or {"fact", "operator", "value"}',
    });
    return;
  }
  if (groups[0] === 'all' || groups[0] === 'any') {
    const children = node[groups[0]]!;
    if (children.length === 0)
      problems.push({ file, pointer: `${pointer}/${groups[0]}`, message: `"${groups[0]}" has no conditions`, hint: 'add at least one condition' });
    children.forEach((child, i) => checkCondition(child, [...path, groups[0]!, i], depth + 1, context));
    return;
  }
  if (groups[0] === 'not') {
    checkCondition(node.not!, [...path, 'not'], depth + 1, context);
    return;
  }
  checkLeaf(node, path, context);
}

function checkLeaf(node: ConditionNode, path: Array<string | number>, context: ConditionCheckContext): void {
  const { file, problems, facts } = context;
  const pointer = jsonPointer(path);
  if (node.fact === undefined) {
    problems.push({ file, pointer: pointer + '/fact', message: 'is required', hint: 'name a metric or attribute from rules/tiers.json' });
    return;
  }
  let kind = facts.get(node.fact);
  if (FORBIDDEN_KEYS.has(node.fact)) {
    problems.push({
      file,
      pointer: pointer + '/fact',
      message: `"${node.fact}" is a reserved name and can never be a fact`,
      hint: 'name a metric or attribute from rules/tiers.json',
    });
    return;
  }
  if (kind === undefined) {
    problems.push({
      file,
      pointer: pointer + '/fact',
      message: `unknown fact "${node.fact}"`,
      hint: didYouMean(node.fact, facts.keys(), `declare it under "metrics" or "attributes" in ${TIERS_FILE}`),
    });
  }
  if (node.path !== undefined) {
    if (!isPlainDottedPath(node.path)) {
      problems.push({
        file,
        pointer: pointer + '/path',
        message: `"${node.path}" is not a plain dotted path`,
        hint: 'use names joined by dots, like "address.city"; JSONPath filters, wildcards and scripts are not allowed',
      });
    } else if (kind !== undefined) {
      problems.push({
        file,
        pointer: pointer + '/path',
        message: `fact "${node.fact}" is a single value and has no properties`,
        hint: 'remove "path"',
      });
    }
    kind = undefined;
  }
  const operator = node.operator;
  if (operator === undefined) {
    problems.push({ file, pointer: pointer + '/operator', message: 'is required', hint: `use one of: ${KNOWN_OPERATORS.join(', ')}` });
    return;
  }
  if (!(KNOWN_OPERATORS as readonly string[]).includes(operator)) {
    const named = OPERATOR_FOR_SYMBOL[operator.trim()];
    problems.push({
      file,
      pointer: pointer + '/operator',
      message: `unknown operator "${operator}"`,
      // Symbols are not close to any name by spelling, so "did you mean" would guess wrong; name the operator.
      hint: named
        ? `json-rules-engine names its operators: write "${named}" for ${operator.trim()}`
        : didYouMean(operator, KNOWN_OPERATORS, `use one of: ${KNOWN_OPERATORS.join(', ')}`),
    });
    return;
  }
  if (!('value' in node)) {
    problems.push({ file, pointer: pointer + '/value', message: 'is required', hint: 'add the value to compare the fact with' });
    return;
  }
  const value = node.value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    // json-rules-engine compares against another fact with {"fact": "name"}; anything else in an object is refused.
    const keys = Object.keys(value);
    const other = (value as { fact?: unknown }).fact;
    if (keys.length !== 1 || typeof other !== 'string') {
      problems.push({
        file,
        pointer: pointer + '/value',
        message: 'an object value must be {"fact": "<name>"} to compare with another fact',
        hint: 'write a plain value, or {"fact": "otherFact"}',
      });
    } else if (!facts.has(other)) {
      problems.push({
        file,
        pointer: pointer + '/value/fact',
        message: `unknown fact "${other}"`,
        hint: didYouMean(other, facts.keys(), `declare it in ${TIERS_FILE}`),
      });
    }
    return;
  }
  const valuePointer = pointer + '/value';
  if (NUMERIC_OPERATORS.has(operator)) {
    if (typeof value !== 'number') {
      problems.push({
        file,
        pointer: valuePointer,
        message: `"${operator}" needs a number, found ${describeJson(value)}`,
        hint: typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? `write ${Number(value)} without quotes` : undefined,
      });
      return;
    }
    if (kind !== undefined && kind !== 'number') {
      problems.push({
        file,
        pointer: valuePointer,
        message: `"${operator}" compares numbers, but fact "${node.fact}" is ${kind === 'tags' ? 'a list of tags' : `a ${kind}`}`,
        hint: kind === 'tags' ? 'use "contains" or "doesNotContain"' : 'use "equal", "notEqual", "in" or "notIn"',
      });
    }
    (context.thresholds[node.fact] ??= []).push(value);
    return;
  }
  if (LIST_OPERATORS.has(operator)) {
    if (!Array.isArray(value)) {
      problems.push({
        file,
        pointer: valuePointer,
        message: `"${operator}" needs a list of values, found ${describeJson(value)}`,
        hint: `write [${JSON.stringify(value)}]`,
      });
      return;
    }
    // An object in the list (say {"$regex": ...}) could never match and reads like a query another engine would run.
    value.forEach((element, i) => {
      if (element !== null && typeof element === 'object') {
        problems.push({
          file,
          pointer: `${valuePointer}/${i}`,
          message: 'a list value may hold only strings, numbers, booleans and null',
          hint: 'list the plain values to match',
        });
      }
    });
    return;
  }
  if (ELEMENT_OPERATORS.has(operator)) {
    if (kind !== undefined && kind !== 'tags') {
      problems.push({
        file,
        pointer: pointer + '/operator',
        message: `"${operator}" looks inside a list, but fact "${node.fact}" is a ${kind}`,
        hint: 'use "equal" or "in" for single values',
      });
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      problems.push({
        file,
        pointer: valuePointer,
        message: `"${operator}" needs a single value to look for, found ${describeJson(value)}`,
        hint: 'write one string or number; use several conditions under "any" for several',
      });
    }
    return;
  }
  if (typeof value === 'number') (context.thresholds[node.fact] ??= []).push(value);
  if (kind === 'number' && typeof value !== 'number' && value !== null) {
    problems.push({
      file,
      pointer: valuePointer,
      message: `fact "${node.fact}" is a number, but the value is ${describeJson(value)}`,
      hint: typeof value === 'string' && !Number.isNaN(Number(value)) ? `write ${Number(value)} without quotes` : undefined,
    });
  }
}

function describeJson(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Lower bounds a rule places on facts in its top-level "all", used to spot a ladder listed in the wrong order. */
function lowerBounds(rules: RuleDefinition[]): Map<string, number> {
  const bounds = new Map<string, number>();
  if (rules.length !== 1) return bounds;
  for (const condition of rules[0]!.conditions.all ?? []) {
    if (
      (condition.operator === 'greaterThan' || condition.operator === 'greaterThanInclusive') &&
      typeof condition.value === 'number' &&
      condition.fact
    ) {
      bounds.set(condition.fact, condition.value);
    }
  }
  return bounds;
}

function checkLadderOrder(tiers: TierDefinition[], rules: Record<string, RuleDefinition[]>, problems: Problem[]): void {
  for (let i = 2; i < tiers.length; i++) {
    const lower = lowerBounds(rules[tiers[i - 1]!.id] ?? []);
    const upper = lowerBounds(rules[tiers[i]!.id] ?? []);
    const shared = [...upper.keys()].filter((fact) => lower.has(fact));
    if (shared.length > 0 && shared.every((fact) => upper.get(fact)! < lower.get(fact)!)) {
      problems.push({
        file: TIERS_FILE,
        pointer: `/tiers/${i}`,
        message: `tier "${tiers[i]!.id}" asks less than the tier below it, "${tiers[i - 1]!.id}": ${shared.map((f) => `${f} from ${upper.get(f)} here, from ${lower.get(f)} there`).join('; ')}`,
        hint: "list the ladder lowest first, or raise the higher tier's thresholds",
      });
    }
  }
}

/**
 * zod's records drop a "__proto__" key without a word, so a metric named "__proto__" would vanish and surface only
 * as "unknown fact" elsewhere; reserved keys are looked for before the schema sees the document.
 */
function reservedKeyProblems(file: string, value: unknown, path: Array<string | number>, problems: Problem[]): void {
  if (value === null || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key))
      problems.push({ file, pointer: jsonPointer([...path, key]), message: `"${key}" is a reserved name and is not allowed`, hint: 'rename it' });
    else reservedKeyProblems(file, (value as Record<string, unknown>)[key], [...path, Array.isArray(value) ? Number(key) : key], problems);
  }
}

export function loadRuleset(files: ProjectFiles): LoadResult {
  const problems: Problem[] = [];
  const tiersText = files[TIERS_FILE];
  if (tiersText === undefined) {
    return {
      problems: [
        { file: TIERS_FILE, pointer: '', message: 'file not found', hint: 'create rules/tiers.json with the ladder, metrics and attributes' },
      ],
      warnings: [],
    };
  }
  const tiersDocument = parseProjectJson(TIERS_FILE, tiersText, problems);
  reservedKeyProblems(TIERS_FILE, tiersDocument, [], problems);
  const tiersFile = tiersDocument === undefined ? undefined : validateWithSchema(TIERS_FILE, tiersFileSchema, tiersDocument, problems);
  if (!tiersFile) return { problems, warnings: [] };

  if (!isValidTimeZone(tiersFile.timezone)) {
    problems.push({
      file: TIERS_FILE,
      pointer: '/timezone',
      message: `"${tiersFile.timezone}" is not a known time zone`,
      hint: 'use an IANA name such as "Asia/Shanghai" or "UTC"',
    });
  }
  const seen = new Map<string, number>();
  tiersFile.tiers.forEach((tier, i) => {
    const first = seen.get(tier.id);
    if (first !== undefined) {
      problems.push({
        file: TIERS_FILE,
        pointer: `/tiers/${i}/id`,
        message: `duplicate tier id "${tier.id}" (also at /tiers/${first})`,
        hint: 'each tier needs its own id',
      });
    } else seen.set(tier.id, i);
  });
  for (const name of Object.keys(tiersFile.attributes)) {
    if (name in tiersFile.metrics) {
      problems.push({
        file: TIERS_FILE,
        pointer: `/attributes/${name}`,
        message: `"${name}" is both a metric and an attribute`,
        hint: 'rename one of them',
      });
    }
  }

  const facts = factKinds(tiersFile);
  const thresholds: Record<string, number[]> = {};
  const rules: Record<string, RuleDefinition[]> = {};
  const ruleFileIsList: Record<string, boolean> = {};
  const baseTier = tiersFile.tiers[0]!.id;
  const tierIds = new Set(tiersFile.tiers.map((t) => t.id));

  for (const file of Object.keys(files).sort()) {
    const match = /^rules\/([^/]+)\.json$/.exec(file);
    if (!match || file === TIERS_FILE) continue;
    const id = match[1]!;
    if (!tierIds.has(id)) {
      problems.push({
        file,
        pointer: '',
        message: `no tier "${id}" in ${TIERS_FILE}`,
        hint: didYouMean(id, tierIds, 'rename the file to rules/<tier id>.json or add the tier to the ladder'),
      });
    } else if (id === baseTier) {
      problems.push({
        file,
        pointer: '',
        message: `"${id}" is the base tier, which everyone starts in, so it has no rule`,
        hint: 'delete this file, or put another tier first in the ladder',
      });
    }
  }

  tiersFile.tiers.forEach((tier, index) => {
    if (index === 0) return;
    const file = `rules/${tier.id}.json`;
    const text = files[file];
    if (text === undefined) {
      problems.push({
        file: TIERS_FILE,
        pointer: `/tiers/${index}/id`,
        message: `tier "${tier.id}" has no rule file ${file}`,
        hint: `create ${file} with the conditions that qualify a user for ${tier.name}`,
      });
      return;
    }
    if (Buffer.byteLength(text, 'utf8') > MAX_RULE_FILE_BYTES) {
      problems.push({
        file,
        pointer: '',
        message: `the file is larger than ${MAX_RULE_FILE_BYTES / 1024} KiB`,
        hint: 'a tier rule needs only a few conditions',
      });
      return;
    }
    const document = parseProjectJson(file, text, problems);
    if (document === undefined) return;
    const depthProblem = jsonDepthExceeds(document, MAX_CONDITION_DEPTH * 3 + 4);
    if (depthProblem) {
      problems.push({ file, pointer: '', message: 'the document is nested too deeply', hint: 'flatten the rule with all/any' });
      return;
    }
    // One schema per shape rather than a union, so that errors point inside the rule instead of at the union.
    const parsed: RuleDefinition | RuleDefinition[] | undefined = Array.isArray(document)
      ? validateWithSchema(file, ruleListSchema, document, problems)
      : validateWithSchema(file, ruleSchema, document, problems);
    if (!parsed) return;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    const context: ConditionCheckContext = { file, facts, problems, thresholds };
    list.forEach((rule, i) => {
      const base: Array<string | number> = Array.isArray(parsed) ? [i] : [];
      checkCondition(rule.conditions, [...base, 'conditions'], 1, context);
      const named = rule.event.params?.['tier'];
      if (named !== undefined && named !== tier.id) {
        problems.push({
          file,
          pointer: jsonPointer([...base, 'event', 'params', 'tier']),
          message: `names tier "${String(named)}" but the file is for "${tier.id}"`,
          hint: `set it to "${tier.id}" or move the rule to rules/${String(named)}.json`,
        });
      }
    });
    rules[tier.id] = list;
    ruleFileIsList[tier.id] = Array.isArray(parsed);
  });

  const channelsLoad = loadChannelConfig(files[CHANNELS_FILE], parseProjectJson);
  problems.push(...channelsLoad.problems);

  const journeys: Record<string, JourneyDefinition> = {};
  const journeyFiles: Record<string, string> = {};
  tiersFile.tiers.forEach((tier, index) => {
    if (!tier.journey) return;
    const file = tier.journey.replace(/^\.\//, '');
    const text = files[file];
    if (text === undefined) {
      problems.push({
        file: TIERS_FILE,
        pointer: `/tiers/${index}/journey`,
        message: `journey file ${file} not found`,
        hint: didYouMean(
          file,
          Object.keys(files).filter((f) => f.startsWith('journeys/')),
          'create it, or fix the path, which is relative to the project directory',
        ),
      });
      return;
    }
    const document = parseProjectJson(file, text, problems);
    if (document === undefined) return;
    const checked = checkJourneyDocument(file, document, {
      tierIds: [...tierIds],
      expectedTier: tier.id,
      ...(channelsLoad.config ? { channels: channelsLoad.config } : {}),
    });
    problems.push(...checked.problems);
    if (checked.journey) {
      journeys[tier.id] = checked.journey;
      journeyFiles[tier.id] = file;
    }
  });
  for (const file of Object.keys(files).sort()) {
    if (!file.startsWith('journeys/') || !file.endsWith('.json')) continue;
    if (!tiersFile.tiers.some((tier) => tier.journey?.replace(/^\.\//, '') === file)) {
      problems.push({
        file,
        pointer: '',
        message: `no tier in ${TIERS_FILE} uses this journey`,
        hint: 'set "journey" on its tier, or delete the file',
      });
    }
  }

  if (problems.length === 0) checkLadderOrder(tiersFile.tiers, rules, problems);
  if (problems.length > 0) return { problems, warnings: [] };

  const warnings = semanticWarnings({
    tiersFile,
    tiersFileName: TIERS_FILE,
    rules,
    ruleFileIsList,
    journeys: Object.fromEntries(Object.entries(journeys).map(([tier, journey]) => [tier, { file: journeyFiles[tier]!, journey }])),
  });
  const { compiled, counters } = compileMetrics(tiersFile.metrics);
  const engine = createEngine(rules);
  const version = sha256Hex(canonicalJson({ tiers: tiersFile, rules, journeys })).slice(0, 12);
  for (const fact of Object.keys(thresholds)) thresholds[fact] = [...new Set(thresholds[fact])].sort((a, b) => a - b);
  const ruleset: Ruleset = {
    version,
    timezone: tiersFile.timezone,
    tiers: tiersFile.tiers,
    baseTier,
    metrics: compiled,
    counters,
    attributes: tiersFile.attributes,
    rules,
    thresholds,
    journeys,
    channels: channelsLoad.config!,
    signalFilters: journeySignalFilters(Object.values(journeys)),
    engine,
    maxWindowDays: Math.max(1, ...compiled.map((m) => m.definition.windowDays)),
  };
  return { ruleset, problems: [], warnings };
}

function jsonDepthExceeds(value: unknown, limit: number): boolean {
  if (limit < 0) return true;
  if (value === null || typeof value !== 'object') return false;
  return Object.values(value).some((child) => jsonDepthExceeds(child, limit - 1));
}

/** The rule name under which a tier's i-th rule is registered in the shared engine. */
export function engineRuleName(tier: string, index: number): string {
  return `${tier}#${index}`;
}

function newEngine(): Engine {
  const engine = new Engine([], { allowUndefinedFacts: true, pathResolver: plainPathResolver });
  registerSafeOperators(engine);
  return engine;
}

function addTierRule(engine: Engine, tier: string, rule: RuleDefinition, i: number): void {
  engine.addRule({
    name: engineRuleName(tier, i),
    priority: rule.priority ?? 1,
    conditions: rule.conditions as never,
    event: { type: 'qualifies', params: { tier, rule: rule.name ?? engineRuleName(tier, i) } },
  });
}

function createEngine(rules: Record<string, RuleDefinition[]>): Engine {
  const engine = newEngine();
  for (const [tier, list] of Object.entries(rules)) list.forEach((rule, i) => addTierRule(engine, tier, rule, i));
  return engine;
}

/** A rule on an engine of its own, registered exactly as in the ruleset's shared engine. */
export interface SingleRuleEngine {
  tier: string;
  rule: RuleDefinition;
  priority: number;
  engine: Engine;
}

/**
 * One engine per rule, in the shared engine's order (highest priority first, then as registered): rules never read
 * each other's results, so running each alone gives each the same result, and a rule's result depends only on the
 * facts that rule reads (see qualify.ts).
 */
export function createSingleRuleEngines(rules: Record<string, RuleDefinition[]>): SingleRuleEngine[] {
  const engines: SingleRuleEngine[] = [];
  for (const [tier, list] of Object.entries(rules)) {
    list.forEach((rule, i) => {
      const engine = newEngine();
      addTierRule(engine, tier, rule, i);
      engines.push({ tier, rule, priority: rule.priority ?? 1, engine });
    });
  }
  // A stable sort: equal priorities keep their registration order.
  return engines.sort((a, b) => b.priority - a.priority);
}

/** Used by tests and the CLI when they need a ruleset that must be valid. */
export function loadRulesetOrThrow(files: ProjectFiles): Ruleset {
  const result = loadRuleset(files);
  if (!result.ruleset) {
    throw new Error('Ruleset: ' + result.problems.map((p) => `${p.file}: ${p.pointer || '/'}: ${p.message}`).join('\n'));
  }
  return result.ruleset;
}
