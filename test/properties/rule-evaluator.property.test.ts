/**
 * The compiled rule evaluator (functions/core/rule-evaluator.ts) must give json-rules-engine's verdict, always: on
 * random condition trees (all/any/not, every operator Strata allows, paths, comparisons with another fact) over
 * random facts (missing, null, numbers, numeric and other text, lists, objects), and on every rule of every shipped
 * and fixture ruleset. Whatever it cannot compile it must say so (the caller then runs the engine), and where it
 * throws the caller asks the engine too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Facts } from '../../functions/core/facts.js';
import { compileRuleConditions } from '../../functions/core/rule-evaluator.js';
import { createSingleRuleEngines, loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { KNOWN_OPERATORS, type RuleDefinition } from '../../functions/core/ruleset-schema.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { testRuleset } from '../helpers/fixtures.js';

const FACT_NAMES = ['a', 'b', 'c', 'profile', 'tags'];
const PATHS = ['city', 'address.city', '$.city', 'level', 'missing.deep'];

/** Values a fact, a path's end or a condition's value may hold: near the thresholds, and text that parseFloat half-reads. */
const scalar = fc.oneof(
  fc.integer({ min: -3, max: 12 }),
  fc.constantFrom(0, 0.5, 2.5, 999.99, Number.NaN),
  fc.constantFrom('', '3', '12abc', 'abc', 'data', 'design', 'Berlin', ' 7 '),
  fc.boolean(),
  // Missing and null facts are where Strata's operators differ from the engine's defaults: drawn often.
  { weight: 3, arbitrary: fc.constant(null) },
);
const list = fc.array(fc.oneof(scalar, fc.constantFrom('data', 'design')), { maxLength: 4 });
const object = fc.record(
  { city: scalar, level: scalar, address: fc.record({ city: scalar }, { requiredKeys: [], noNullPrototype: true }) },
  { requiredKeys: [], noNullPrototype: true },
);
const factValue = fc.oneof(scalar, list, object, fc.constant(undefined));

const facts: fc.Arbitrary<Facts> = fc
  .record(Object.fromEntries(FACT_NAMES.map((name) => [name, factValue])), { requiredKeys: [], noNullPrototype: true })
  .map((record) => record as unknown as Facts);

/** A condition value: a plain value, a list, or another fact (with or without a path). */
const conditionValue = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: list },
  { weight: 1, arbitrary: fc.record({ fact: fc.constantFrom(...FACT_NAMES) }, { noNullPrototype: true }) },
  { weight: 1, arbitrary: fc.record({ fact: fc.constantFrom(...FACT_NAMES), path: fc.constantFrom(...PATHS) }, { noNullPrototype: true }) },
);

const leaf = fc.record(
  {
    fact: fc.constantFrom(...FACT_NAMES, 'neverSet'),
    operator: fc.constantFrom(...KNOWN_OPERATORS),
    value: conditionValue,
    path: fc.constantFrom(...PATHS),
    priority: fc.integer({ min: 1, max: 3 }),
  },
  { requiredKeys: ['fact', 'operator', 'value'], noNullPrototype: true },
);

const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: fc.record({ all: fc.array(tie('tree'), { maxLength: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ any: fc.array(tie('tree'), { maxLength: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ not: tie('tree') }) },
  ),
}));
const topLevel = fc.oneof(
  fc.record({ all: fc.array(tree, { maxLength: 4 }) }),
  fc.record({ any: fc.array(tree, { maxLength: 4 }) }),
  fc.record({ not: tree }),
);

/** The rule on an engine exactly as rulesets register it (Strata's operators and path resolver). */
function engineFor(conditions: unknown) {
  const [single] = createSingleRuleEngines({ t: [{ conditions } as RuleDefinition] });
  return single!.engine;
}

async function engineVerdict(conditions: unknown, values: Facts): Promise<boolean | 'rejected'> {
  try {
    const run = await engineFor(conditions).run(structuredClone(values));
    return run.events.length > 0;
  } catch {
    return 'rejected';
  }
}

