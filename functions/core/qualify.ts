/**
 * Qualification: which tier the rules put a user in, with the per-condition results that explain it.
 * A user qualifies for the highest tier whose rule passes; the base tier needs no rule.
 */
import type { RuleResult } from 'json-rules-engine';
import type { ConditionResult, Facts, FactValue, RuleOutcome } from './facts.js';
import { canonicalJson } from './hash.js';
import { type CompiledRule, compileRuleConditions } from './rule-evaluator.js';
import { type Ruleset, type SingleRuleEngine, createSingleRuleEngines } from './ruleset.js';

export type { ConditionResult, RuleOutcome } from './facts.js';

export interface Qualification {
  tier: string;
  facts: Facts;
  /**
   * Each rule's outcome with its condition results, as json-rules-engine gives them: run only when a decision is
   * explained (most decisions change nothing and store no explanation).
   */
  explain(): Promise<RuleOutcome[]>;
}

function toConditionResult(node: Record<string, unknown>): ConditionResult {
  if (Array.isArray(node['all']))
    return { all: node['all'].map((c) => toConditionResult(c as Record<string, unknown>)), result: node['result'] as boolean | undefined };
  if (Array.isArray(node['any']))
    return { any: node['any'].map((c) => toConditionResult(c as Record<string, unknown>)), result: node['result'] as boolean | undefined };
  if (node['not'] && typeof node['not'] === 'object')
    return { not: toConditionResult(node['not'] as Record<string, unknown>), result: node['result'] as boolean | undefined };
  const result: ConditionResult = {
    fact: node['fact'] as string,
    operator: node['operator'] as string,
    value: node['value'],
    factValue: (node['factResult'] ?? null) as FactValue,
    result: node['result'] as boolean,
  };
  if (typeof node['path'] === 'string') result.path = node['path'];
  return result;
}

function ruleOutcomes(ruleset: Ruleset, ruleResults: RuleResult[]): RuleOutcome[] {
  const outcomes = ruleResults.map((result): RuleOutcome => {
    const params = (result.event?.params ?? {}) as { tier: string; rule: string };
    return {
      tier: params.tier,
      rule: params.rule,
      passed: result.result,
      // The engine leaves the top-level group's result unset; it is the rule's own result.
      conditions: { ...toConditionResult(result.conditions as unknown as Record<string, unknown>), result: result.result },
    };
  });
  // Engine order depends on priorities and timing; sort so that stored explanations are deterministic.
  const order = new Map(ruleset.tiers.map((t, i) => [t.id, i]));
  return outcomes.sort((a, b) => order.get(a.tier)! - order.get(b.tier)! || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0));
}

type EngineRun = Pick<Awaited<ReturnType<Ruleset['engine']['run']>>, 'events' | 'results' | 'failureResults'>;

/** Bounded, so that a long replay over many distinct fact sets cannot grow it without end. */
const MAX_REMEMBERED_RUNS = 50_000;

/** One rule on its own engine, the facts it reads, and its verdict on each distinct set of them. */
interface RuleVerdicts {
  engine: SingleRuleEngine['engine'];
  facts: string[];
  runs: Map<string, RememberedRun>;
  /** The rule's verdict without the engine, where rule-evaluator.ts compiles it (proven equal to the engine's). */
  compiled: CompiledRule | undefined;
  /** The rule's tier's place on the ladder. */
  tierIndex: number;
}

/** A run, and its result once it is in: most calls find it there and need not wait for the promise. */
interface RememberedRun {
  run: Promise<EngineRun>;
  result?: EngineRun;
}

const verdictsByEngine = new WeakMap<Ruleset['engine'], RuleVerdicts[]>();

/** The facts a rule reads (directly, or as the value another fact is compared with), in a stable order. */
function factsReadBy(conditions: unknown): string[] {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(visit);
    const record = node as Record<string, unknown>;
    if (typeof record['fact'] === 'string') found.add(record['fact']);
    for (const value of Object.values(record)) visit(value);
  };
  visit(conditions);
  return [...found].sort();
}

function ruleVerdicts(ruleset: Ruleset): RuleVerdicts[] {
  let verdicts = verdictsByEngine.get(ruleset.engine);
  if (!verdicts) {
    verdicts = createSingleRuleEngines(ruleset.rules).map(({ tier, rule, engine }) => ({
      engine,
      facts: factsReadBy(rule.conditions),
      runs: new Map(),
      compiled: compileRuleConditions(rule.conditions, engine),
      tierIndex: ruleset.tiers.findIndex((t) => t.id === tier),
    }));
    verdictsByEngine.set(ruleset.engine, verdicts);
  }
  return verdicts;
}

/** The values of the facts a rule reads, as canonical JSON: the key of its verdict. */
function verdictKey(names: readonly string[], facts: Facts): string {
  let key = '';
  for (let i = 0; i < names.length; i++) {
    const value = facts[names[i]!] ?? null;
    // A finite number's canonical JSON is its text; written directly, since this runs for every rule and decision.
    key += (i === 0 ? '' : ',') + (typeof value === 'number' && Number.isFinite(value) ? String(value) : canonicalJson(value));
  }
  return key;
}

