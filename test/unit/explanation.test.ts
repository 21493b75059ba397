import { describe, expect, it } from 'vitest';
import { decideTier } from '../../functions/core/decide.js';
import { factsAt } from '../../functions/core/metrics.js';
import { qualify } from '../../functions/core/qualify.js';
import { newProfile } from '../../functions/core/state.js';
import { testRuleset, testRules } from '../helpers/fixtures.js';

const ruleset = testRuleset();

describe('explanations', () => {
  it('records the rule, each condition with its fact value and result, the ruleset version and the time', async () => {
    const buckets = [
      { date: '2026-03-01', counters: { [ruleset.metrics.find((m) => m.name === 'days7')!.countCounter]: 1 } },
      { date: '2026-03-02', counters: { [ruleset.metrics.find((m) => m.name === 'days7')!.countCounter]: 1 } },
    ];
    const now = new Date('2026-03-02T10:00:00Z');
    const profile = { ...newProfile('u1', 'visitor', new Date('2026-03-01T10:00:00Z')), version: 1 };
    const qualification = await qualify(ruleset, factsAt(ruleset, buckets, {}, '2026-03-02'));
    const decision = await decideTier({ ruleset, profile, qualification, now, trigger: 'event', eventId: 'e-2' });

    expect(decision.explanation).toMatchObject({
      at: '2026-03-02T10:00:00.000Z',
      rulesetVersion: ruleset.version,
      trigger: 'event',
      eventId: 'e-2',
      fromTier: 'visitor',
      toTier: 'member',
      qualifiedTier: 'member',
      transitions: [{ kind: 'promoted', fromTier: 'visitor', toTier: 'member' }],
    });
    expect(decision.explanation!.rules).toEqual([
      {
        tier: 'member',
        rule: 'member#0',
        passed: true,
        conditions: {
          any: [
            { fact: 'days7', operator: 'greaterThanInclusive', value: 2, factValue: 2, result: true },
            {
              all: [
                { fact: 'daysSinceSignup', operator: 'greaterThanInclusive', value: 10, factValue: null, result: false },
                { fact: 'plan', operator: 'equal', value: 'pro', factValue: null, result: false },
              ],
              result: false,
            },
          ],
          result: true,
        },
      },
      {
        tier: 'active',
        rule: 'active#0',
        passed: false,
        conditions: { all: [{ fact: 'days7', operator: 'greaterThanInclusive', value: 4, factValue: 2, result: false }], result: false },
      },
      {
        tier: 'core',
        rule: 'core#0',
        passed: false,
        conditions: { all: [{ fact: 'spend30', operator: 'greaterThanInclusive', value: 100, factValue: 0, result: false }], result: false },
      },
    ]);
    expect(ruleset.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('the ruleset version is a content hash: any rule change changes it', () => {
    const changed = testRules();
    (changed['active'] as { conditions: { all: Array<{ value: number }> } }).conditions.all[0]!.value = 5;
    expect(testRuleset({ rules: changed }).version).not.toBe(ruleset.version);
    expect(testRuleset().version).toBe(ruleset.version);
  });
});

describe('missing facts and negative operators', () => {
  const rules = {
    ...testRules(),
    member: { conditions: { all: [{ fact: 'plan', operator: 'notEqual', value: 'free' }] }, event: { type: 'qualifies' } },
    active: {
      conditions: {
        all: [
          { fact: 'plan', operator: 'notIn', value: ['free', 'trial'] },
          { fact: 'days7', operator: 'greaterThan', value: 100 },
        ],
      },
      event: { type: 'qualifies' },
    },
  };
  const negative = testRuleset({ rules });

  it('a user who never answered is not qualified by notEqual or notIn', async () => {
    expect((await qualify(negative, factsAt(negative, [], {}, '2026-03-01'))).tier).toBe('visitor');
  });

  it('an answer that differs does qualify', async () => {
    const attributes = { plan: { value: 'pro', at: '2026-03-01T00:00:00Z', eventId: 'e1' } };
    expect((await qualify(negative, factsAt(negative, [], attributes, '2026-03-01'))).tier).toBe('member');
  });
});
