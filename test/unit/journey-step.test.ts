import { describe, expect, it } from 'vitest';
import { journeyStepSpec } from '../../functions/core/journey/compile-journey.js';
import { decideJourneyStep, journeyActionId, type JourneyStepInput } from '../../functions/core/journey/decide-journey-step.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { runJourneyStep } from '../../functions/core/journey/run-journey-step.js';
import { branchSignalFilter, conversionSignalFilter } from '../../functions/core/journey/signals.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import type { DayBucket, UserProfile } from '../../functions/core/state.js';
import { RULESET_TIME_ZONE, TIERS, createMemoryJourneyPorts, journeyDocument, profileFor, userIdFor } from '../helpers/journey-fixtures.js';

const SETTINGS = {
  exitOn: { conversion: { type: 'order.paid', where: { product: 'pm-course' } } },
  quietHours: { start: '21:00', end: '08:00', timezone: 'Asia/Shanghai' },
  frequencyCap: { maxSends: 3, days: 7 },
  holdoutPercent: 10,
};
const STEPS = [
  { id: 'welcome', type: 'content', templateId: 'beginner-live-session-replay', channel: 'official-account', next: 'pause' },
  { id: 'pause', type: 'wait', days: 2, next: 'watched' },
  { id: 'watched', type: 'branch', since: 'welcome', signal: 'content-opened', timeoutDays: 3, engaged: 'group', notEngaged: 'group' },
  { id: 'group', type: 'invite', groupId: 'pm-career-change-members', channel: 'direct-message', next: 'evening' },
  { id: 'evening', type: 'wait', untilLocalTime: '19:30', next: 'course' },
  { id: 'course', type: 'offer', offerId: 'pm-course-member-price', expiryDays: 5, channel: 'direct-message', next: 'done' },
  { id: 'done', type: 'exit' },
];

const journey: JourneyDefinition = checkJourneyDocument('journeys/member.json', journeyDocument({ settings: SETTINGS, steps: STEPS }), {
  tierIds: [...TIERS],
  expectedTier: 'member',
}).journey!;

const USER = userIdFor(journey, false);
const HELD_OUT_USER = userIdFor(journey, true);
const STARTED_AT = '2026-03-02T02:00:00.000Z';
const EXECUTION = { executionName: 'member-abc123', tier: 'member', startedAt: STARTED_AT };
/** 10:00 in Shanghai on Tuesday 3 March 2026. */
const MORNING = new Date('2026-03-03T02:00:00.000Z');

const conversionId = conversionSignalFilter(journey.settings.exitOn.conversion!).id;
const openedId = branchSignalFilter(journey, journey.steps.find((step) => step.id === 'watched') as never)!.id;
const signal = (id: string, at: string): string => `${id}@${Math.floor(Date.parse(at) / 1000)}`;

/** The decision's input for a step of `journey`, as its compiled Task passes it. */
function input(overrides: Partial<Omit<JourneyStepInput, 'spec'>> & { stepId?: string; profile?: UserProfile | undefined } = {}): JourneyStepInput {
  const { stepId = 'welcome', ...rest } = overrides;
  return {
    spec: journeyStepSpec(journey, stepId),
    execution: EXECUTION,
    userId: USER,
    profile: profileFor(USER, 'member'),
    buckets: [],
    now: MORNING,
    rulesetTimeZone: RULESET_TIME_ZONE,
    ...rest,
  };
}

describe('decideJourneyStep: sends', () => {
  it('sends content with a stable action id', () => {
    expect(decideJourneyStep(input())).toEqual({
      outcome: 'sent',
      action: {
        actionId: journeyActionId('member-abc123', 'welcome'),
        kind: 'content',
        userId: USER,
        journeyId: 'member-nurture',
        tier: 'member',
        stepId: 'welcome',
        executionName: 'member-abc123',
        templateId: 'beginner-live-session-replay',
        channel: 'official-account',
        at: '2026-03-03T02:00:00.000Z',
      },
    });
    expect(journeyActionId('member-abc123', 'welcome')).toBe(journeyActionId('member-abc123', 'welcome'));
    expect(journeyActionId('member-abc123', 'welcome')).not.toBe(journeyActionId('member-abc124', 'welcome'));
  });

  it('sends an invite, and an offer with its expiry', () => {
    expect(decideJourneyStep(input({ stepId: 'group' }))).toMatchObject({
      outcome: 'sent',
      action: { kind: 'invite', groupId: 'pm-career-change-members' },
    });
    expect(decideJourneyStep(input({ stepId: 'course' }))).toMatchObject({
      outcome: 'sent',
      action: { kind: 'offer', offerId: 'pm-course-member-price', at: '2026-03-03T02:00:00.000Z', expiresAt: '2026-03-08T02:00:00.000Z' },
    });
  });
});

