/**
 * What the analytics core counts for each kind of happening, and how a report is read back from the counts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadValidRuleset } from '../../functions/cli/commands/simulate.js';
import {
  COUNTER_NAMES,
  type CounterDay,
  buildProductionReport,
  conversionOccurrence,
  executionTally,
  journeyStepCount,
  keptStepResults,
  stoppedExecutionTally,
  tierChangeOccurrences,
} from '../../functions/core/analytics.js';
import { isHeldOut } from '../../functions/core/journey/decide-journey-step.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { TierNotice, UserProfile } from '../../functions/core/state.js';

let ruleset: Ruleset;
beforeAll(async () => {
  ruleset = await loadValidRuleset(process.cwd(), 'the ruleset');
});

const AT = '2026-03-02T02:00:00.000Z';
const notice = (kind: string, toTier: string, fromTier?: string, noticeId = `${kind}-${toTier}`): TierNotice => ({
  noticeId,
  detailType: 'TierChanged',
  userRef: 'u_x',
  userId: 'ada',
  kind,
  toTier,
  ...(fromTier !== undefined ? { fromTier } : {}),
  at: AT,
  rulesetVersion: 'v',
});
const start = (tier: string) => ({ start: { executionName: `${tier}-exec`, tier, startedAt: AT }, stopExecutionNames: [] });

describe('tier change occurrences', () => {
  it('a user entering the ladder adds one to the census, a flow from nowhere and the journey entry of their group', () => {
    const [entered, ...rest] = tierChangeOccurrences(ruleset, 'ada', [notice('entered', 'visitor')], start('visitor'));
    expect(rest).toEqual([]);
    const journeyId = ruleset.journeys['visitor']!.id;
    const entry = isHeldOut('ada', ruleset.journeys['visitor']!) ? COUNTER_NAMES.enteredHeldOut(journeyId) : COUNTER_NAMES.enteredTreated(journeyId);
    expect(entered!.counts).toEqual({ [COUNTER_NAMES.census('visitor')]: 1, [COUNTER_NAMES.flow('', 'visitor')]: 1, [entry]: 1 });
    expect(entered!.date).toBe('2026-03-02');
  });

  it('a lock that keeps the tier counts nothing; grace notices count nothing', () => {
    const grace: TierNotice = { ...notice('grace-started', 'member', 'member'), detailType: 'GraceStarted' };
    expect(tierChangeOccurrences(ruleset, 'ada', [notice('locked', 'member', 'member'), grace], undefined)).toEqual([]);
  });

  it('two moves merged in one outbox each move the census, and only the journey that starts is entered', () => {
    const occurrences = tierChangeOccurrences(
      ruleset,
      'ada',
      [notice('promoted', 'member', 'visitor'), notice('promoted', 'active', 'member')],
      start('active'),
    );
    expect(occurrences.map((o) => o.counts[COUNTER_NAMES.census('member')])).toEqual([1, -1]);
    const memberJourney = ruleset.journeys['member']!.id;
    const activeJourney = ruleset.journeys['active']!.id;
    const entries = (id: string) =>
      occurrences.map((o) => (o.counts[COUNTER_NAMES.enteredTreated(id)] ?? 0) + (o.counts[COUNTER_NAMES.enteredHeldOut(id)] ?? 0));
    expect(entries(memberJourney)).toEqual([0, 0]);
    expect(entries(activeJourney)).toEqual([0, 1]);
  });
});

describe('conversion occurrences over the honest-holdout horizon', () => {
  const journey = () => ruleset.journeys['visitor']!;
  const profile = (tier = 'visitor'): UserProfile => ({
    userId: 'ada',
    tier,
    tierSince: AT,
    tierEnteredBy: 'start',
    version: 1,
    attributes: {},
    journey: { executionName: 'visitor-exec', tier: 'visitor', startedAt: AT },
  });
  const purchase = (occurredAt: string, product = 'pm-camp-4day') => ({
    eventId: `buy-${occurredAt}`,
    userId: 'ada',
    type: 'order.paid',
    occurredAt,
    properties: { product, amount: 99 },
  });

  it('counts a matching purchase inside the planned length, once per entry (the guard is kept)', () => {
    const occurrence = conversionOccurrence(ruleset, profile(), purchase('2026-03-05T00:00:00.000Z'));
    const name = isHeldOut('ada', journey()) ? COUNTER_NAMES.convertedHeldOut(journey().id) : COUNTER_NAMES.convertedTreated(journey().id);
    expect(occurrence).toMatchObject({ date: '2026-03-02', counts: { [name]: 1 }, keepGuard: true });
    expect(conversionOccurrence(ruleset, profile(), purchase('2026-03-06T00:00:00.000Z'))?.id).toBe(occurrence!.id);
  });

  it('does not count before entry, after the planned length, after leaving the tier, or another product', () => {
    expect(conversionOccurrence(ruleset, profile(), purchase('2026-03-01T00:00:00.000Z'))).toBeUndefined();
    expect(conversionOccurrence(ruleset, profile(), purchase('2026-03-20T00:00:00.000Z'))).toBeUndefined();
    expect(conversionOccurrence(ruleset, profile('member'), purchase('2026-03-05T00:00:00.000Z'))).toBeUndefined();
    expect(conversionOccurrence(ruleset, profile(), purchase('2026-03-05T00:00:00.000Z', 'other'))).toBeUndefined();
  });
});

describe('journey step counts', () => {
  const step = { journeyId: 'j', stepId: 's1', executionName: 'e' };
  it('counts sends, deferrals and exits by reason, and nothing for branch checks and waits', () => {
    expect(journeyStepCount(step, { outcome: 'sent', at: AT, actionId: 'a' }, '2026-03-02')?.counts).toEqual({ 's|s1': 1 });
    expect(journeyStepCount(step, { outcome: 'deferred', until: AT, reason: 'quiet-hours' }, '2026-03-02')?.counts).toEqual({ 'd|s1': 1 });
    expect(journeyStepCount(step, { outcome: 'exit', reason: 'converted' }, '2026-03-02')?.counts).toEqual({ 'x|s1|converted': 1 });
    expect(journeyStepCount(step, { outcome: 'engaged', at: AT }, '2026-03-02')).toBeUndefined();
    expect(journeyStepCount(step, { outcome: 'wait', until: AT }, '2026-03-02')).toBeUndefined();
  });
});

describe('an execution counted once, at its end', () => {
  const execution = { journeyId: 'visitor-welcome', executionName: 'visitor-abc', startedAt: '2026-03-01T17:00:00.000Z' };
  it('adds each send, the deferrals that rode on its step, and the exit by reason, on the entry day in the ruleset zone', () => {
    const tally = executionTally(ruleset, execution, {
      beginner_cases: { outcome: 'sent', deferrals: 2 },
      opened_cases: { outcome: 'not-engaged' },
      success_story: { outcome: 'sent' },
      career_change_group: { outcome: 'exit', reason: 'converted', deferrals: 1 },
    });
    expect(tally).toEqual({
      id: expect.stringMatching(/^j/),
      journeyId: 'visitor-welcome',
      // 17:00 UTC is the next morning in Asia/Shanghai.
      date: '2026-03-02',
      counts: {
        's|beginner_cases': 1,
        'd|beginner_cases': 2,
        's|success_story': 1,
        'x|career_change_group|converted': 1,
        'd|career_change_group': 1,
      },
    });
    // The same execution always has the same id, so that the Task and a flush that stopped it share one guard.
    expect(executionTally(ruleset, execution, { beginner_cases: { outcome: 'sent' } })?.id).toBe(tally!.id);
    expect(executionTally(ruleset, execution, { opened_cases: { outcome: 'engaged' } })).toBeUndefined();
  });

  it('keeps a step stopped while deferred, and reads the execution data of a stop defensively', () => {
    const data = {
      userId: 'u',
      results: {
        beginner_cases: { outcome: 'sent', at: AT, actionId: 'a' },
        success_story: { outcome: 'deferred', until: AT, reason: 'quiet-hours', deferrals: 3 },
        bad: 7,
        odd: { outcome: 'sent', deferrals: -1 },
      },
    };
    expect(keptStepResults(data)).toEqual({
      beginner_cases: { outcome: 'sent' },
      success_story: { outcome: 'deferred', reason: 'quiet-hours', deferrals: 3 },
      odd: { outcome: 'sent' },
    });
    expect(keptStepResults(null)).toEqual({});
    expect(keptStepResults({ results: [] })).toEqual({});
    const stopped = stoppedExecutionTally(ruleset, 'visitor-abc', { tier: 'visitor', startedAt: execution.startedAt, data });
    expect(stopped?.counts).toEqual({ 's|beginner_cases': 1, 'd|success_story': 3, 's|odd': 1 });
    expect(stopped?.id).toBe(executionTally(ruleset, execution, { beginner_cases: { outcome: 'sent' } })!.id);
    expect(stoppedExecutionTally(ruleset, 'gone-abc', { tier: 'gone', startedAt: AT, data })).toBeUndefined();
  });
});

describe('the report read back from counts', () => {
  it('sums the census over all days, the flows and funnels over the period, and says too few to tell under 30', () => {
    const journeyId = ruleset.journeys['visitor']!.id;
    const days: CounterDay[] = [
      { date: '2026-01-01', counts: { 't|visitor': 5, 'f||visitor': 5 } },
      { date: '2026-03-01', counts: { 't|visitor': 40, 'f||visitor': 40, [`e|${journeyId}`]: 36, [`h|${journeyId}`]: 4, [`ct|${journeyId}`]: 3 } },
      { date: '2026-03-02', counts: { 't|visitor': -2, 't|member': 2, 'f|visitor|member': 2 } },
    ];
    const report = buildProductionReport({
      ruleset,
      tierDays: days,
      journeyDays: {},
      snapshots: [],
      firstDate: '2026-02-01',
      lastDate: '2026-03-02',
    });
    expect(report.census).toMatchObject({ visitor: 43, member: 2 });
    expect(report.flows).toEqual([
      { from: null, to: 'visitor', count: 40 },
      { from: 'visitor', to: 'member', count: 2 },
    ]);
    expect(report.overTime.map((day) => day.tiers['visitor'])).toEqual([45, 43]);
    const visitor = report.journeys.find((journey) => journey.journeyId === journeyId)!;
    expect(visitor).toMatchObject({ entered: 40, treated: 36, heldOut: 4 });
    expect(visitor.observed.difference).toBeNull();
  });

  it('gives the Newcombe interval once both groups have 30 users', () => {
    const journeyId = ruleset.journeys['visitor']!.id;
    const days: CounterDay[] = [
      { date: '2026-03-01', counts: { [`e|${journeyId}`]: 300, [`h|${journeyId}`]: 30, [`ct|${journeyId}`]: 30, [`ch|${journeyId}`]: 1 } },
    ];
    const report = buildProductionReport({
      ruleset,
      tierDays: days,
      journeyDays: {},
      snapshots: [],
      firstDate: '2026-03-01',
      lastDate: '2026-03-01',
    });
    const { difference } = report.journeys.find((journey) => journey.journeyId === journeyId)!.observed;
    expect(difference!.points).toBeCloseTo((30 / 300 - 1 / 30) * 100, 6);
    expect(difference!.low).toBeLessThan(difference!.points);
    expect(difference!.high).toBeGreaterThan(difference!.points);
  });
});
