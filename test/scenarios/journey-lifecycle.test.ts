/**
 * Journey lifecycles: the compiled ASL of the shipped journeys runs on aws-local-stepfunctions through the local
 * runner, with a virtual clock and in-memory ports. Each scenario is a table row: what happens when, then the
 * exact actions sent (in order, with their times) and the exact state transitions billed.
 */
import { describe, expect, it } from 'vitest';
import { branchSignalFilter, conversionSignalFilter } from '../../functions/core/journey/signals.js';
import type { BranchStep } from '../../functions/core/journey/journey-schema.js';
import { journeyActionId } from '../../functions/core/journey/decide-journey-step.js';
import { compileJourney, journeyStepSpec } from '../../functions/core/journey/compile-journey.js';
import { runJourneyStep } from '../../functions/core/journey/run-journey-step.js';
import { createScaledClock } from '../../functions/local/clock.js';
import { createJourneyRunner } from '../../functions/local/journey-runner.js';
import {
  DAY_MS,
  RULESET_TIME_ZONE,
  actionLines,
  createJourneyHarness,
  createMemoryJourneyPorts,
  loadShippedJourney,
  profileFor,
  userIdFor,
  type JourneyHarness,
  type Tier,
} from '../helpers/journey-fixtures.js';

/** Monday 2 March 2026, 10:00 in Shanghai. */
const T0 = '2026-03-02T02:00:00.000Z';
const at = (days: number, from = T0): string => new Date(Date.parse(from) + days * DAY_MS).toISOString();
const EXECUTION = 'journey-test-1';

type Happening =
  | { at: string; convert: true }
  | { at: string; changeTier: string; stop?: true }
  | { at: string; engage: string }
  | { at: string; sendsOn: string; count: number };

interface Scenario {
  name: string;
  tier: Tier;
  start?: string;
  heldOut?: true;
  sendsBefore?: Array<{ date: string; count: number }>;
  failOnce?: { stepId: string; when: 'before-work' | 'after-work' };
  happenings?: Happening[];
  actions: string[];
  transitions: number;
  status: 'SUCCEEDED' | 'ABORTED';
  statesEntered?: string[];
}

async function play(scenario: Scenario): Promise<JourneyHarness & { userId: string }> {
  const journey = loadShippedJourney(scenario.tier);
  const start = scenario.start ?? T0;
  const harness = createJourneyHarness([journey], start);
  const userId = userIdFor(journey, scenario.heldOut ?? false);
  harness.memory.setProfile(profileFor(userId, scenario.tier));
  for (const { date, count } of scenario.sendsBefore ?? []) harness.memory.addSends(userId, date, count);
  if (scenario.failOnce?.when === 'before-work') harness.failOnceBeforeWork(scenario.failOnce.stepId);
  if (scenario.failOnce?.when === 'after-work') harness.failOnceAfterWork(scenario.failOnce.stepId);

  expect(await harness.runner.start(EXECUTION, scenario.tier, { userId })).toBe('started');
  for (const happening of scenario.happenings ?? []) {
    await harness.clock.advanceTo(happening.at);
    const now = new Date(happening.at);
    if ('convert' in happening) harness.memory.addSignal(userId, conversionSignalFilter(journey.settings.exitOn.conversion!).id, now);
    if ('engage' in happening) {
      const branch = journey.steps.find((step): step is BranchStep => step.id === happening.engage && step.type === 'branch')!;
      harness.memory.addSignal(userId, branchSignalFilter(journey, branch)!.id, now);
    }
    if ('sendsOn' in happening) harness.memory.addSends(userId, happening.sendsOn, happening.count);
    if ('changeTier' in happening) {
      harness.memory.updateProfile(userId, { tier: happening.changeTier });
      if (happening.stop) await harness.runner.stop(EXECUTION);
    }
  }
  await harness.clock.advanceTo(at(30, start));
  await harness.runner.idle();
  return { ...harness, userId };
}