describe('decideJourneyStep: guards', () => {
  it('exits when the tier changed', () => {
    expect(decideJourneyStep(input({ profile: profileFor(USER, 'visitor') }))).toEqual({ outcome: 'exit', reason: 'tier-changed' });
  });

  it('exits when the user converted since the journey started, and only then', () => {
    const after: DayBucket = { date: '2026-03-02', counters: {}, signals: [signal(conversionId, '2026-03-02T09:00:00Z')] };
    const before: DayBucket = { date: '2026-03-02', counters: {}, signals: [signal(conversionId, '2026-03-02T01:59:59Z')] };
    const otherProduct: DayBucket = { date: '2026-03-02', counters: {}, signals: [signal('sOtherFilter', '2026-03-02T09:00:00Z')] };
    expect(decideJourneyStep(input({ buckets: [after] }))).toEqual({ outcome: 'exit', reason: 'converted' });
    expect(decideJourneyStep(input({ buckets: [before] })).outcome).toBe('sent');
    expect(decideJourneyStep(input({ buckets: [otherProduct] })).outcome).toBe('sent');
  });

  it('exits when the user opted out', () => {
    expect(decideJourneyStep(input({ profile: profileFor(USER, 'member', { optedOutAt: '2026-03-02T12:00:00Z' }) }))).toEqual({
      outcome: 'exit',
      reason: 'opted-out',
    });
  });

  it('exits for a held-out user, chosen by a stable hash', () => {
    expect(decideJourneyStep(input({ userId: HELD_OUT_USER, profile: profileFor(HELD_OUT_USER, 'member') }))).toEqual({
      outcome: 'exit',
      reason: 'held-out',
    });
  });

  it('exits for an unknown user', () => {
    expect(decideJourneyStep(input({ profile: undefined }))).toEqual({ outcome: 'exit', reason: 'unknown-user' });
  });

  it('decides from the compiled step alone: a step the current journey no longer has still sends what it said', () => {
    const removedInLaterVersion = journeyStepSpec(
      { ...journey, steps: journey.steps.map((step) => (step.id === 'welcome' ? { ...step, templateId: 'old-replay' } : step)) },
      'welcome',
    );
    expect(decideJourneyStep({ ...input(), spec: { ...removedInLaterVersion, stepId: 'renamed_since' } })).toMatchObject({
      outcome: 'sent',
      action: { stepId: 'renamed_since', templateId: 'old-replay', actionId: journeyActionId('member-abc123', 'renamed_since') },
    });
  });

  it('checks the guards at a branch too', () => {
    expect(decideJourneyStep(input({ stepId: 'watched', sinceSentAt: STARTED_AT, profile: profileFor(USER, 'core') }))).toEqual({
      outcome: 'exit',
      reason: 'tier-changed',
    });
  });
});

describe('decideJourneyStep: deferrals', () => {
  it('defers a send in quiet hours to the end of quiet hours in the user zone', () => {
    // 22:00 in Shanghai: defer to 08:00 next morning, Shanghai time.
    expect(decideJourneyStep(input({ now: new Date('2026-03-03T14:00:00Z') }))).toEqual({
      outcome: 'deferred',
      until: '2026-03-04T00:00:00.000Z',
      reason: 'quiet-hours',
    });
    // 07:59 in Shanghai: one minute to go.
    expect(decideJourneyStep(input({ now: new Date('2026-03-02T23:59:00Z') }))).toEqual({
      outcome: 'deferred',
      until: '2026-03-03T00:00:00.000Z',
      reason: 'quiet-hours',
    });
  });

  it("uses the user's own time zone from the profile attribute", () => {
    const londoner = profileFor(USER, 'member', { attributes: { timezone: { value: 'Europe/London', at: STARTED_AT, eventId: 'e1' } } });
    // 14:00 in London is fine, though it is 22:00 in Shanghai.
    expect(decideJourneyStep(input({ profile: londoner, now: new Date('2026-03-03T14:00:00Z') })).outcome).toBe('sent');
    // 22:30 in London: defer to 08:00 London time.
    expect(decideJourneyStep(input({ profile: londoner, now: new Date('2026-03-03T22:30:00Z') }))).toEqual({
      outcome: 'deferred',
      until: '2026-03-04T08:00:00.000Z',
      reason: 'quiet-hours',
    });
    // A zone that is not an IANA zone falls back to the journey's.
    const broken = profileFor(USER, 'member', { attributes: { timezone: { value: 'Mars/Olympus', at: STARTED_AT, eventId: 'e1' } } });
    expect(decideJourneyStep(input({ profile: broken, now: new Date('2026-03-03T14:00:00Z') })).outcome).toBe('deferred');
  });

  it('defers a send over the frequency cap to when the cap frees up, outside quiet hours', () => {
    const buckets: DayBucket[] = [
      { date: '2026-03-01', counters: {}, sends: 1 },
      { date: '2026-03-03', counters: {}, sends: 2 },
    ];
    // On 3 March the window 25 Feb..3 Mar holds 3 sends. 1 March leaves the window on 8 March, which starts at
    // midnight in Shanghai, inside quiet hours, so the send goes at 08:00 on 8 March.
    expect(decideJourneyStep(input({ buckets }))).toEqual({ outcome: 'deferred', until: '2026-03-08T00:00:00.000Z', reason: 'frequency-cap' });
    expect(decideJourneyStep(input({ buckets: buckets.slice(1) })).outcome).toBe('sent');
    expect(decideJourneyStep(input({ buckets, now: new Date('2026-03-08T00:00:00Z') })).outcome).toBe('sent');
  });
});

