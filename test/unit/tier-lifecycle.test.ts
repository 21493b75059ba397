import { describe, it } from 'vitest';
import { testRuleset } from '../helpers/fixtures.js';
import { createWorld, type LifecycleStep, runSteps } from '../helpers/lifecycle.js';

/*
 * The test ladder (test/helpers/fixtures.ts), all dates UTC:
 *   member: days7 >= 2, or (daysSinceSignup >= 10 and plan = "pro")   grace 7,  tenure 0,  one-step
 *   active: days7 >= 4                                                 grace 5,  tenure 10, one-step
 *   core:   spend30 >= 100                                             grace 10, tenure 0,  to-qualified
 * Reviews run at 02:00 on the date given.
 */
const opened = (at: string): LifecycleStep => ({ at, event: 'app.opened' });

const scenarios: Array<{ name: string; steps: LifecycleStep[] }> = [
  {
    name: 'promotion skips tiers as soon as it is earned',
    steps: [
      opened('2026-03-01T10:00:00Z'),
      { expect: { tier: 'visitor', reviewAt: null, transitions: ['entered'] } },
      { at: '2026-03-02T10:00:00Z', event: 'order.paid', properties: { amount: 150 } },
      // The order leaves the 30-day window on 04-01, the first day the user would not qualify.
      { expect: { tier: 'core', graceUntil: null, reviewAt: '2026-04-01', transitions: ['promoted'] } },
    ],
  },
  {
    name: 'grace starts at review and is cleared by re-qualifying',
    steps: [
      opened('2026-03-01T10:00:00Z'),
      opened('2026-03-02T10:00:00Z'),
      { expect: { tier: 'member', reviewAt: '2026-03-08', transitions: ['promoted'] } },
      { review: '2026-03-08' },
      { expect: { tier: 'member', graceUntil: '2026-03-15', reviewAt: '2026-03-15', transitions: ['grace-started'] } },
      opened('2026-03-10T10:00:00Z'),
      { expect: { tier: 'member', graceUntil: '2026-03-15', transitions: [] } },
      opened('2026-03-11T10:00:00Z'),
      { expect: { tier: 'member', graceUntil: null, reviewAt: '2026-03-17', transitions: ['grace-cleared'] } },
    ],
  },
  {
    name: 'tenure holds a fresh promotion, then grace expires one step at a time',
    steps: [
      opened('2026-03-01T10:00:00Z'),
      opened('2026-03-02T10:00:00Z'),
      opened('2026-03-03T10:00:00Z'),
      opened('2026-03-04T10:00:00Z'),
      { expect: { tier: 'active', reviewAt: '2026-03-08', transitions: ['promoted'] } },
      { review: '2026-03-08' },
      // Qualifies only for member now, but active's 10-day tenure (to 03-14) holds it.
      { expect: { tier: 'active', graceUntil: null, reviewAt: '2026-03-10', transitions: [] } },
      { review: '2026-03-10' },
      { expect: { tier: 'active', graceUntil: null, reviewAt: '2026-03-14' } },
      { review: '2026-03-14' },
      { expect: { tier: 'active', graceUntil: '2026-03-19', reviewAt: '2026-03-19', transitions: ['grace-started'] } },
      { review: '2026-03-19' },
      // One step down to member, which the user does not qualify for either: member's grace starts the same night.
      { expect: { tier: 'member', graceUntil: '2026-03-26', reviewAt: '2026-03-26', transitions: ['demoted', 'grace-started'] } },
      { review: '2026-03-26' },
      { expect: { tier: 'visitor', graceUntil: null, reviewAt: null, transitions: ['demoted'] } },
    ],
  },
  {
    name: 'to-qualified grace expiry moves straight to the qualified tier',
    steps: [
      { at: '2026-03-01T10:00:00Z', event: 'order.paid', properties: { amount: 150 } },
      { expect: { tier: 'core', reviewAt: '2026-03-31', transitions: ['entered'] } },
      opened('2026-03-29T10:00:00Z'),
      opened('2026-03-30T10:00:00Z'),
      // Qualifies for member only, but demotion waits for the review.
      { expect: { tier: 'core', graceUntil: null, reviewAt: '2026-03-31', transitions: [] } },
      { review: '2026-03-31' },
      { expect: { tier: 'core', graceUntil: '2026-04-10', reviewAt: '2026-04-05', transitions: ['grace-started'] } },
      { review: '2026-04-05' },
      { expect: { tier: 'core', graceUntil: '2026-04-10', reviewAt: '2026-04-10', transitions: [] } },
      opened('2026-04-08T10:00:00Z'),
      opened('2026-04-09T10:00:00Z'),
      { review: '2026-04-10' },
      { expect: { tier: 'member', graceUntil: null, reviewAt: '2026-04-15', transitions: ['demoted'] } },
    ],
  },
  {
    name: 'a lock with an expiry holds the tier, then the rules take over through grace',
    steps: [
      opened('2026-03-01T10:00:00Z'),
      { at: '2026-03-01T12:00:00Z', lock: { tier: 'core', until: '2026-03-10', reason: 'partner' } },
      { expect: { tier: 'core', reviewAt: '2026-03-10', transitions: ['locked'] } },
      opened('2026-03-02T10:00:00Z'),
      opened('2026-03-03T10:00:00Z'),
      opened('2026-03-04T10:00:00Z'),
      opened('2026-03-05T10:00:00Z'),
      // Qualifies for active, but a locked tier is never changed by rules.
      { expect: { tier: 'core', reviewAt: '2026-03-10', transitions: [] } },
      { review: '2026-03-10' },
      { expect: { tier: 'core', graceUntil: '2026-03-20', reviewAt: '2026-03-11', transitions: ['unlocked', 'grace-started'] } },
    ],
  },
  {
    name: 'a lock without expiry is never reviewed and never changed by rules',
    steps: [
      opened('2026-03-01T10:00:00Z'),
      { at: '2026-03-01T12:00:00Z', lock: { tier: 'member', reason: 'staff' } },
      { expect: { tier: 'member', reviewAt: null, transitions: ['locked'] } },
      { at: '2026-03-02T10:00:00Z', event: 'order.paid', properties: { amount: 500 } },
      { expect: { tier: 'member', reviewAt: null, transitions: [] } },
      { at: '2026-03-03T10:00:00Z', lock: null },
      // Unlocked: qualifies for core at once (spend 500), and the rules promote.
      { expect: { tier: 'core', reviewAt: '2026-04-01', transitions: ['unlocked', 'promoted'] } },
    ],
  },
  {
    name: 'a time-based fact puts a user in the review index and promotes them at review',
    steps: [
      { at: '2026-03-01T10:00:00Z', event: 'user.signed_up' },
      { at: '2026-03-01T11:00:00Z', event: 'questionnaire.answered', properties: { plan: 'pro' } },
      // daysSinceSignup reaches 10 on 03-11.
      { expect: { tier: 'visitor', reviewAt: '2026-03-11' } },
      { review: '2026-03-11' },
      { expect: { tier: 'member', reviewAt: null, transitions: ['promoted'] } },
    ],
  },
];

describe('tier lifecycle', () => {
  for (const scenario of scenarios) {
    it(scenario.name, async () => {
      await runSteps(createWorld(testRuleset()), scenario.steps);
    });
  }
});
