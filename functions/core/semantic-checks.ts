/**
 * Mistakes that are not typos: files that parse and validate, yet cannot do what their author meant. A metric
 * that counts an event nothing sends, a threshold its window can never reach, a tier no user can reach, a wait
 * that adds nothing before a branch, a metric no rule reads. They are warnings, not errors: `strata validate`
 * exits 0 unless `--strict`, because each one can be deliberate for a while (a producer not live yet).
 */
import { jsonPointer, type Problem } from './errors.js';
import { DOCUMENTED_EVENT_TYPE_NAMES } from './event-types.js';
import { describeDuration } from './journey/compile-journey.js';
import type { JourneyDefinition, JourneyStep } from './journey/journey-schema.js';
import type { AttributeDefinition, ConditionNode, MetricDefinition, RuleDefinition, TiersFile } from './ruleset-schema.js';
import { didYouMean } from './suggest.js';

export interface SemanticCheckInput {
  tiersFile: TiersFile;
  /** rules/tiers.json, as the files are named in problems. */
  tiersFileName: string;
  rules: Record<string, RuleDefinition[]>;
  /** Whether each tier's rule file holds a list (its pointers then start with the rule's index). */
  ruleFileIsList: Record<string, boolean>;
  journeys: Record<string, { file: string; journey: JourneyDefinition }>;
}

export function semanticWarnings(input: SemanticCheckInput): Problem[] {
  return [...eventTypeWarnings(input), ...ruleWarnings(input), ...unusedMetricWarnings(input), ...journeyWaitWarnings(input)];
}

const warning = (file: string, path: ReadonlyArray<string | number>, message: string, hint: string): Problem => ({
  file,
  pointer: jsonPointer(path),
  message,
  hint,
  severity: 'warning',
});

// ---------------------------------------------------------------------------------------------------------------
// Event types nothing is known to send

