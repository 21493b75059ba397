/**
 * Rule JSON is marketers' input and may be hostile: it must never run code. `loadRuleset` (what `strata validate`,
 * the CDK synth and every handler's cold start run) rejects anything but plain data with a message naming the
 * file, the JSON pointer and what is wrong; and the engine's path resolver never evaluates JSONPath, so a rule that
 * slipped past validation could still run nothing.
 */
import { describe, expect, it } from 'vitest';
import { plainPathResolver } from '../../functions/core/path-resolver.js';
import type { Problem } from '../../functions/core/errors.js';
import { MAX_RULE_FILE_BYTES, loadRuleset } from '../../functions/core/ruleset.js';
import { testProjectFiles, testRules } from '../helpers/fixtures.js';

type Json = Record<string, unknown>;

/** Loads the test project with rules/member.json replaced by `rule` (an object, or raw text). */
function problemsWithMemberRule(rule: Json | string): Problem[] {
  const files = testProjectFiles();
  files['rules/member.json'] = typeof rule === 'string' ? rule : JSON.stringify(rule);
  const result = loadRuleset(files);
  expect(result.ruleset, 'a hostile rule must not produce a ruleset').toBeUndefined();
  return result.problems;
}

const leafRule = (leaf: Json): Json => ({ conditions: { all: [leaf] }, event: { type: 'qualifies', params: { tier: 'member' } } });
const lines = (problems: Problem[]): string[] => problems.map((p) => `${p.file}: ${p.pointer}: ${p.message}`);