/** One rule's verdict on these facts: run once per distinct set of the facts it reads. */
function ruleVerdict(verdicts: RuleVerdicts, facts: Facts): RememberedRun {
  const key = verdictKey(verdicts.facts, facts);
  let remembered = verdicts.runs.get(key);
  if (!remembered) {
    const { runs } = verdicts;
    if (runs.size >= MAX_REMEMBERED_RUNS) runs.clear();
    // Only the facts the rule reads go in (a copy, so that the remembered results never share a caller's arrays).
    const own: Facts = {};
    for (const name of verdicts.facts) {
      if (!Object.hasOwn(facts, name)) continue;
      const value = facts[name]!;
      own[name] = typeof value === 'object' && value !== null ? structuredClone(value) : value;
    }
    const entry: RememberedRun = { run: verdicts.engine.run(own) };
    runs.set(key, entry);
    entry.run.then(
      (result) => (entry.result = result),
      // A failed run is not remembered: the next call tries again and sees the error itself.
      () => runs.delete(key),
    );
    remembered = entry;
  }
  return remembered;
}

/**
 * The rules' results from json-rules-engine, with every condition's result. The rules are a pure function of the
 * facts (time-based facts are already numbers of days here), so each rule runs once per distinct set of the facts
 * it reads; a rule never reads another's result, so the results are those of the ruleset's shared engine, rule by
 * rule. json-rules-engine costs about 100 µs a run; a key about 1.
 */
async function runEngine(ruleset: Ruleset, facts: Facts): Promise<EngineRun> {
  const remembered = ruleVerdicts(ruleset).map((rule) => ruleVerdict(rule, facts));
  const runs = remembered.every((entry) => entry.result !== undefined)
    ? remembered.map((entry) => entry.result!)
    : await Promise.all(remembered.map((entry) => entry.run));
  if (runs.length === 1) return runs[0]!;
  const merged: EngineRun = { events: [], results: [], failureResults: [] };
  for (const run of runs) {
    merged.events.push(...run.events);
    merged.results.push(...run.results);
    merged.failureResults.push(...run.failureResults);
  }
  return merged;
}

/** The rule's verdict by its compiled conditions; undefined when only the engine can tell (not compiled, or it threw). */
function compiledVerdict(rule: RuleVerdicts, facts: Facts): boolean | undefined {
  if (!rule.compiled) return undefined;
  try {
    return Boolean(rule.compiled(facts));
  } catch {
    // The engine would reject this run, or give its own verdict where its short circuit skips the failing part.
    return undefined;
  }
}

/**
 * The highest tier whose rule passes; the base tier when none does. Compiled rules judge without the engine (a few
 * comparisons instead of a run that builds and settles a promise per condition); the rest run on it.
 */
async function passingTier(ruleset: Ruleset, facts: Facts): Promise<string> {
  return compiledPassingTier(ruleset, facts) ?? (await passingTierWithEngine(ruleset, facts));
}

/**
 * passingTier where every rule's compiled conditions give its verdict on these facts, found with no wait at all;
 * undefined where some rule needs the engine. Decisions and the review-date search call it first, since most
 * rulesets compile whole and an await on every call costs more than the verdicts.
 */
export function compiledPassingTier(ruleset: Ruleset, facts: Facts): string | undefined {
  let best = 0;
  for (const rule of ruleVerdicts(ruleset)) {
    const passes = compiledVerdict(rule, facts);
    if (passes === undefined) return undefined;
    if (passes && rule.tierIndex > best) best = rule.tierIndex;
  }
  return ruleset.tiers[best]!.id;
}

async function passingTierWithEngine(ruleset: Ruleset, facts: Facts): Promise<string> {
  let best = 0;
  for (const rule of ruleVerdicts(ruleset)) {
    let passes = compiledVerdict(rule, facts);
    if (passes === undefined) {
      const remembered = ruleVerdict(rule, facts);
      passes = (remembered.result ?? (await remembered.run)).events.length > 0;
    }
    if (passes && rule.tierIndex > best) best = rule.tierIndex;
  }
  return ruleset.tiers[best]!.id;
}

/** A class rather than an object with a closure: every decision makes one, and most never explain. */
class RulesQualification implements Qualification {
  readonly #ruleset: Ruleset;
  #explained: Promise<RuleOutcome[]> | undefined;

  constructor(
    ruleset: Ruleset,
    readonly facts: Facts,
    readonly tier: string,
  ) {
    this.#ruleset = ruleset;
  }

  explain(): Promise<RuleOutcome[]> {
    const ruleset = this.#ruleset;
    this.#explained ??= runEngine(ruleset, this.facts).then(({ results, failureResults }) => ruleOutcomes(ruleset, [...results, ...failureResults]));
    return this.#explained;
  }
}

export async function qualify(ruleset: Ruleset, facts: Facts): Promise<Qualification> {
  return new RulesQualification(ruleset, facts, await passingTier(ruleset, facts));
}

/** qualify with no wait, where every rule's compiled conditions decide (compiledPassingTier); else undefined. */
export function qualifyNow(ruleset: Ruleset, facts: Facts): Qualification | undefined {
  const tier = compiledPassingTier(ruleset, facts);
  return tier === undefined ? undefined : new RulesQualification(ruleset, facts, tier);
}

/** Qualification without the explanation, for hot loops such as review-date search. */
export async function qualifiedTier(ruleset: Ruleset, facts: Facts): Promise<string> {
  return passingTier(ruleset, facts);
}
