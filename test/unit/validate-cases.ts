/**
 * Broken projects for the validate tests: each case breaks one thing in the test ladder.
 */
import type { ProjectFiles } from '../../functions/core/ruleset.js';
import { testProjectFiles, testRules, testTiersFile } from '../helpers/fixtures.js';

type Json = Record<string, any>;

const withTiers = (edit: (tiers: Json) => void): ProjectFiles => {
  const tiers = testTiersFile() as Json;
  edit(tiers);
  return testProjectFiles({ tiers });
};

const withRule = (tier: string, edit: (rule: Json) => void): ProjectFiles => {
  const rules = testRules() as Json;
  edit(rules[tier]);
  return testProjectFiles({ rules });
};

export const brokenProjects: Array<{ name: string; files: ProjectFiles; expected: string[] }> = [
  {
    name: 'truncated JSON',
    files: { ...testProjectFiles(), 'rules/member.json': '{\n  "conditions": {\n    "all": [\n' },
    expected: [
      'rules/member.json:4:1: /: invalid JSON: unexpected end of file; expected a value (fix the JSON syntax; an editor with JSON support shows the spot)',
    ],
  },
  {
    name: 'a trailing comma',
    files: {
      ...testProjectFiles(),
      'rules/active.json':
        '{\n  "conditions": { "all": [ { "fact": "days7", "operator": "equal", "value": 1 }, ] },\n  "event": { "type": "qualifies" }\n}',
    },
    expected: [
      "rules/active.json:2:82: /: invalid JSON: a trailing comma before ']' is not allowed in JSON (fix the JSON syntax; an editor with JSON support shows the spot)",
    ],
  },
  {
    name: 'an unknown fact',
    files: withRule('active', (r) => (r.conditions.all[0].fact = 'days_7')),
    expected: ['rules/active.json: /conditions/all/0/fact: unknown fact "days_7" (did you mean "days7"?)'],
  },
  {
    name: 'a fact declared nowhere',
    files: withRule('active', (r) => (r.conditions.all[0].fact = 'karma')),
    expected: ['rules/active.json: /conditions/all/0/fact: unknown fact "karma" (declare it under "metrics" or "attributes" in rules/tiers.json)'],
  },
  {
    name: 'a misspelled operator',
    files: withRule('active', (r) => (r.conditions.all[0].operator = 'greaterThen')),
    expected: ['rules/active.json: /conditions/all/0/operator: unknown operator "greaterThen" (did you mean "greaterThan"?)'],
  },
  {
    name: 'a path with a filter expression',
    files: withRule('active', (r) => (r.conditions.all[0].path = '$.items[?(@.price > 10)]')),
    expected: [
      'rules/active.json: /conditions/all/0/path: "$.items[?(@.price > 10)]" is not a plain dotted path (use names joined by dots, like "address.city"; JSONPath filters, wildcards and scripts are not allowed)',
    ],
  },
  {
    name: 'a wrong type for a numeric operator',
    files: withRule('active', (r) => (r.conditions.all[0].value = '4')),
    expected: ['rules/active.json: /conditions/all/0/value: "greaterThanInclusive" needs a number, found string "4" (write 4 without quotes)'],
  },
  {
    name: 'a missing tier file',
    files: (() => {
      const f = testProjectFiles();
      delete f['rules/core.json'];
      return f;
    })(),
    expected: [
      'rules/tiers.json: /tiers/3/id: tier "core" has no rule file rules/core.json (create rules/core.json with the conditions that qualify a user for Core)',
    ],
  },
  {
    name: 'duplicate tier ids',
    files: withTiers((t) => (t.tiers[2].id = 'member')),
    expected: [
      'rules/tiers.json: /tiers/2/id: duplicate tier id "member" (also at /tiers/1) (each tier needs its own id)',
      'rules/active.json: /: no tier "active" in rules/tiers.json (rename the file to rules/<tier id>.json or add the tier to the ladder)',
    ],
  },
  {
    name: 'a rule file for no tier',
    files: { ...testProjectFiles(), 'rules/gold.json': JSON.stringify(testRules()['core']) },
    expected: ['rules/gold.json: /: no tier "gold" in rules/tiers.json (rename the file to rules/<tier id>.json or add the tier to the ladder)'],
  },
  {
    name: 'a rule file for the base tier',
    files: { ...testProjectFiles(), 'rules/visitor.json': JSON.stringify(testRules()['member']) },
    expected: [
      'rules/visitor.json: /: "visitor" is the base tier, which everyone starts in, so it has no rule (delete this file, or put another tier first in the ladder)',
    ],
  },
  {
    name: 'an unknown property in a tier',
    files: withTiers((t) => (t.tiers[1].graceDay = 3)),
    expected: ['rules/tiers.json: /tiers/1/graceDay: unknown property "graceDay" (did you mean "graceDays"?)'],
  },
  {
    name: 'a bad downgrade value',
    files: withTiers((t) => (t.tiers[1].downgrade = 'one_step')),
    expected: ['rules/tiers.json: /tiers/1/downgrade: "one_step" is not allowed here (did you mean "one-step"?)'],
  },
  {
    name: 'a negative grace period',
    files: withTiers((t) => (t.tiers[1].graceDays = -1)),
    expected: [
      'rules/tiers.json: /tiers/1/graceDays: must be at least 0, found -1 (a whole number of days from 0 to 365; 0 moves the user down at the first review after they stop qualifying)',
    ],
  },
  {
    name: 'an unknown metric kind',
    files: withTiers((t) => (t.metrics.days7.kind = 'distinct')),
    expected: ['rules/tiers.json: /metrics/days7/kind: "distinct" is not a known kind (use one of: count, sum, distinct-days, last)'],
  },
  {
    name: 'a sum metric without a property',
    files: withTiers((t) => delete t.metrics.spend30.property),
    expected: ['rules/tiers.json: /metrics/spend30/property: is required (add a string)'],
  },
  {
    name: 'an unknown time zone',
    files: withTiers((t) => (t.timezone = 'Asia/Beijing')),
    expected: ['rules/tiers.json: /timezone: "Asia/Beijing" is not a known time zone (use an IANA name such as "Asia/Shanghai" or "UTC")'],
  },
  {
    name: 'a missing journey file',
    files: withTiers((t) => (t.tiers[1].journey = 'journeys/member.json')),
    expected: [
      'rules/tiers.json: /tiers/1/journey: journey file journeys/member.json not found (create it, or fix the path, which is relative to the project directory)',
    ],
  },
  {
    name: 'a tier rule naming another tier',
    files: withRule('active', (r) => (r.event.params.tier = 'core')),
    expected: [
      'rules/active.json: /event/params/tier: names tier "core" but the file is for "active" (set it to "active" or move the rule to rules/core.json)',
    ],
  },
  {
    name: 'in with a single value',
    files: withRule('active', (r) => (r.conditions.all[0] = { fact: 'plan', operator: 'in', value: 'pro' })),
    expected: ['rules/active.json: /conditions/all/0/value: "in" needs a list of values, found string "pro" (write ["pro"])'],
  },
  {
    name: 'contains on a single-value fact',
    files: withRule('active', (r) => (r.conditions.all[0] = { fact: 'plan', operator: 'contains', value: 'pro' })),
    expected: [
      'rules/active.json: /conditions/all/0/operator: "contains" looks inside a list, but fact "plan" is a string (use "equal" or "in" for single values)',
    ],
  },
  {
    name: 'a __proto__ fact',
    files: withRule('active', (r) => (r.conditions.all[0].fact = '__proto__')),
    expected: [
      'rules/active.json: /conditions/all/0/fact: "__proto__" is a reserved name and can never be a fact (name a metric or attribute from rules/tiers.json)',
    ],
  },
  {
    name: 'a constructor path',
    files: withRule('active', (r) => (r.conditions.all[0].path = 'constructor.prototype')),
    expected: [
      'rules/active.json: /conditions/all/0/path: "constructor.prototype" is not a plain dotted path (use names joined by dots, like "address.city"; JSONPath filters, wildcards and scripts are not allowed)',
    ],
  },
  {
    name: 'an empty all',
    files: withRule('active', (r) => (r.conditions = { all: [] })),
    expected: ['rules/active.json: /conditions/all: "all" has no conditions (add at least one condition)'],
  },
  {
    name: 'a condition mixing all and fact',
    files: withRule('active', (r) => (r.conditions.all[0].all = [])),
    expected: [
      'rules/active.json: /conditions/all/0: a condition mixes all and fact (use either {"all": [...]}, {"any": [...]}, {"not": {...}} or {"fact", "operator", "value"})',
    ],
  },
  {
    name: 'a shared condition reference',
    files: withRule('active', (r) => (r.conditions.all[0] = { condition: 'isActive' })),
    expected: ['rules/active.json: /conditions/all/0/condition: shared conditions are not supported (write the conditions inline)'],
  },
  {
    name: 'a ladder listed in the wrong order',
    files: testProjectFiles({
      rules: {
        ...testRules(),
        member: { conditions: { all: [{ fact: 'days7', operator: 'greaterThanInclusive', value: 4 }] }, event: { type: 'qualifies' } },
        active: { conditions: { all: [{ fact: 'days7', operator: 'greaterThanInclusive', value: 2 }] }, event: { type: 'qualifies' } },
      },
    }),
    expected: [
      'rules/tiers.json: /tiers/2: tier "active" asks less than the tier below it, "member": days7 from 2 here, from 4 there (list the ladder lowest first, or raise the higher tier\'s thresholds)',
    ],
  },
  {
    name: 'a rule with no event',
    files: withRule('active', (r) => delete r.event),
    expected: ['rules/active.json: /event: is required (add an object)'],
  },
  {
    name: 'a ladder with one tier',
    files: withTiers((t) => (t.tiers = t.tiers.slice(0, 1))),
    expected: ['rules/tiers.json: /tiers: needs at least 2 items (list 2 to 7 tiers, lowest first)'],
  },
  {
    name: 'a metric and an attribute with the same name',
    files: withTiers((t) => (t.attributes.days7 = { type: 'string', event: 'x.y', property: 'z' })),
    expected: ['rules/tiers.json: /attributes/days7: "days7" is both a metric and an attribute (rename one of them)'],
  },
  {
    name: 'deeply nested conditions',
    files: withRule('active', (r) => {
      let node: Json = { fact: 'days7', operator: 'equal', value: 1 };
      for (let i = 0; i < 12; i++) node = { not: node };
      r.conditions = { all: [node] };
    }),
    expected: [
      'rules/active.json: /conditions/all/0/not/not/not/not/not/not/not: conditions are nested deeper than 8 levels (flatten the rule with all/any)',
    ],
  },
  {
    name: 'a symbol for an operator',
    files: withRule('active', (r) => (r.conditions.all[0].operator = '>=')),
    expected: [
      'rules/active.json: /conditions/all/0/operator: unknown operator ">=" (json-rules-engine names its operators: write "greaterThanInclusive" for >=)',
    ],
  },
  {
    name: 'a negative window',
    files: withTiers((t) => (t.metrics.days7.windowDays = -3)),
    expected: ['rules/tiers.json: /metrics/days7/windowDays: must be at least 1, found -3 (a whole number of days from 1 to 400, today included)'],
  },
  {
    name: 'a fraction of a day',
    files: withTiers((t) => (t.tiers[1].graceDays = 2.5)),
    expected: [
      'rules/tiers.json: /tiers/1/graceDays: must be a whole number, found 2.5 (a whole number of days from 0 to 365; 0 moves the user down at the first review after they stop qualifying)',
    ],
  },
];
