import { describe, expect, it } from 'vitest';
import { journeyChanges } from '../../functions/core/journey/journey-changes.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { TIERS, journeyDocument, loadShippedJourney } from '../helpers/journey-fixtures.js';

type Step = Record<string, unknown>;
const memberJourney = (overrides: Record<string, unknown> = {}): JourneyDefinition => {
  const checked = checkJourneyDocument('journeys/member.json', journeyDocument(overrides), { tierIds: [...TIERS], expectedTier: 'member' });
  if (!checked.journey) throw new Error(JSON.stringify(checked.problems));
  return checked.journey;
};
const baseSteps = (): Step[] => journeyDocument()['steps'] as Step[];
const withStep = (id: string, change: Step): Step[] => baseSteps().map((step) => (step['id'] === id ? { ...step, ...change } : step));
const summary = (before: JourneyDefinition, after: JourneyDefinition) =>
  journeyChanges({ member: before }, { member: after }).map((change) => `${change.kind}: ${change.detail}`);

describe('journeyChanges', () => {
  it('finds nothing between a journey and itself', () => {
    for (const tier of TIERS) expect(journeyChanges({ [tier]: loadShippedJourney(tier) }, { [tier]: loadShippedJourney(tier) })).toEqual([]);
  });

  it('lists a changed wait, a changed send and a changed setting, each with what happens to running users', () => {
    const before = memberJourney({ settings: { holdoutPercent: 0, frequencyCap: { maxSends: 3, days: 7 } } });
    const after = memberJourney({
      settings: { holdoutPercent: 0, frequencyCap: { maxSends: 2, days: 7 } },
      steps: withStep('pause', { days: 3 }).map((step) => (step['id'] === 'group' ? { ...step, groupId: 'pm-members-2027', channel: 'sms' } : step)),
    });
    const changes = journeyChanges({ member: before }, { member: after });
    expect(changes.map((change) => `${change.kind}: ${change.detail}`)).toEqual([
      'settings-changed: frequencyCap {"maxSends":3,"days":7} → {"maxSends":2,"days":7}',
      'wait-changed: wait "pause": 2 days → 3 days',
      'send-changed: invite step "group": groupId "pm-career-change-members" → "pm-members-2027", channel "direct-message" → "sms"',
    ]);
    expect(changes.find((change) => change.kind === 'wait-changed')?.effect).toBe(
      'users already in this wait, or before it, still wait 2 days; new entries wait 3 days',
    );
    expect(changes.every((change) => change.tier === 'member' && change.journeyId === 'member-nurture')).toBe(true);
  });

  it('tells a renamed step (same content, new id) from a removed one, without calling the new link a route change', () => {
    const renamed = baseSteps().map((step) => {
      if (step['id'] === 'group') return { ...step, id: 'members_group' };
      if (step['id'] === 'pause') return { ...step, next: 'members_group' };
      return step;
    });
    expect(summary(memberJourney(), memberJourney({ steps: renamed }))).toEqual([
      'step-renamed: step "group" (invite to pm-career-change-members) is renamed to "members_group"',
    ]);

    const removed = baseSteps()
      .filter((step) => step['id'] !== 'group' && step['id'] !== 'pause_again')
      .map((step) => (step['id'] === 'pause' ? { ...step, next: 'course' } : step));
    expect(summary(memberJourney(), memberJourney({ steps: removed }))).toEqual([
      'route-changed: step "pause": next "group" → next "course"',
      'step-removed: step "group" (invite to pm-career-change-members) is removed',
      'step-removed: step "pause_again" (wait 4 days) is removed',
    ]);
  });

  it('lists new steps, a wait that now waits for a local time, and a step whose type changed', () => {
    const steps = withStep('pause', { type: 'wait', days: undefined, untilLocalTime: '19:30' });
    const changed = [
      ...steps.slice(0, 1).map((step) => ({ ...step, next: 'story' })),
      { id: 'story', type: 'content', templateId: 'career-change-success-story', channel: 'official-account', next: 'pause' },
      ...steps.slice(1),
    ];
    expect(summary(memberJourney(), memberJourney({ steps: changed }))).toEqual([
      'route-changed: step "welcome": next "pause" → next "story"',
      'wait-changed: wait "pause": 2 days → until 19:30',
      'step-added: step "story" (content career-change-success-story) is new',
    ]);
    const before = memberJourney();
    const endsEarly: JourneyDefinition = {
      ...before,
      steps: before.steps.map((step) => (step.id === 'pause_again' ? { id: 'pause_again', type: 'exit' } : step)),
    };
    expect(summary(before, endsEarly)).toEqual(['step-removed: step "pause_again" was wait 4 days, and is now exit']);
  });

  it('warns that a removed journey ends its running executions', () => {
    const [change] = journeyChanges({ member: memberJourney() }, {});
    expect(change).toMatchObject({ kind: 'journey-removed', tier: 'member' });
    expect(change?.effect).toContain('ends every running execution');
  });

  it('warns about signals the new version stops recording, which running executions still wait for', () => {
    const before = loadShippedJourney('visitor');
    const after: JourneyDefinition = {
      ...before,
      settings: { ...before.settings, exitOn: { conversion: { type: 'order.paid', where: { product: 'pm-camp-5day' } } } },
      steps: before.steps.map((step) => (step.type === 'branch' ? { ...step, signal: 'content-completed' as const } : step)),
    };
    const changes = journeyChanges({ visitor: before }, { visitor: after }).filter((change) => change.kind === 'signal-retired');
    expect(changes.map((change) => change.stepId ?? '(conversion)')).toEqual(['(conversion)', 'opened_cases']);
    expect(changes[0]?.effect).toContain('no longer exit');
    expect(changes[1]?.effect).toContain('notEngaged');
    // A signal that another deployed journey still records is not retired.
    expect(
      journeyChanges({ visitor: before }, { visitor: after, member: { ...loadShippedJourney('member'), settings: before.settings } }).filter(
        (c) => c.kind === 'signal-retired' && !c.stepId,
      ),
    ).toEqual([]);
  });
});