const scenarios: Scenario[] = [
  {
    name: 'happy path: content, invite, offer',
    tier: 'member',
    actions: [
      '2026-03-02T02:00:00.000Z content beginner-live-session-replay',
      '2026-03-04T02:00:00.000Z invite pm-career-change-members',
      '2026-03-08T02:00:00.000Z offer pm-course-member-price',
    ],
    transitions: 9,
    status: 'SUCCEEDED',
    statesEntered: [
      'live_session_replay',
      'live_session_replay.outcome',
      'wait_after_replay',
      'members_group',
      'members_group.outcome',
      'wait_in_group',
      'member_price',
      'member_price.outcome',
      'done',
    ],
  },
  {
    name: 'a conversion during the wait before the offer: no offer',
    tier: 'member',
    happenings: [{ at: at(3), convert: true }],
    actions: ['2026-03-02T02:00:00.000Z content beginner-live-session-replay', '2026-03-04T02:00:00.000Z invite pm-career-change-members'],
    transitions: 9,
    status: 'SUCCEEDED',
    statesEntered: [
      'live_session_replay',
      'live_session_replay.outcome',
      'wait_after_replay',
      'members_group',
      'members_group.outcome',
      'wait_in_group',
      'member_price',
      'member_price.outcome',
      'Exited',
    ],
  },
  {
    name: 'a demotion during a wait: the next send sees the tier change and exits',
    tier: 'member',
    happenings: [{ at: at(1), changeTier: 'visitor' }],
    actions: ['2026-03-02T02:00:00.000Z content beginner-live-session-replay'],
    transitions: 6,
    status: 'SUCCEEDED',
    statesEntered: ['live_session_replay', 'live_session_replay.outcome', 'wait_after_replay', 'members_group', 'members_group.outcome', 'Exited'],
  },
  {
    name: 'a demotion during a wait, with the execution stopped as the starter does: aborted in the wait',
    tier: 'member',
    happenings: [{ at: at(1), changeTier: 'visitor', stop: true }],
    actions: ['2026-03-02T02:00:00.000Z content beginner-live-session-replay'],
    transitions: 3,
    status: 'ABORTED',
    statesEntered: ['live_session_replay', 'live_session_replay.outcome', 'wait_after_replay'],
  },
  {
    name: 'quiet hours: a start at 22:00 in Shanghai sends at 08:00',
    tier: 'member',
    start: '2026-03-02T14:00:00.000Z',
    actions: [
      '2026-03-03T00:00:00.000Z content beginner-live-session-replay',
      '2026-03-05T00:00:00.000Z invite pm-career-change-members',
      '2026-03-09T00:00:00.000Z offer pm-course-member-price',
    ],
    transitions: 12,
    status: 'SUCCEEDED',
    statesEntered: [
      'live_session_replay',
      'live_session_replay.outcome',
      'live_session_replay.deferred',
      'live_session_replay',
      'live_session_replay.outcome',
      'wait_after_replay',
      'members_group',
      'members_group.outcome',
      'wait_in_group',
      'member_price',
      'member_price.outcome',
      'done',
    ],
  },
  {
    name: 'frequency cap (3 in 7 days): sends wait until earlier sends leave the window',
    tier: 'member',
    // Other journeys sent once on 25 February and twice on 1 March.
    sendsBefore: [
      { date: '2026-02-25', count: 1 },
      { date: '2026-03-01', count: 2 },
    ],
    actions: [
      // 25 Feb leaves the window on 4 March (at midnight, in quiet hours: so 08:00).
      '2026-03-04T00:00:00.000Z content beginner-live-session-replay',
      // Due on 6 March, but 1 March (2 sends) + 4 March fill the window until 8 March.
      '2026-03-08T00:00:00.000Z invite pm-career-change-members',
      '2026-03-12T00:00:00.000Z offer pm-course-member-price',
    ],
    transitions: 15,
    status: 'SUCCEEDED',
  },
  {
    name: 'a held-out user gets nothing',
    tier: 'member',
    heldOut: true,
    actions: [],
    transitions: 3,
    status: 'SUCCEEDED',
    statesEntered: ['live_session_replay', 'live_session_replay.outcome', 'Exited'],
  },
  {
    name: 'branch, engaged arm: the visitor opened the case studies, so straight to the group',
    tier: 'visitor',
    happenings: [{ at: at(1), engage: 'opened_cases' }],
    actions: [
      '2026-03-02T02:00:00.000Z content pm-beginner-case-studies',
      '2026-03-04T02:00:00.000Z invite zero-experience-career-change',
      '2026-03-07T02:00:00.000Z offer free-4-day-pm-camp',
    ],
    transitions: 11,
    status: 'SUCCEEDED',
  },
  {
    name: 'branch, not-engaged arm: a gentler success story first',
    tier: 'visitor',
    actions: [
      '2026-03-02T02:00:00.000Z content pm-beginner-case-studies',
      '2026-03-04T02:00:00.000Z content career-change-success-story',
      '2026-03-06T02:00:00.000Z invite zero-experience-career-change',
      '2026-03-09T02:00:00.000Z offer free-4-day-pm-camp',
    ],
    transitions: 14,
    status: 'SUCCEEDED',
  },
  {
    name: 'a transient failure before the work is retried, and the invite is sent exactly once',
    tier: 'member',
    failOnce: { stepId: 'members_group', when: 'before-work' },
    actions: [
      '2026-03-02T02:00:00.000Z content beginner-live-session-replay',
      '2026-03-04T02:00:00.000Z invite pm-career-change-members',
      '2026-03-08T02:00:00.000Z offer pm-course-member-price',
    ],
    transitions: 10,
    status: 'SUCCEEDED',
  },
];