function eventTypeWarnings({ tiersFile, tiersFileName, journeys }: SemanticCheckInput): Problem[] {
  const known = new Set([...DOCUMENTED_EVENT_TYPE_NAMES, ...(tiersFile.knownEventTypes ?? [])]);
  const check = (file: string, path: ReadonlyArray<string | number>, type: string): Problem[] =>
    known.has(type)
      ? []
      : [
          warning(
            file,
            path,
            `event type "${type}" is neither one Strata documents nor listed in "knownEventTypes", so it may never arrive and this reads 0 for everyone`,
            didYouMean(type, known, `if your producers send "${type}", add it to "knownEventTypes" in ${tiersFileName}`),
          ),
        ];
  const problems: Problem[] = [];
  for (const [name, metric] of Object.entries(tiersFile.metrics)) {
    (metric.eventTypes ?? []).forEach((type, i) => problems.push(...check(tiersFileName, ['metrics', name, 'eventTypes', i], type)));
  }
  for (const [name, attribute] of Object.entries(tiersFile.attributes)) {
    problems.push(...check(tiersFileName, ['attributes', name, 'event'], attribute.event));
  }
  for (const { file, journey } of Object.values(journeys)) {
    const conversion = journey.settings.exitOn.conversion;
    if (conversion) problems.push(...check(file, ['settings', 'exitOn', 'conversion', 'type'], conversion.type));
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Thresholds a fact can never meet, and tiers no user can reach

/** The values a numeric fact can take: whole numbers in [min, max] for counts and days, any number for sums. */
interface FactRange {
  whole: boolean;
  min: number;
  max: number;
  /** Why the range is what it is, for the message. */
  because: string;
  /** A fact that is never missing (count, distinct-days): only then can a condition be always true. */
  alwaysPresent: boolean;
}

function metricRange(name: string, metric: MetricDefinition): FactRange | undefined {
  switch (metric.kind) {
    case 'count':
      return { whole: true, min: 0, max: Infinity, because: `${name} counts events, so it is never negative`, alwaysPresent: true };
    case 'distinct-days':
      return {
        whole: true,
        min: 0,
        max: metric.windowDays,
        because: `${name} counts days in a ${metric.windowDays}-day window, so it is 0 to ${metric.windowDays}`,
        alwaysPresent: true,
      };
    case 'last':
      return {
        whole: true,
        min: 0,
        max: metric.windowDays - 1,
        because: `${name} is days since the last event within ${metric.windowDays} days, so it is 0 to ${metric.windowDays - 1}`,
        alwaysPresent: false,
      };
    case 'sum':
      // Refunds may be negative amounts, so a sum has no bound worth asserting.
      return undefined;
  }
}

function attributeRange(name: string, attribute: AttributeDefinition): FactRange | undefined {
  return attribute.type === 'days-since'
    ? { whole: true, min: 0, max: Infinity, because: `${name} counts whole days since an event, so it is never negative`, alwaysPresent: false }
    : undefined;
}

function factRanges(tiersFile: TiersFile): Map<string, FactRange> {
  const ranges = new Map<string, FactRange>();
  for (const [name, metric] of Object.entries(tiersFile.metrics)) {
    const range = metricRange(name, metric);
    if (range) ranges.set(name, range);
  }
  for (const [name, attribute] of Object.entries(tiersFile.attributes)) {
    const range = attributeRange(name, attribute);
    if (range && !ranges.has(name)) ranges.set(name, range);
  }
  return ranges;
}

/** A closed interval; whole-number facts have their open bounds rounded inwards first. */
interface Interval {
  min: number;
  max: number;
}

const SYMBOLS: Record<string, string> = { greaterThan: '>', greaterThanInclusive: '≥', lessThan: '<', lessThanInclusive: '≤', equal: '=' };

/** The values of the fact for which a numeric leaf holds, or undefined when the leaf is not a numeric bound. */
function leafInterval(node: ConditionNode, whole: boolean): Interval | undefined {
  const value = node.value;
  if (typeof value !== 'number' || node.path !== undefined) return undefined;
  const up = (v: number): number => (whole ? Math.ceil(v) : v);
  const down = (v: number): number => (whole ? Math.floor(v) : v);
  // Open bounds on whole numbers become the next whole number; on real numbers a tiny step keeps them open.
  const step = whole ? 1 : Number.EPSILON * Math.max(1, Math.abs(value));
  switch (node.operator) {
    case 'greaterThan':
      return { min: whole ? Math.floor(value) + 1 : value + step, max: Infinity };
    case 'greaterThanInclusive':
      return { min: up(value), max: Infinity };
    case 'lessThan':
      return { min: -Infinity, max: whole ? Math.ceil(value) - 1 : value - step };
    case 'lessThanInclusive':
      return { min: -Infinity, max: down(value) };
    case 'equal':
      return whole && !Number.isInteger(value) ? { min: 1, max: 0 } : { min: value, max: value };
    default:
      return undefined;
  }
}

const intersect = (a: Interval, b: Interval): Interval => ({ min: Math.max(a.min, b.min), max: Math.min(a.max, b.max) });
const isEmpty = (interval: Interval): boolean => interval.min > interval.max;
const describeLeaf = (node: ConditionNode): string => `${node.fact} ${SYMBOLS[node.operator ?? ''] ?? node.operator} ${JSON.stringify(node.value)}`;

interface RuleWalk {
  file: string;
  ranges: Map<string, FactRange>;
  problems: Problem[];
}

/**
 * Reports leaves that can never hold or always hold, and returns why the node can never pass (undefined when it
 * may). Conservative: only numeric bounds are reasoned about; `not`, fact-to-fact comparisons and every other
 * operator are taken as satisfiable.
 */
function unsatisfiable(node: ConditionNode, path: Array<string | number>, walk: RuleWalk): string | undefined {
  if (node.all) {
    const reasons = node.all.map((child, i) => unsatisfiable(child, [...path, 'all', i], walk));
    const first = reasons.find((reason) => reason !== undefined);
    if (first) return first;
    // Bounds on one fact that cannot all hold at once, such as daysActive30 ≥ 10 and daysActive30 < 5.
    const byFact = new Map<string, { interval: Interval; leaves: ConditionNode[] }>();
    for (const child of node.all) {
      const range = child.fact === undefined ? undefined : walk.ranges.get(child.fact);
      const interval = range && leafInterval(child, range.whole);
      if (!interval) continue;
      const entry = byFact.get(child.fact!) ?? { interval: { min: range.min, max: range.max }, leaves: [] };
      entry.interval = intersect(entry.interval, interval);
      entry.leaves.push(child);
      byFact.set(child.fact!, entry);
    }
    for (const { interval, leaves } of byFact.values()) {
      if (isEmpty(interval)) return `${leaves.map(describeLeaf).join(' and ')} cannot both hold`;
    }
    return undefined;
  }
  if (node.any) {
    const reasons = node.any.map((child, i) => unsatisfiable(child, [...path, 'any', i], walk));
    return reasons.length > 0 && reasons.every((reason) => reason !== undefined) ? reasons.join('; ') : undefined;
  }
  if (node.not) {
    unsatisfiable(node.not, [...path, 'not'], walk);
    return undefined;
  }
  return leafReason(node, path, walk);
}

function leafReason(node: ConditionNode, path: Array<string | number>, walk: RuleWalk): string | undefined {
  const range = node.fact === undefined ? undefined : walk.ranges.get(node.fact);
  const interval = range && leafInterval(node, range.whole);
  if (!range || !interval) return undefined;
  const possible = intersect(interval, { min: range.min, max: range.max });
  if (isEmpty(possible)) {
    const reason = `${describeLeaf(node)} can never hold: ${range.because}`;
    walk.problems.push(warning(walk.file, path, reason, "change the threshold or the metric's window, or remove the condition"));
    return reason;
  }
  if (range.alwaysPresent && possible.min <= range.min && possible.max >= range.max) {
    walk.problems.push(
      warning(walk.file, path, `${describeLeaf(node)} always holds: ${range.because}`, 'remove the condition, or set the threshold you meant'),
    );
  }
  return undefined;
}

function ruleWarnings({ tiersFile, tiersFileName, rules, ruleFileIsList }: SemanticCheckInput): Problem[] {
  const problems: Problem[] = [];
  const ranges = factRanges(tiersFile);
  tiersFile.tiers.forEach((tier, index) => {
    const list = rules[tier.id];
    if (!list || list.length === 0) return;
    const file = `rules/${tier.id}.json`;
    const walk: RuleWalk = { file, ranges, problems };
    const reasons = list.map((rule, i) => unsatisfiable(rule.conditions, [...(ruleFileIsList[tier.id] ? [i] : []), 'conditions'], walk));
    if (reasons.every((reason) => reason !== undefined)) {
      problems.push(
        warning(tiersFileName, ['tiers', index], `no user can ever reach tier "${tier.id}": ${reasons.join('; ')}`, `fix the conditions in ${file}`),
      );
    }
  });
  return problems;
}

function factsUsed(node: ConditionNode, used: Set<string>): void {
  if (node.fact !== undefined) used.add(node.fact);
  const other = node.value !== null && typeof node.value === 'object' ? (node.value as { fact?: unknown }).fact : undefined;
  if (typeof other === 'string') used.add(other);
  for (const child of [...(node.all ?? []), ...(node.any ?? []), ...(node.not ? [node.not] : [])]) factsUsed(child, used);
}

function unusedMetricWarnings({ tiersFile, tiersFileName, rules }: SemanticCheckInput): Problem[] {
  const used = new Set<string>();
  for (const list of Object.values(rules)) for (const rule of list) factsUsed(rule.conditions, used);
  return Object.keys(tiersFile.metrics)
    .filter((name) => !used.has(name))
    .map((name) =>
      warning(
        tiersFileName,
        ['metrics', name],
        `metric "${name}" is not used by any rule`,
        'use it in a rule, or remove it so that nobody reads it as part of the ladder',
      ),
    );
}

// ---------------------------------------------------------------------------------------------------------------
// A wait right before a branch that waits anyway

/**
 * A branch that finds no engagement waits until `timeoutDays` after its `since` step was sent, and only then
 * decides. A wait between the send and the branch as long as that window (or longer) gives no extra time: the
 * author likely meant "wait, then check once", which is timeoutDays 0, or more time, which is a longer timeout.
 */
function journeyWaitWarnings({ journeys }: SemanticCheckInput): Problem[] {
  const problems: Problem[] = [];
  for (const { file, journey } of Object.values(journeys)) {
    const indexOf = new Map(journey.steps.map((step, i) => [step.id, i]));
    const byId = new Map<string, JourneyStep>(journey.steps.map((step) => [step.id, step]));
    for (const wait of journey.steps) {
      if (wait.type !== 'wait' || wait.untilLocalTime !== undefined) continue;
      const branch = byId.get(wait.next);
      if (branch?.type !== 'branch') continue;
      const since = byId.get(branch.since);
      if (!since || !('next' in since) || since.next !== wait.id) continue;
      const waitHours = (wait.days ?? 0) * 24 + (wait.hours ?? 0);
      if (branch.timeoutDays === 0 || waitHours < branch.timeoutDays * 24) continue;
      problems.push(
        warning(
          file,
          ['steps', indexOf.get(wait.id)!],
          `wait "${wait.id}" (${describeDuration(wait.days ?? 0, wait.hours ?? 0)}) adds nothing: branch "${branch.id}" right after it already waits up to ${describeDuration(branch.timeoutDays, 0)} after "${since.id}" is sent`,
          `set the branch's "timeoutDays" to 0 to check once when the wait ends, or remove the wait; to give more time, raise "timeoutDays" instead`,
        ),
      );
    }
  }
  return problems;
}
