/**
 * Per-channel consent: the profile's record of opt-outs and opt-ins (consent.ts), and the journey step guard that
 * reads it with the step's channel.
 */
import { describe, expect, it } from 'vitest';
import { ALL_CHANNELS, applyConsentEvent, isOptedOut } from '../../functions/core/consent.js';
import { journeyStepSpec } from '../../functions/core/journey/compile-journey.js';
import { decideJourneyStep, type JourneyStepInput } from '../../functions/core/journey/decide-journey-step.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import type { UserProfile } from '../../functions/core/state.js';
import { RULESET_TIME_ZONE, TIERS, journeyDocument, profileFor, userIdFor } from '../helpers/journey-fixtures.js';

const consentEvent = (type: 'message.opted_out' | 'message.opted_in', occurredAt: string, channel?: string) => ({
  eventId: `${type}-${occurredAt}-${channel ?? 'all'}`,
  userId: 'u1',
  type,
  occurredAt,
  properties: channel === undefined ? {} : { channel },
});

/** Applies the events in the order given (not necessarily occurredAt order), as ingest would. */
function after(events: ReturnType<typeof consentEvent>[], start: UserProfile = profileFor('u1', 'member')): UserProfile {
  return events.reduce((profile, event) => applyConsentEvent(profile, event) ?? profile, start);
}

describe('consent', () => {
  it('an opt-out naming a channel closes that channel only; one naming none closes all', () => {
    const emailOnly = after([consentEvent('message.opted_out', '2026-03-01T00:00:00Z', 'email')]);
    expect([isOptedOut(emailOnly, 'email'), isOptedOut(emailOnly, 'sms'), isOptedOut(emailOnly)]).toEqual([true, false, false]);
    expect(emailOnly.optedOutAt).toBeUndefined();
    const all = after([consentEvent('message.opted_out', '2026-03-01T00:00:00Z')]);
    expect([isOptedOut(all, 'email'), isOptedOut(all, 'sms'), isOptedOut(all)]).toEqual([true, true, true]);
    expect(all.optedOutAt).toBe('2026-03-01T00:00:00Z');
  });

  it('an opt-in reopens what it names, and the latest change for a channel decides', () => {
    const reopenedEmail = after([
      consentEvent('message.opted_out', '2026-03-01T00:00:00Z'),
      consentEvent('message.opted_in', '2026-03-02T00:00:00Z', 'email'),
    ]);
    expect([isOptedOut(reopenedEmail, 'email'), isOptedOut(reopenedEmail, 'sms')]).toEqual([false, true]);
    const closedAgain = after([consentEvent('message.opted_out', '2026-03-03T00:00:00Z')], reopenedEmail);
    expect(isOptedOut(closedAgain, 'email')).toBe(true);
    const allBack = after([consentEvent('message.opted_in', '2026-03-04T00:00:00Z')], closedAgain);
    expect([isOptedOut(allBack, 'email'), isOptedOut(allBack, 'sms'), allBack.optedOutAt]).toEqual([false, false, undefined]);
  });

  it('a late, older event does not undo a newer one', () => {
    const profile = after([
      consentEvent('message.opted_in', '2026-03-05T00:00:00Z', 'sms'),
      consentEvent('message.opted_out', '2026-03-01T00:00:00Z', 'sms'),
    ]);
    expect(isOptedOut(profile, 'sms')).toBe(false);
    expect(applyConsentEvent(profile, consentEvent('message.opted_out', '2026-03-01T00:00:00Z', 'sms'))).toBeUndefined();
  });

  it('reads a profile stored before per-channel consent (optedOutAt only) as opted out of everything', () => {
    const legacy = profileFor('u1', 'member', { optedOutAt: '2026-01-01T00:00:00Z' });
    expect(isOptedOut(legacy, 'email')).toBe(true);
    const reopened = after([consentEvent('message.opted_in', '2026-02-01T00:00:00Z')], legacy);
    expect(reopened.consent?.[ALL_CHANNELS]).toEqual({ optedOut: false, at: '2026-02-01T00:00:00Z' });
    expect(isOptedOut(reopened, 'email')).toBe(false);
  });

  it('ignores other event types', () => {
    expect(
      applyConsentEvent(profileFor('u1', 'member'), { ...consentEvent('message.opted_in', '2026-03-01T00:00:00Z'), type: 'app.opened' }),
    ).toBeUndefined();
  });
});

describe('journey step guard: a send on a channel the user left exits with opted-out', () => {
  const journey: JourneyDefinition = checkJourneyDocument(
    'journeys/member.json',
    journeyDocument({
      start: 'hello',
      steps: [
        { id: 'hello', type: 'content', templateId: 't1', channel: 'email', next: 'pause' },
        { id: 'pause', type: 'wait', untilLocalTime: '19:30', next: 'nudge' },
        { id: 'nudge', type: 'content', templateId: 't2', channel: 'sms', next: 'done' },
        { id: 'done', type: 'exit' },
      ],
    }),
    { tierIds: [...TIERS], expectedTier: 'member' },
  ).journey!;
  const user = userIdFor(journey, false);
  const input = (stepId: string, profile: UserProfile): JourneyStepInput => ({
    spec: journeyStepSpec(journey, stepId),
    execution: { executionName: 'member-x', tier: 'member', startedAt: '2026-03-02T02:00:00.000Z' },
    userId: user,
    profile,
    buckets: [],
    now: new Date('2026-03-03T02:00:00.000Z'),
    rulesetTimeZone: RULESET_TIME_ZONE,
  });
  const leftEmail = after([consentEvent('message.opted_out', '2026-03-01T00:00:00Z', 'email')], profileFor(user, 'member'));

  it('stops the email step and lets the sms step send', () => {
    expect(decideJourneyStep(input('hello', leftEmail))).toEqual({ outcome: 'exit', reason: 'opted-out' });
    expect(decideJourneyStep(input('nudge', leftEmail)).outcome).toBe('sent');
  });

  it('a wait goes on while some channel is open, and stops once all are closed', () => {
    expect(decideJourneyStep(input('pause', leftEmail)).outcome).toBe('wait');
    const leftAll = after([consentEvent('message.opted_out', '2026-03-02T00:00:00Z')], leftEmail);
    expect(decideJourneyStep(input('pause', leftAll))).toEqual({ outcome: 'exit', reason: 'opted-out' });
  });

  it('sends again after the user opts back in to the channel', () => {
    const back = after([consentEvent('message.opted_in', '2026-03-02T00:00:00Z', 'email')], leftEmail);
    expect(decideJourneyStep(input('hello', back)).outcome).toBe('sent');
  });
});