describe('decideJourneyStep: branches and local-time waits', () => {
  const branch = (buckets: DayBucket[], now: string) =>
    decideJourneyStep(input({ stepId: 'watched', sinceSentAt: STARTED_AT, buckets, now: new Date(now) }));

  it('takes the engaged arm once the content was opened after it was sent', () => {
    expect(branch([{ date: '2026-03-03', counters: {}, signals: [signal(openedId, '2026-03-03T01:00:00Z')] }], '2026-03-04T02:00:00Z')).toEqual({
      outcome: 'engaged',
      at: '2026-03-04T02:00:00.000Z',
    });
  });

  it('waits for engagement until the timeout, then takes the not-engaged arm', () => {
    const openedBefore: DayBucket = { date: '2026-03-01', counters: {}, signals: [signal(openedId, '2026-03-01T10:00:00Z')] };
    expect(branch([openedBefore], '2026-03-04T02:00:00Z')).toEqual({
      outcome: 'deferred',
      until: '2026-03-05T02:00:00.000Z',
      reason: 'awaiting-engagement',
    });
    expect(branch([openedBefore], '2026-03-05T02:00:00Z')).toEqual({ outcome: 'not-engaged', at: '2026-03-05T02:00:00.000Z' });
  });

  it("works out the next local time of day in the user's zone", () => {
    expect(decideJourneyStep(input({ stepId: 'evening' }))).toEqual({ outcome: 'wait', until: '2026-03-03T11:30:00.000Z' });
    expect(decideJourneyStep(input({ stepId: 'evening', now: new Date('2026-03-03T11:30:00Z') }))).toEqual({
      outcome: 'wait',
      until: '2026-03-04T11:30:00.000Z',
    });
  });
});

describe('runJourneyStep', () => {
  const task = { ...journeyStepSpec(journey, 'welcome'), userId: USER, executionName: 'member-abc123', startedAt: STARTED_AT };

  it('records the send in the day bucket and publishes the action', async () => {
    const memory = createMemoryJourneyPorts({ now: () => MORNING });
    memory.setProfile(profileFor(USER, 'member'));
    const result = await runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE });
    const actionId = journeyActionId('member-abc123', 'welcome');
    expect(result).toEqual({ outcome: 'sent', at: '2026-03-03T02:00:00.000Z', actionId });
    expect(memory.published.map((action) => action.actionId)).toEqual([actionId]);
    expect((await memory.ports.store.loadUserForJourney(USER, '2026-03-01')).buckets).toEqual([{ date: '2026-03-03', counters: {}, sends: 1 }]);
  });

  it('publishes again with the same action id when a retried step finds its send already recorded', async () => {
    const memory = createMemoryJourneyPorts({ now: () => MORNING });
    memory.setProfile(profileFor(USER, 'member'));
    await runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE });
    await runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE });
    const actionId = journeyActionId('member-abc123', 'welcome');
    expect(memory.published.map((action) => action.actionId)).toEqual([actionId, actionId]);
    expect((await memory.ports.store.loadUserForJourney(USER, '2026-03-01')).buckets).toEqual([{ date: '2026-03-03', counters: {}, sends: 1 }]);
  });

  it('records and publishes nothing when the step does not send', async () => {
    const memory = createMemoryJourneyPorts({ now: () => new Date('2026-03-03T14:00:00Z') });
    memory.setProfile(profileFor(USER, 'member'));
    expect(await runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE })).toEqual({
      outcome: 'deferred',
      until: '2026-03-04T00:00:00.000Z',
      reason: 'quiet-hours',
    });
    expect(memory.published).toEqual([]);
    expect((await memory.ports.store.loadUserForJourney(USER, '2026-03-01')).buckets).toEqual([]);
  });
});