describe('rule JSON that could run code is rejected by loadRuleset', () => {
  it.each([
    ['a JSONPath filter', '$.orders[?(@.amount > 100)]'],
    ['a JSONPath script', "$..[?(@.constructor.constructor('return process')().exit())]"],
    ['a recursive descent', '$..amount'],
    ['a wildcard', '$.orders[*].amount'],
    ['a bracket member', "$['constructor']"],
    ['a __proto__ segment', 'profile.__proto__.polluted'],
    ['a constructor segment', 'profile.constructor.prototype'],
  ])('a path with %s', (_label, path) => {
    const problems = problemsWithMemberRule(leafRule({ fact: 'plan', path, operator: 'equal', value: 'pro' }));
    expect(lines(problems)).toContainEqual(`rules/member.json: /conditions/all/0/path: "${path}" is not a plain dotted path`);
    expect(problems.find((p) => p.pointer.endsWith('/path'))?.hint).toMatch(/JSONPath filters, wildcards and scripts are not allowed/);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('a "%s" fact', (fact) => {
    const problems = problemsWithMemberRule(leafRule({ fact, operator: 'equal', value: 1 }));
    expect(lines(problems)).toContainEqual(`rules/member.json: /conditions/all/0/fact: "${fact}" is a reserved name and can never be a fact`);
  });

  it('a "__proto__" key in the rule document itself (as JSON.parse creates it)', () => {
    const text =
      '{"conditions": {"all": [{"fact": "days7", "operator": "equal", "value": 1}]}, "event": {"type": "qualifies"}, "__proto__": {"polluted": true}}';
    const problems = problemsWithMemberRule(text);
    expect(problems.some((p) => p.file === 'rules/member.json' && /__proto__/.test(`${p.pointer} ${p.message}`))).toBe(true);
    expect(({} as Json)['polluted']).toBeUndefined();
  });

  it('a "__proto__" metric in rules/tiers.json', () => {
    const files = testProjectFiles();
    files['rules/tiers.json'] = files['rules/tiers.json']!.replace('"days7":', '"__proto__":');
    const { ruleset, problems } = loadRuleset(files);
    expect(ruleset).toBeUndefined();
    expect(lines(problems)).toContainEqual('rules/tiers.json: /metrics/__proto__: "__proto__" is a reserved name and is not allowed');
  });

  it(`a document larger than ${MAX_RULE_FILE_BYTES / 1024} KiB`, () => {
    const huge = { ...leafRule({ fact: 'days7', operator: 'greaterThanInclusive', value: 2 }), name: 'x'.repeat(MAX_RULE_FILE_BYTES) };
    expect(lines(problemsWithMemberRule(huge))).toContainEqual('rules/member.json: : the file is larger than 64 KiB');
  });

  it('a deeply nested document', () => {
    let conditions: Json = { fact: 'days7', operator: 'greaterThanInclusive', value: 2 };
    for (let i = 0; i < 200; i++) conditions = { not: conditions };
    const problems = problemsWithMemberRule({ conditions, event: { type: 'qualifies' } });
    expect(lines(problems)).toContainEqual('rules/member.json: : the document is nested too deeply');
  });

  it('conditions nested deeper than the engine allows, even in a small document', () => {
    let conditions: Json = { fact: 'days7', operator: 'greaterThanInclusive', value: 2 };
    for (let i = 0; i < 9; i++) conditions = { all: [conditions] };
    expect(problemsWithMemberRule({ conditions, event: { type: 'qualifies' } }).map((p) => p.message)).toContain(
      'conditions are nested deeper than 8 levels',
    );
  });

  it.each(['regex', 'matches', 'script', 'eval'])('an operator named "%s"', (operator) => {
    const problems = problemsWithMemberRule(leafRule({ fact: 'plan', operator, value: '.*' }));
    expect(lines(problems)).toContainEqual(`rules/member.json: /conditions/all/0/operator: unknown operator "${operator}"`);
  });

  it.each([
    ['a $regex value', { $regex: '^pro' }],
    ['a $where value', { $where: 'this.plan == "pro"' }],
    ['a fact reference to __proto__', { fact: '__proto__' }],
  ])('%s', (_label, value) => {
    const problems = problemsWithMemberRule(leafRule({ fact: 'plan', operator: 'equal', value }));
    expect(problems.some((p) => p.file === 'rules/member.json' && p.pointer.startsWith('/conditions/all/0/value'))).toBe(true);
  });

  it('a $regex object inside a list value', () => {
    const problems = problemsWithMemberRule(leafRule({ fact: 'plan', operator: 'in', value: ['pro', { $regex: '.*' }] }));
    expect(lines(problems)).toContainEqual(
      'rules/member.json: /conditions/all/0/value/1: a list value may hold only strings, numbers, booleans and null',
    );
  });

  it('shared conditions and fact params (json-rules-engine features that reach beyond the rule) are refused', () => {
    expect(problemsWithMemberRule(leafRule({ condition: 'someSharedCondition' })).map((p) => p.message)).toContain(
      'shared conditions are not supported',
    );
    expect(
      problemsWithMemberRule(leafRule({ fact: 'plan', operator: 'equal', value: 'pro', params: { script: 'x' } })).map((p) => p.message),
    ).toContain('fact params are not supported: Strata facts take no parameters');
  });

  it('the shipped test rules still load (the checks above are not just rejecting everything)', () => {
    const files = testProjectFiles({ rules: testRules() });
    expect(loadRuleset(files).problems).toEqual([]);
  });
});

describe('the engine path resolver never evaluates JSONPath', () => {
  it('returns undefined for a filter path and touches nothing', () => {
    const touched: string[] = [];
    const spy = new Proxy(
      { amount: 150, orders: [{ amount: 150 }] },
      {
        get(target, property, receiver) {
          touched.push(String(property));
          return Reflect.get(target, property, receiver) as unknown;
        },
      },
    );
    for (const path of [
      '$.orders[?(@.amount > 100)]',
      "$..[?(@.constructor.constructor('globalThis.hacked = 1')())]",
      '$..amount',
      '$.orders[*]',
      'orders.0.amount',
    ]) {
      expect(plainPathResolver(spy, path), path).toBeUndefined();
    }
    expect(touched).toEqual([]);
    expect((globalThis as Json)['hacked']).toBeUndefined();
  });

  it('reads only own properties, so the prototype chain is out of reach', () => {
    expect(plainPathResolver({}, 'constructor')).toBeUndefined();
    expect(plainPathResolver({}, 'toString')).toBeUndefined();
    expect(plainPathResolver({ a: {} }, 'a.hasOwnProperty')).toBeUndefined();
    expect(plainPathResolver({ address: { city: 'Berlin' } }, '$.address.city')).toBe('Berlin');
  });
});
