/** A ruleset with every kind of attribute, for the attribute overlay's tests (dynamo-store.ts). */
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';

export const overlayRuleset = loadRulesetOrThrow({
  'rules/tiers.json': JSON.stringify({
    timezone: 'UTC',
    tiers: [
      { id: 'visitor', name: 'Visitor', graceDays: 0, minTenureDays: 0, downgrade: 'one-step' },
      { id: 'member', name: 'Member', graceDays: 0, minTenureDays: 0, downgrade: 'one-step' },
    ],
    metrics: { lessons7: { kind: 'count', windowDays: 7, eventTypes: ['lesson.completed'] } },
    attributes: {
      goal: { type: 'string', event: 'questionnaire.answered', property: 'goal' },
      level: { type: 'number', event: 'questionnaire.answered', property: 'level' },
      interests: { type: 'tags', event: 'questionnaire.answered', property: 'interests' },
      daysSinceSignup: { type: 'days-since', event: 'user.signed_up' },
    },
  }),
  'rules/member.json': JSON.stringify({
    // A tier change now and then (a profile write that folds the overlays it read), not on every event.
    conditions: { all: [{ fact: 'lessons7', operator: 'greaterThanInclusive', value: 12 }] },
    event: { type: 'qualifies', params: { tier: 'member' } },
  }),
});