describe('journey lifecycles on aws-local-stepfunctions', () => {
  it.each(scenarios)('$name', async (scenario) => {
    const { runner, memory } = await play(scenario);
    expect(actionLines(memory.published)).toEqual(scenario.actions);
    const [execution] = runner.executions();
    expect(execution?.status).toBe(scenario.status);
    expect(execution?.transitions).toBe(scenario.transitions);
    if (scenario.statesEntered) expect(execution?.statesEntered).toEqual(scenario.statesEntered);
  });

  it('a transient failure after the work: retried, recorded once, published again with the same action id', async () => {
    const { runner, memory, userId, taskCalls } = await play({
      name: 'after-work failure',
      tier: 'member',
      failOnce: { stepId: 'members_group', when: 'after-work' },
      actions: [],
      transitions: 10,
      status: 'SUCCEEDED',
    });
    const inviteId = journeyActionId(EXECUTION, 'members_group');
    expect(memory.published.map((action) => `${action.kind} ${action.actionId}`)).toEqual([
      `content ${journeyActionId(EXECUTION, 'live_session_replay')}`,
      `invite ${inviteId}`,
      `invite ${inviteId}`,
      `offer ${journeyActionId(EXECUTION, 'member_price')}`,
    ]);
    expect(taskCalls.map((call) => call.stepId)).toEqual(['live_session_replay', 'members_group', 'members_group', 'member_price']);
    const { buckets } = await memory.ports.store.loadUserForJourney(userId, '2026-03-01');
    expect(buckets.map((bucket) => `${bucket.date}:${bucket.sends}`)).toEqual(['2026-03-02:1', '2026-03-04:1', '2026-03-08:1']);
    expect(runner.executions()[0]?.transitions).toBe(10);
  });

  it('passes the step function what it needs, with the start time on the runner clock', async () => {
    const { taskCalls, userId } = await play(scenarios[0]!);
    expect(taskCalls[0]).toEqual({
      ...journeyStepSpec(loadShippedJourney('member'), 'live_session_replay'),
      userId,
      executionName: EXECUTION,
      startedAt: T0,
      // The execution data so far (the first step: the input only), for the Task that ends it to count it.
      state: { userId },
    });
  });

  it.each([
    ['visitor', 11, 'with the case studies opened'],
    ['member', 9, ''],
    ['active', 11, 'with the practice project completed'],
    ['core', 12, 'including the wait for 19:30'],
  ] as const)('happy path of journeys/%s.json takes %i transitions %s', async (tier, transitions, _note) => {
    const journey = loadShippedJourney(tier);
    const branch = journey.steps.find((step) => step.type === 'branch')?.id;
    const { runner, memory } = await play({
      name: tier,
      tier,
      happenings: branch ? [{ at: at(1), engage: branch }] : [],
      actions: [],
      transitions,
      status: 'SUCCEEDED',
    });
    expect(memory.published.map((action) => action.kind)).toEqual(['content', 'invite', 'offer']);
    expect(runner.executions()[0]).toMatchObject({ status: 'SUCCEEDED', transitions });
    if (tier === 'core') expect(memory.published[2]?.at).toBe('2026-03-09T11:30:00.000Z');
  });

  it('starts an execution name once, like StartExecution', async () => {
    const journey = loadShippedJourney('member');
    const harness = createJourneyHarness([journey], T0);
    const userId = userIdFor(journey, false);
    harness.memory.setProfile(profileFor(userId, 'member'));
    expect(await harness.runner.start(EXECUTION, 'member', { userId })).toBe('started');
    expect(await harness.runner.start(EXECUTION, 'member', { userId })).toBe('already-exists');
    await harness.clock.advanceTo(at(30));
    await harness.runner.idle();
    expect(await harness.runner.start(EXECUTION, 'member', { userId })).toBe('already-exists');
    expect(harness.memory.published).toHaveLength(3);
    expect(harness.runner.executions().map((e) => [e.executionName, e.status, e.stoppedAt])).toEqual([
      [EXECUTION, 'SUCCEEDED', '2026-03-08T02:00:00.000Z'],
    ]);
  });

  it('runs many users through one machine concurrently, each in order', async () => {
    const journey = loadShippedJourney('member');
    const harness = createJourneyHarness([journey], T0);
    const users = Array.from({ length: 20 }, (_, n) => `load-${n}`);
    for (const userId of users) harness.memory.setProfile(profileFor(userId, 'member'));
    for (const userId of users) await harness.runner.start(`member-${userId}`, 'member', { userId });
    await harness.clock.advanceTo(at(30));
    await harness.runner.idle();
    const sentUsers = new Set(harness.memory.published.map((action) => action.userId));
    const executions = harness.runner.executions();
    expect(executions.every((e) => e.status === 'SUCCEEDED')).toBe(true);
    for (const userId of users) {
      const kinds = harness.memory.published.filter((action) => action.userId === userId).map((action) => action.kind);
      expect(kinds).toEqual(sentUsers.has(userId) ? ['content', 'invite', 'offer'] : []);
    }
    expect(executions.map((e) => e.transitions).sort()).toEqual(users.map((userId) => (sentUsers.has(userId) ? 9 : 3)).sort());
  });

  it('fails an execution whose step keeps failing, with the error recorded', async () => {
    const journey = loadShippedJourney('member');
    const harness = createJourneyHarness([journey], T0);
    // No profile is not an error (the step exits); a throwing store is.
    const brokenStep = async (): Promise<never> => {
      throw Object.assign(new Error('store is down'), { name: 'Strata.Transient' });
    };
    harness.memory.ports.store.loadUserForJourney = brokenStep;
    await harness.runner.start(EXECUTION, 'member', { userId: 'someone' });
    await harness.clock.advanceTo(at(1));
    await harness.runner.idle();
    expect(harness.runner.executions()[0]).toMatchObject({
      status: 'FAILED',
      // First try plus 24 retries, then the catch to Failed.
      transitions: 1 + 24 + 1,
      statesEntered: ['live_session_replay', 'Failed'],
      error: { error: 'Strata.Transient', cause: 'store is down' },
    });
  });

  it('outlasts a throttling burst: Lambda throttling, timeouts and sandbox failures are retried, not fatal', async () => {
    const journey = loadShippedJourney('member');
    const harness = createJourneyHarness([journey], T0);
    const userId = userIdFor(journey, false);
    harness.memory.setProfile(profileFor(userId, 'member'));
    // Twenty throttles in a row is about 30 minutes of backoff on Step Functions (5-minute cap, full jitter).
    harness.failBeforeWork('live_session_replay', 3, 'Sandbox.Timedout');
    harness.failBeforeWork('members_group', 20, 'Lambda.TooManyRequestsException');
    harness.failBeforeWork('member_price', 2, 'Lambda.ClientExecutionTimeoutException');
    await harness.runner.start(EXECUTION, 'member', { userId });
    await harness.clock.advanceTo(at(30));
    await harness.runner.idle();
    expect(actionLines(harness.memory.published)).toEqual([
      '2026-03-02T02:00:00.000Z content beginner-live-session-replay',
      '2026-03-04T02:00:00.000Z invite pm-career-change-members',
      '2026-03-08T02:00:00.000Z offer pm-course-member-price',
    ]);
    expect(harness.runner.executions()[0]).toMatchObject({ status: 'SUCCEEDED', transitions: 9 + 3 + 20 + 2 });
  });

  it('still fails the journey once the retries are spent (Lambda.Unknown on every attempt)', async () => {
    const journey = loadShippedJourney('member');
    const harness = createJourneyHarness([journey], T0);
    const userId = userIdFor(journey, false);
    harness.memory.setProfile(profileFor(userId, 'member'));
    harness.failBeforeWork('live_session_replay', 100, 'Lambda.Unknown');
    await harness.runner.start(EXECUTION, 'member', { userId });
    await harness.clock.advanceTo(at(1));
    await harness.runner.idle();
    expect(harness.runner.executions()[0]).toMatchObject({ status: 'FAILED', transitions: 1 + 24 + 1, error: { error: 'Lambda.Unknown' } });
  });

  it('runs on a scaled clock too, where the library Waits do the pausing', async () => {
    // Without quiet hours: a scaled clock keeps running while the machine is built, so the start hour is not known.
    const shipped = loadShippedJourney('member');
    const journey = { ...shipped, settings: { ...shipped.settings, quietHours: undefined } };
    // One journey day in 100 ms of wall time: the 6 days of the member journey take about 0.6 s.
    const clock = createScaledClock({ msPerDay: 100, start: new Date(T0) });
    const memory = createMemoryJourneyPorts(clock);
    const userId = userIdFor(journey, false);
    memory.setProfile(profileFor(userId, 'member'));
    const runner = createJourneyRunner({
      machines: { member: compileJourney(journey) },
      runStep: (task) => runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE }),
      clock,
    });
    await runner.start(EXECUTION, 'member', { userId });
    const wallStart = Date.now();
    while (runner.executions()[0]?.status === 'RUNNING') await new Promise((resolve) => setTimeout(resolve, 10));
    expect(Date.now() - wallStart).toBeGreaterThanOrEqual(6 * 100 - 50);
    const execution = runner.executions()[0]!;
    expect(execution).toMatchObject({ status: 'SUCCEEDED', transitions: 9 });
    expect(memory.published.map((action) => action.kind)).toEqual(['content', 'invite', 'offer']);
    expect(memory.published.map((action) => Math.round((Date.parse(action.at) - Date.parse(execution.startedAt)) / DAY_MS))).toEqual([0, 2, 6]);
  });
});
