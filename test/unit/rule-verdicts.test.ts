/**
 * qualify judges each rule by its compiled conditions, and explains with each rule on an engine of its own,
 * remembered by the facts that rule reads (functions/core/qualify.ts). It must give what the ruleset's shared
 * json-rules-engine gives for all the rules at once: the same tier, and for every rule the same verdict with the
 * same condition results, whatever the facts and in whatever order fact sets come (so that a remembered verdict is
 * never one for other facts).
 */
import fc from 'fast-check';
import type { RuleResult } from 'json-rules-engine';
import { describe, expect, it } from 'vitest';
import type { Facts } from '../../functions/core/facts.js';
import { factsAt } from '../../functions/core/metrics.js';
import { compiledPassingTier, qualify, qualifyNow } from '../../functions/core/qualify.js';
import { type Ruleset, loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { readProjectFiles } from '../../functions/local/project-files.js';

/** Each rule's verdict and its leaf conditions' fact values and results, in a stable order. */
interface Verdict {
  tier: string;
  rule: string;
  passed: boolean;
  leaves: unknown[];
}

function leavesOf(node: Record<string, unknown> | undefined): unknown[] {
  if (!node) return [];
  for (const group of ['all', 'any'] as const) {
    if (Array.isArray(node[group])) return (node[group] as Array<Record<string, unknown>>).flatMap(leavesOf);
  }
  if (node['not'] && typeof node['not'] === 'object') return leavesOf(node['not'] as Record<string, unknown>);
  return [[node['fact'], node['operator'], node['value'], node['factResult'] ?? node['factValue'] ?? null, node['result']]];
}

const byTierThenRule = (ruleset: Ruleset) => {
  const order = new Map(ruleset.tiers.map((tier, i) => [tier.id, i]));
  return (a: Verdict, b: Verdict): number => order.get(a.tier)! - order.get(b.tier)! || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0);
};

/** The shared engine's answer, run fresh on every call. */
async function sharedEngineVerdicts(ruleset: Ruleset, facts: Facts): Promise<{ tier: string; verdicts: Verdict[] }> {
  const run = await ruleset.engine.run(structuredClone(facts));
  const tiers = ruleset.tiers.map((tier) => tier.id);
  const best = Math.max(0, ...run.events.map((event) => tiers.indexOf((event.params as { tier: string }).tier)));
  const verdicts = [...run.results, ...run.failureResults].map((result: RuleResult) => ({
    tier: (result.event!.params as { tier: string }).tier,
    rule: (result.event!.params as { rule: string }).rule,
    passed: result.result,
    leaves: leavesOf(result.conditions as unknown as Record<string, unknown>),
  }));
  return { tier: tiers[best]!, verdicts: verdicts.sort(byTierThenRule(ruleset)) };
}

async function ruleset(dir: string): Promise<Ruleset> {
  return loadRulesetOrThrow(await readProjectFiles(dir));
}

/** Facts near the rules' thresholds (where verdicts flip), with the attributes the rules compare as text. */
function factsFor(ruleset: Ruleset): fc.Arbitrary<Facts> {
  const names = [...new Set([...ruleset.metrics.map((metric) => metric.name), ...Object.keys(ruleset.attributes)])];
  const value = fc.oneof(
    fc.integer({ min: 0, max: 20 }),
    fc.constantFrom(0, 1, 2, 3, 5, 6, 10, 12, 998.99, 999, 1000, 2500),
    fc.constant(null),
    fc.constantFrom('career-change', 'upskill', 'hobby'),
    fc.array(fc.constantFrom('data', 'design', 'career-change'), { maxLength: 3 }),
  );
  return fc.record(Object.fromEntries(names.map((name) => [name, value]))) as fc.Arbitrary<Facts>;
}

describe('qualify, rule by rule', () => {
  it('answers with no wait for rulesets whose rules all compile, as the shipped ones do', async () => {
    for (const dir of ['.', 'test/fixtures/stricter']) {
      const rules = await ruleset(dir);
      const facts = factsAt(rules, [{ date: '2026-03-01', counters: {} }], {}, '2026-03-01');
      expect(qualifyNow(rules, facts)?.tier).toBe((await qualify(rules, facts)).tier);
    }
  });

  for (const dir of ['.', 'test/fixtures/stricter']) {
    it(`gives the shared engine's tier and verdicts under ${dir === '.' ? 'the shipped rules' : dir}`, async () => {
      const rules = await ruleset(dir);
      await fc.assert(
        fc.asyncProperty(fc.array(factsFor(rules), { minLength: 1, maxLength: 8 }), async (factSets) => {
          for (const facts of factSets) {
            const qualification = await qualify(rules, facts);
            const expected = await sharedEngineVerdicts(rules, facts);
            expect(qualification.tier).toBe(expected.tier);
            const verdicts = (await qualification.explain()).map((outcome) => ({
              tier: outcome.tier,
              rule: outcome.rule,
              passed: outcome.passed,
              leaves: leavesOf(outcome.conditions as unknown as Record<string, unknown>),
            }));
            expect(verdicts).toEqual(expected.verdicts);
            // The no-wait path that decisions take first: where it answers, the same tier and the same explanation.
            const now = qualifyNow(rules, facts);
            if (now !== undefined) {
              expect(now.tier).toBe(expected.tier);
              expect(compiledPassingTier(rules, facts)).toBe(expected.tier);
              expect(await now.explain()).toEqual(await qualification.explain());
            }
          }
        }),
        { numRuns: 300 },
      );
    });
  }
});