function compiledVerdict(conditions: unknown, values: Facts): boolean | 'not compiled' | 'threw' {
  const compiled = compileRuleConditions(conditions, engineFor(conditions));
  if (!compiled) return 'not compiled';
  try {
    return Boolean(compiled(values));
  } catch {
    return 'threw';
  }
}

describe('the compiled rule evaluator', () => {
  it("gives json-rules-engine's verdict on random conditions and facts", async () => {
    const verdicts = { passed: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(topLevel, fc.array(facts, { minLength: 1, maxLength: 6 }), async (conditions, factSets) => {
        for (const values of factSets) {
          const compiled = compiledVerdict(conditions, values);
          // Everything generated here is within what the compiler covers, and nothing in it can throw.
          expect(compiled).not.toBe('not compiled');
          expect(compiled).not.toBe('threw');
          expect(compiled).toBe(await engineVerdict(conditions, values));
          verdicts[compiled ? 'passed' : 'failed']++;
        }
      }),
      { numRuns: 1000 },
    );
    // Both verdicts are common, or the comparison would prove little.
    expect(Math.min(verdicts.passed, verdicts.failed)).toBeGreaterThan(100);
  });

  it('leaves to the engine what it cannot reproduce', () => {
    const engine = engineFor({ all: [] });
    // A shared-condition reference, an operator the engine does not know, a node that mixes shapes.
    expect(compileRuleConditions({ all: [{ condition: 'shared' }] }, engine)).toBeUndefined();
    expect(compileRuleConditions({ all: [{ fact: 'a', operator: 'matches', value: 1 }] }, engine)).toBeUndefined();
    expect(compileRuleConditions({ all: [{ fact: 'a', operator: 'equal', value: 1, any: [] }] }, engine)).toBeUndefined();
    expect(compileRuleConditions({ all: [], any: [] }, engine)).toBeUndefined();
    expect(compileRuleConditions({ all: [{ fact: '__proto__', operator: 'equal', value: 1 }] }, engine)).toBeUndefined();
    expect(compileRuleConditions({ all: [{ fact: 'a', operator: 'equal' }] }, engine)).toBeUndefined();
  });

  it('judges by the engine where the engine would reject the run', async () => {
    // parseFloat cannot read an object without a prototype: the engine's numeric operator throws, and so does this.
    const conditions = { all: [{ fact: 'a', operator: 'greaterThan', value: 1 }] };
    const values = { a: Object.create(null) } as unknown as Facts;
    expect(compiledVerdict(conditions, values)).toBe('threw');
    await expect(engineFor(conditions).run(values)).rejects.toThrow(TypeError);
  });

  for (const [name, load] of [
    ['the shipped rules', async () => loadRulesetOrThrow(await readProjectFiles('.'))],
    ['test/fixtures/stricter', async () => loadRulesetOrThrow(await readProjectFiles('test/fixtures/stricter'))],
    ['the test helpers’ ruleset', async () => testRuleset()],
  ] as const) {
    it(`compiles every rule of ${name} and agrees with the engine on random facts`, async () => {
      const ruleset = await load();
      const names = [...new Set([...ruleset.metrics.map((metric) => metric.name), ...Object.keys(ruleset.attributes)])];
      const rulesetFacts = fc.record(Object.fromEntries(names.map((n) => [n, fc.oneof(scalar, list)])), {
        requiredKeys: [],
        noNullPrototype: true,
      }) as fc.Arbitrary<Facts>;
      const singles = createSingleRuleEngines(ruleset.rules);
      expect(singles.length).toBeGreaterThan(0);
      for (const { rule, engine } of singles) {
        const compiled = compileRuleConditions(rule.conditions, engine);
        expect(compiled, JSON.stringify(rule.conditions)).toBeDefined();
        await fc.assert(
          fc.asyncProperty(rulesetFacts, async (values) => {
            const run = await engine.run(structuredClone(values));
            expect(Boolean(compiled!(values))).toBe(run.events.length > 0);
          }),
          { numRuns: 150 },
        );
      }
    });
  }
});
