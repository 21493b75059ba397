/**
 * Override factories for test rulesets (json-rules-engine's fixture style): a small UTC ladder whose numbers are
 * easy to reason about in dated scenarios, and helpers to build events.
 */
import { loadRulesetOrThrow, type ProjectFiles, type Ruleset } from '../../functions/core/ruleset.js';
import type { UserEvent } from '../../functions/core/event.js';

type Json = Record<string, unknown>;

export const testTiers = (overrides: Partial<Record<'visitor' | 'member' | 'active' | 'core', Json>> = {}): Json[] => [
  { id: 'visitor', name: 'Visitor', graceDays: 0, minTenureDays: 0, downgrade: 'one-step', ...overrides.visitor },
  { id: 'member', name: 'Member', graceDays: 7, minTenureDays: 0, downgrade: 'one-step', ...overrides.member },
  { id: 'active', name: 'Active', graceDays: 5, minTenureDays: 10, downgrade: 'one-step', ...overrides.active },
  { id: 'core', name: 'Core', graceDays: 10, minTenureDays: 0, downgrade: 'to-qualified', ...overrides.core },
];

export const testTiersFile = (overrides: Json = {}): Json => ({
  timezone: 'UTC',
  tiers: testTiers(),
  metrics: {
    days7: { kind: 'distinct-days', windowDays: 7 },
    lessons7: { kind: 'count', windowDays: 7, eventTypes: ['content.completed'] },
    spend30: { kind: 'sum', windowDays: 30, eventTypes: ['order.paid'], property: 'amount' },
    lastOrder: { kind: 'last', windowDays: 30, eventTypes: ['order.paid'] },
  },
  attributes: {
    plan: { type: 'string', event: 'questionnaire.answered', property: 'plan' },
    interests: { type: 'tags', event: 'questionnaire.answered', property: 'interests' },
    daysSinceSignup: { type: 'days-since', event: 'user.signed_up' },
  },
  ...overrides,
});

export const testRules = (): Record<string, Json> => ({
  member: {
    conditions: {
      any: [
        { fact: 'days7', operator: 'greaterThanInclusive', value: 2 },
        {
          all: [
            { fact: 'daysSinceSignup', operator: 'greaterThanInclusive', value: 10 },
            { fact: 'plan', operator: 'equal', value: 'pro' },
          ],
        },
      ],
    },
    event: { type: 'qualifies', params: { tier: 'member' } },
  },
  active: {
    conditions: { all: [{ fact: 'days7', operator: 'greaterThanInclusive', value: 4 }] },
    event: { type: 'qualifies', params: { tier: 'active' } },
  },
  core: {
    conditions: { all: [{ fact: 'spend30', operator: 'greaterThanInclusive', value: 100 }] },
    event: { type: 'qualifies', params: { tier: 'core' } },
  },
});

export function testProjectFiles(options: { tiers?: Json; rules?: Record<string, Json>; extra?: ProjectFiles } = {}): ProjectFiles {
  const files: ProjectFiles = { 'rules/tiers.json': JSON.stringify(options.tiers ?? testTiersFile(), null, 2) };
  for (const [tier, rule] of Object.entries(options.rules ?? testRules())) files[`rules/${tier}.json`] = JSON.stringify(rule, null, 2);
  return { ...files, ...options.extra };
}

export function testRuleset(options: Parameters<typeof testProjectFiles>[0] = {}): Ruleset {
  return loadRulesetOrThrow(testProjectFiles(options));
}

let sequence = 0;
export function userEvent(overrides: Partial<UserEvent> & Pick<UserEvent, 'occurredAt'>): UserEvent {
  sequence += 1;
  return { eventId: `evt-${sequence}`, userId: 'u1', type: 'app.opened', properties: {}, ...overrides };
}
