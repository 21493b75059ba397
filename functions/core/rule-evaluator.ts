/**
 * A rule's verdict without json-rules-engine's machinery: the condition tree compiled once into plain functions.
 *
 * json-rules-engine builds an almanac, clones the rule's conditions into a result tree and settles a promise per
 * condition on every run (about 100 µs for a small rule, and most of a cold replay's garbage). The verdict itself
 * is a few comparisons. This module reproduces exactly what the engine computes for a verdict:
 * - a fact's value is the run's fact of that name (undefined when it has none: the engines allow undefined facts);
 * - a `path` reads into an object-valued fact with the engine's own path resolver, and leaves any other value as it
 *   is;
 * - a `{"fact": name}` value is that fact's value (with its own `path`);
 * - each leaf is judged by the engine's own registered operator object (so Strata's safe operators and the built-in
 *   ones are the very same code), and `all`/`any`/`not` combine results as the engine does, including how a lone
 *   condition's raw result passes through and where `=== true` is applied.
 * What it cannot reproduce it does not compile (shared-condition references, unknown operators, nodes that mix
 * shapes), and then the caller runs json-rules-engine. Every leaf is evaluated, never short-circuited, so that a
 * leaf that would throw in the engine throws here too (the caller then asks the engine, which decides). It is
 * proven equal to json-rules-engine by test/properties/rule-evaluator.property.test.ts. Explanations (condition
 * results) still come from json-rules-engine; this gives only the verdict.
 */
import type { Engine } from 'json-rules-engine';
import type { Facts } from './facts.js';
import { FORBIDDEN_KEYS } from './ruleset-schema.js';

/** A rule's verdict on a set of facts: truthy when the rule passes, as the engine reads `ruleResult.result`. */
export type CompiledRule = (facts: Facts) => unknown;

/** One of the engine's operators: `evaluate` is the validator and the comparison, as the engine calls it. */
interface EngineOperator {
  evaluate(factValue: unknown, compareTo: unknown): unknown;
}

/** What the compiler reads of an engine: its typings leave out the operator map and the path resolver it runs with. */
interface EngineInternals {
  operators?: { get?: (name: string) => unknown };
  pathResolver?: unknown;
}

function operatorOf(engine: Engine, name: string): EngineOperator | undefined {
  const { operators } = engine as unknown as EngineInternals;
  if (typeof operators?.get !== 'function') return undefined;
  const operator = operators.get(name) as EngineOperator | null | undefined;
  return operator && typeof operator.evaluate === 'function' ? operator : undefined;
}

type PathResolver = (value: unknown, path: string) => unknown;

/** The resolver the engine's almanac uses; without one it would use JSONPath, which this compiler does not do. */
function pathResolverOf(engine: Engine): PathResolver | undefined {
  const { pathResolver } = engine as unknown as EngineInternals;
  return typeof pathResolver === 'function' ? (pathResolver as PathResolver) : undefined;
}

type Evaluate = (facts: Facts) => unknown;

const LEAF_KEYS = new Set(['fact', 'operator', 'value', 'path', 'params', 'name', 'priority']);
const GROUP_KEYS = new Set(['all', 'any', 'not', 'name', 'priority']);

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The engine's almanac.factValue for a constant fact: the fact's value, then the path into an object. */
function factReader(fact: unknown, path: unknown, engine: Engine): Evaluate | undefined {
  // The engine refuses a fact named "" outright; that, and the reserved names, are left to it.
  if (typeof fact !== 'string' || fact === '' || FORBIDDEN_KEYS.has(fact)) return undefined;
  if (path !== undefined && typeof path !== 'string') return undefined;
  const read = (facts: Facts): unknown => (Object.hasOwn(facts, fact) ? facts[fact] : undefined);
  if (!path) return read;
  const resolve = pathResolverOf(engine);
  if (!resolve) return undefined;
  return (facts) => {
    const value = read(facts);
    return value !== null && typeof value === 'object' ? resolve(value, path) : value;
  };
}

function compileLeaf(node: Record<string, unknown>, engine: Engine): Evaluate | undefined {
  if (!Object.keys(node).every((key) => LEAF_KEYS.has(key)) || !Object.hasOwn(node, 'value')) return undefined;
  if (typeof node['operator'] !== 'string') return undefined;
  const operator = operatorOf(engine, node['operator']);
  const left = factReader(node['fact'], node['path'], engine);
  if (!operator || !left) return undefined;
  const value = node['value'];
  // The engine's almanac.getValue: an object with a `fact` names another fact to compare with.
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, 'fact')) {
    const other = value as Record<string, unknown>;
    const right = factReader(other['fact'], other['path'], engine);
    if (!right) return undefined;
    return (facts) => operator.evaluate(left(facts), right(facts));
  }
  return (facts) => operator.evaluate(left(facts), value);
}

/**
 * The engine's prioritizeAndRun for `all` and `any`: no conditions pass; a lone condition's raw result is passed on;
 * otherwise every/some of the results `=== true`.
 */
function compileGroup(children: Evaluate[], every: boolean): Evaluate {
  if (children.length === 0) return () => true;
  if (children.length === 1) return children[0]!;
  return (facts) => {
    // Every child runs (no short circuit), so that whatever would throw in the engine throws here too.
    let passes = every;
    for (const child of children) {
      const result = child(facts) === true;
      passes = every ? passes && result : passes || result;
    }
    return passes;
  };
}

/** A condition as the engine's evaluateCondition returns it: a group's result is `=== true`, a leaf's is raw. */
function compileCondition(node: unknown, engine: Engine, depth: number): Evaluate | undefined {
  if (!isRecord(node) || depth > 64) return undefined;
  const group = groupOf(node);
  if (group === null) return undefined;
  if (group === undefined) return compileLeaf(node, engine);
  const combined = compileBoolean(node, group, engine, depth);
  return combined && ((facts) => combined(facts) === true);
}

/** Which of all/any/not a node is (undefined for a leaf, null for a shape the engine would read differently). */
function groupOf(node: Record<string, unknown>): 'all' | 'any' | 'not' | undefined | null {
  const groups = (['any', 'all', 'not'] as const).filter((key) => Object.hasOwn(node, key));
  if (groups.length === 0) return Object.hasOwn(node, 'condition') ? null : undefined;
  if (groups.length > 1 || !Object.keys(node).every((key) => GROUP_KEYS.has(key))) return null;
  return groups[0];
}

/** A group's combined result before `=== true`: what the engine's all/any/not return. */
function compileBoolean(node: Record<string, unknown>, group: 'all' | 'any' | 'not', engine: Engine, depth: number): Evaluate | undefined {
  if (group === 'not') {
    const child = compileCondition(node['not'], engine, depth + 1);
    return child && ((facts) => !child(facts));
  }
  const list = node[group];
  if (!Array.isArray(list)) return undefined;
  const children: Evaluate[] = [];
  for (const child of list) {
    const compiled = compileCondition(child, engine, depth + 1);
    if (!compiled) return undefined;
    children.push(compiled);
  }
  return compileGroup(children, group === 'all');
}

/**
 * A rule's conditions compiled against the engine that would run them (its operators), or undefined when some part
 * of them is beyond this compiler: the caller then runs json-rules-engine.
 */
export function compileRuleConditions(conditions: unknown, engine: Engine): CompiledRule | undefined {
  if (!isRecord(conditions)) return undefined;
  const group = groupOf(conditions);
  // The rule's top level is run by the engine's any/all/not directly, without evaluateCondition's `=== true`.
  if (!group) return undefined;
  return compileBoolean(conditions, group, engine, 0);
}
