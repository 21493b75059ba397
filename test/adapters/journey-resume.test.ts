/**
 * Journeys survive a restart: the local runner records every execution in the execution log (a real file in a
 * temporary folder) and a new runner over the same file carries on where the old one was. The compiled ASL of the
 * shipped member journey runs on aws-local-stepfunctions with a virtual clock and in-memory journey-step ports.
 *
 * The local action log, which drops a repeated actionId as a channel would, is tested here too.
 *
 * A crash is simulated at every write the runner makes: the log takes the first k records, the (k+1)-th reaches the
 * file cut in half and nothing after it arrives, and the old runner is abandoned. The restarted runner must then
 * send each step's action (by actionId) exactly as an uninterrupted run does, at the same instants.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compileJourney, type AslDefinition } from '../../functions/core/journey/compile-journey.js';
import type { JourneyAction } from '../../functions/core/journey/decide-journey-step.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { runJourneyStep } from '../../functions/core/journey/run-journey-step.js';
import { ACTIONS_FILE, openActionLog } from '../../functions/local/action-log.js';
import { type VirtualClock, createScaledClock, createVirtualClock } from '../../functions/local/clock.js';
import {
  JOURNEY_DEFINITIONS_FILE,
  JOURNEY_EXECUTIONS_FILE,
  JourneyExecutionLogError,
  type JourneyExecutionLog,
  openJourneyExecutionLog,
  readJourneyExecution,
} from '../../functions/local/journey-execution-log.js';
import { type ExecutionRecord, type ExecutionStore, type JourneyRunner, createJourneyRunner } from '../../functions/local/journey-runner.js';
import {
  DAY_MS,
  RULESET_TIME_ZONE,
  actionLines,
  createMemoryJourneyPorts,
  loadShippedJourney,
  profileFor,
  userIdFor,
} from '../helpers/journey-fixtures.js';

/** Monday 2 March 2026, 10:00 in Shanghai. */
const T0 = '2026-03-02T02:00:00.000Z';
const at = (days: number, from = T0): string => new Date(Date.parse(from) + days * DAY_MS).toISOString();
const EXECUTION = 'member-resume-test';
const END = at(30);

const folders: string[] = [];
afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});
async function dataFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'strata-journey-resume-'));
  folders.push(folder);
  return folder;
}

/**
 * The world outside the runner, which a crash of the stack does not reset: the journey-step ports (profiles, sends
 * recorded, actions published) and the clock, which a restart takes over at some instant.
 */
function createWorld(journey: JourneyDefinition) {
  let clock: VirtualClock = createVirtualClock(T0);
  const memory = createMemoryJourneyPorts({ now: () => clock.now() });
  const userId = userIdFor(journey, false);
  memory.setProfile(profileFor(userId, journey.tier));
  const machines = { [journey.tier]: compileJourney(journey) };
  return {
    memory,
    userId,
    get clock(): VirtualClock {
      return clock;
    },
    /** A new stack process: a new clock from `instant` and a new runner over `store`, with the journey deployed then. */
    boot(store: ExecutionStore | undefined, instant: string, deployed: JourneyDefinition = journey): JourneyRunner {
      clock = createVirtualClock(instant);
      return createJourneyRunner({
        machines: deployed === journey ? machines : { [deployed.tier]: compileJourney(deployed) },
        clock,
        runStep: (task) => runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE }),
        ...(store ? { store } : {}),
      });
    },
  };
}

/** The execution log with its own `save` in front (definitions go straight through). */
function withSave(log: JourneyExecutionLog, save: ExecutionStore['save']): ExecutionStore {
  return {
    records: () => log.records(),
    definitions: () => log.definitions(),
    saveDefinition: (key, definition) => log.saveDefinition(key, definition),
    save,
  };
}

/** The execution log, until a crash: the first `survive` records are written, the next one only half, then none. */
function crashingAfter(log: JourneyExecutionLog, survive: number) {
  const saved: ExecutionRecord[] = [];
  let crash: { record: ExecutionRecord; at: string } | undefined;
  let clockNow = (): Date => new Date(0);
  const store = withSave(log, (record) => {
    if (saved.length < survive) {
      saved.push(structuredClone(record));
      return log.save(record);
    }
    crash ??= { record: structuredClone(record), at: clockNow().toISOString() };
    return Promise.reject(new Error('the process died'));
  });
  return {
    store,
    saved,
    crashed: () => crash,
    useClock(clock: { now(): Date }) {
      clockNow = () => clock.now();
    },
  };
}

/** What a channel that drops repeated actionIds delivers (as the local action log does): the first of each. */
const uniqueActions = (actions: readonly JourneyAction[]): JourneyAction[] =>
  actions.filter((action, index) => actions.findIndex((a) => a.actionId === action.actionId) === index);

async function uninterruptedRun(journey: JourneyDefinition) {
  const folder = await dataFolder();
  const world = createWorld(journey);
  const log = await openJourneyExecutionLog(folder);
  const recorded: ExecutionRecord[] = [];
  const runner = world.boot(
    withSave(log, (record) => {
      recorded.push(structuredClone(record));
      return log.save(record);
    }),
    T0,
  );
  expect(await runner.start(EXECUTION, journey.tier, { userId: world.userId })).toBe('started');
  await world.clock.advanceTo(END);
  await runner.idle();
  await log.close();
  return { recorded, published: world.memory.published, summary: runner.executions()[0]! };
}

describe('the journey execution log', () => {
  const record = (executionName: string, status: ExecutionRecord['status'], extra: Partial<ExecutionRecord> = {}): ExecutionRecord => ({
    executionName,
    tier: 'member',
    status,
    startedAt: T0,
    transitions: 1,
    statesEntered: ['live_session_replay'],
    ...extra,
  });

  it('keeps the latest record of each execution across a reopen, and rewrites itself to one line each', async () => {
    const folder = await dataFolder();
    const log = await openJourneyExecutionLog(folder);
    await Promise.all([
      log.save(record('a', 'RUNNING', { position: { state: 'live_session_replay', input: { userId: 'u1' } } })),
      log.save(record('b', 'RUNNING', { position: { state: 'live_session_replay', input: { userId: 'u2' } } })),
    ]);
    await log.save(record('a', 'SUCCEEDED', { stoppedAt: at(6) }));
    await log.close();
    expect((await readFile(join(folder, JOURNEY_EXECUTIONS_FILE), 'utf8')).trim().split('\n')).toHaveLength(3);
    expect(await readJourneyExecution(folder, 'a')).toMatchObject({ status: 'SUCCEEDED', stoppedAt: at(6) });

    const reopened = await openJourneyExecutionLog(folder);
    expect(reopened.records().map((r) => [r.executionName, r.status])).toEqual([
      ['a', 'SUCCEEDED'],
      ['b', 'RUNNING'],
    ]);
    await reopened.close();
    expect((await readFile(join(folder, JOURNEY_EXECUTIONS_FILE), 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('skips a last line cut short by a crash, and drops it on reopen', async () => {
    const folder = await dataFolder();
    const log = await openJourneyExecutionLog(folder);
    await log.save(record('a', 'RUNNING', { position: { state: 'live_session_replay', input: { userId: 'u1' } } }));
    await log.close();
    const torn = JSON.stringify(record('a', 'SUCCEEDED', { stoppedAt: at(6) }));
    await appendFile(join(folder, JOURNEY_EXECUTIONS_FILE), torn.slice(0, torn.length / 2));

    expect(await readJourneyExecution(folder, 'a')).toMatchObject({ status: 'RUNNING' });
    const reopened = await openJourneyExecutionLog(folder);
    expect(reopened.records().map((r) => r.status)).toEqual(['RUNNING']);
    await reopened.save(record('a', 'SUCCEEDED'));
    await reopened.close();
    expect((await readFile(join(folder, JOURNEY_EXECUTIONS_FILE), 'utf8')).split('\n').map((line) => line && JSON.parse(line).status)).toEqual([
      'RUNNING',
      'SUCCEEDED',
      '',
    ]);
  });

  it('ignores a rewrite that a crash interrupted before its rename', async () => {
    const folder = await dataFolder();
    const log = await openJourneyExecutionLog(folder);
    await log.save(record('a', 'ABORTED'));
    await log.close();
    await writeFile(join(folder, `${JOURNEY_EXECUTIONS_FILE}.replacing`), '{"executionName":"half');
    const reopened = await openJourneyExecutionLog(folder);
    expect(reopened.records().map((r) => [r.executionName, r.status])).toEqual([['a', 'ABORTED']]);
    await reopened.close();
  });

  it('refuses a damaged line before the end, naming the file and line', async () => {
    const folder = await dataFolder();
    await writeFile(
      join(folder, JOURNEY_EXECUTIONS_FILE),
      `${JSON.stringify(record('a', 'RUNNING'))}\nnot json\n${JSON.stringify(record('b', 'RUNNING'))}\n`,
    );
    const opening = openJourneyExecutionLog(folder);
    await expect(opening).rejects.toThrow(JourneyExecutionLogError);
    await expect(opening).rejects.toThrow(/journey-executions\.jsonl line 2 is not JSON/);
  });

  it('rewrites itself while running once the appended lines far outgrow the live records', async () => {
    const folder = await dataFolder();
    const log = await openJourneyExecutionLog(folder);
    const input = { userId: 'u1', padding: 'x'.repeat(500) };
    for (let round = 0; round < 6; round++) {
      await Promise.all(
        Array.from({ length: 500 }, (_, n) =>
          log.save(record('a', 'RUNNING', { transitions: round * 500 + n, position: { state: 'live_session_replay', input } })),
        ),
      );
    }
    await log.close();
    const lines = (await readFile(join(folder, JOURNEY_EXECUTIONS_FILE), 'utf8')).trim().split('\n');
    // 3,000 saves of about 700 bytes: without the rewrite, 2 MB.
    expect(lines.length).toBeLessThan(1_500);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ transitions: 2_999 });
  });
});

describe('the local action log', () => {
  const action = (stepId: string): JourneyAction =>
    ({
      actionId: `id-${stepId}`,
      kind: 'content',
      userId: 'u1',
      journeyId: 'member-nurture',
      stepId,
      at: T0,
      templateId: 't',
      channel: 'c',
    }) as unknown as JourneyAction;

  it('delivers each actionId once, across a restart, and after a line cut short by a crash', async () => {
    const folder = await dataFolder();
    const log = await openActionLog(folder);
    expect(await log.deliver(action('a'))).toBe(true);
    expect(await log.deliver(action('a'))).toBe(false);
    await log.close();
    const torn = JSON.stringify(action('b'));
    await appendFile(join(folder, ACTIONS_FILE), torn.slice(0, 20));

    const reopened = await openActionLog(folder);
    expect(await reopened.deliver(action('a'))).toBe(false);
    // The cut-off line never counted as delivered: the repeat is delivered, on a line of its own.
    expect(await reopened.deliver(action('b'))).toBe(true);
    await reopened.close();
    const lines = (await readFile(join(folder, ACTIONS_FILE), 'utf8')).split('\n');
    expect(lines.map((line) => (line.startsWith('{') && line.endsWith('}') ? (JSON.parse(line) as JourneyAction).stepId : line))).toEqual([
      'a',
      torn.slice(0, 20),
      'b',
      '',
    ]);
  });
});

describe('journeys survive a restart of the local runner', () => {
  const journey = loadShippedJourney('member');

  it('records the position, the Task results and the final status as it goes', async () => {
    const { recorded, published, summary } = await uninterruptedRun(journey);
    expect(actionLines(published)).toEqual([
      '2026-03-02T02:00:00.000Z content beginner-live-session-replay',
      '2026-03-04T02:00:00.000Z invite pm-career-change-members',
      '2026-03-08T02:00:00.000Z offer pm-course-member-price',
    ]);
    expect(summary).toMatchObject({ status: 'SUCCEEDED', transitions: 9, stoppedAt: at(6) });
    // Start (the first Task's position), then per send: the result, the Choice, the next state; and the end.
    expect(recorded.map((r) => (r.position ? `${r.position.state}${r.position.result ? ' (result)' : ''}` : r.status))).toEqual([
      'live_session_replay',
      'live_session_replay (result)',
      'live_session_replay.outcome',
      'wait_after_replay',
      'members_group',
      'members_group (result)',
      'members_group.outcome',
      'wait_in_group',
      'member_price',
      'member_price (result)',
      'member_price.outcome',
      'done',
      'SUCCEEDED',
    ]);
    // A Wait's end is recorded when it starts, and the Task after it carries it (on a virtual clock it waits there).
    expect(recorded[3]?.position).toMatchObject({ input: { userId: expect.any(String) }, wakeAt: at(2) });
    expect(recorded[4]?.position?.wakeAt).toBe(at(2));
    expect(recorded.at(-1)).toMatchObject({ status: 'SUCCEEDED', stoppedAt: at(6) });
    expect(recorded.at(-1)?.position).toBeUndefined();
  });

  it('after a crash at any write, carries on from the last record and sends each action (by actionId) once, at the same time', async () => {
    const baseline = await uninterruptedRun(journey);
    const writes = baseline.recorded.length;
    for (let survive = 0; survive < writes; survive++) {
      const folder = await dataFolder();
      const world = createWorld(journey);
      const log = await openJourneyExecutionLog(folder);
      const crashing = crashingAfter(log, survive);
      const first = world.boot(crashing.store, T0);
      crashing.useClock(world.clock);
      const started = await first.start(EXECUTION, journey.tier, { userId: world.userId }).catch(() => 'crashed');
      await world.clock.advanceTo(END);
      await first.idle();
      await log.close();
      const crash = crashing.crashed()!;
      expect(crash, `write ${survive + 1} of ${writes}`).toBeDefined();
      // The write that the crash interrupted reached the disk cut in half.
      const torn = JSON.stringify(crash.record);
      await appendFile(join(folder, JOURNEY_EXECUTIONS_FILE), torn.slice(0, Math.floor(torn.length / 2)));
      const sentBeforeCrash = world.memory.published.length;

      const reopened = await openJourneyExecutionLog(folder);
      const second = world.boot(reopened, crash.at);
      const resumed = await second.resume();
      if (started === 'crashed') {
        // StartExecution never returned: the caller (the journey outbox) starts it again.
        expect(resumed).toBe(0);
        expect(await second.start(EXECUTION, journey.tier, { userId: world.userId })).toBe('started');
      } else {
        expect(resumed, `write ${survive + 1}`).toBe(1);
      }
      await world.clock.advanceTo(END);
      await second.idle();
      await reopened.close();

      const context = `crash at write ${survive + 1} of ${writes} (${crash.record.position?.state ?? crash.record.status}${crash.record.position?.result ? ' result' : ''})`;
      expect(actionLines(uniqueActions(world.memory.published)), context).toEqual(actionLines(baseline.published));
      // A second publish only when the crash came between a send and the record of its result, with the same actionId.
      const resultOfSend = (crash.record.position?.result as { outcome?: string } | undefined)?.outcome === 'sent';
      expect(world.memory.published.length - baseline.published.length, context).toBe(resultOfSend ? 1 : 0);
      if (resultOfSend) {
        expect(world.memory.published[sentBeforeCrash]?.actionId, context).toBe(world.memory.published[sentBeforeCrash - 1]?.actionId);
        // The step run again may find its own recorded send filling the frequency cap (the offer is the third in 7
        // days) and defer the repeat to the next day: more transitions and a later end, the same single delivery.
        expect(second.executions(), context).toEqual([expect.objectContaining({ status: 'SUCCEEDED' })]);
      } else {
        expect(second.executions(), context).toEqual([expect.objectContaining({ status: 'SUCCEEDED', transitions: 9, stoppedAt: at(6) })]);
      }
      expect(await readJourneyExecution(folder, EXECUTION), context).toMatchObject({ status: 'SUCCEEDED' });
    }
  }, 120_000);

  it('runs a step only once the store holds its position (a scaled clock, where the library Waits do the pausing)', async () => {
    // Without quiet hours: a scaled clock keeps running while the machine is built, so the start hour is not known.
    const fast: JourneyDefinition = { ...journey, settings: { ...journey.settings, quietHours: undefined } };
    const folder = await dataFolder();
    const log = await openJourneyExecutionLog(folder);
    const happened: string[] = [];
    // Each save takes 30 ms to become durable: long enough for a step that did not wait for it to run first.
    const slowStore = withSave(log, async (record) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      await log.save(record);
      if (record.position && record.position.result === undefined) happened.push(`durable ${record.position.state}`);
    });
    const clock = createScaledClock({ msPerDay: 100, start: new Date(T0) });
    const memory = createMemoryJourneyPorts(clock);
    const userId = userIdFor(fast, false);
    memory.setProfile(profileFor(userId, 'member'));
    const runner = createJourneyRunner({
      machines: { member: compileJourney(fast) },
      clock,
      store: slowStore,
      runStep: (task) => {
        happened.push(`step ${task.stepId}`);
        return runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE });
      },
    });
    await runner.start(EXECUTION, 'member', { userId });
    while (runner.executions()[0]?.status === 'RUNNING') await new Promise((resolve) => setTimeout(resolve, 10));
    await log.close();
    expect(runner.executions()[0]?.status).toBe('SUCCEEDED');
    const steps = happened.filter((line) => line.startsWith('step '));
    expect(steps).toEqual(['step live_session_replay', 'step members_group', 'step member_price']);
    for (const step of steps) expect(happened.indexOf(`durable ${step.slice(5)}`), step).toBeLessThan(happened.indexOf(step));
  });

  it('stopping the stack leaves a journey RUNNING; a Wait that ended while it was down goes on at once', async () => {
    const folder = await dataFolder();
    const world = createWorld(journey);
    const log = await openJourneyExecutionLog(folder);
    const first = world.boot(log, T0);
    await first.start(EXECUTION, journey.tier, { userId: world.userId });
    await world.clock.advanceTo(at(1));
    await first.idle();
    await first.suspend();
    await log.close();
    expect(first.executions()[0]?.status).toBe('RUNNING');
    expect(await readJourneyExecution(folder, EXECUTION)).toMatchObject({ status: 'RUNNING', position: { wakeAt: at(2) } });

    // Down for 10 days: the 2-day wait ended long ago, so the invite goes at the restart; the 4-day wait runs from there.
    const reopened = await openJourneyExecutionLog(folder);
    const second = world.boot(reopened, at(11));
    expect(await second.resume()).toBe(1);
    await second.idle();
    expect(actionLines(world.memory.published).slice(1)).toEqual(['2026-03-13T02:00:00.000Z invite pm-career-change-members']);
    await world.clock.advanceTo(END);
    await second.idle();
    await reopened.close();
    expect(actionLines(world.memory.published)).toEqual([
      '2026-03-02T02:00:00.000Z content beginner-live-session-replay',
      '2026-03-13T02:00:00.000Z invite pm-career-change-members',
      '2026-03-17T02:00:00.000Z offer pm-course-member-price',
    ]);
    expect(second.executions()[0]).toMatchObject({ status: 'SUCCEEDED', transitions: 9, stoppedAt: at(15) });
  });

  it('records a stopped execution as ABORTED and a finished one as SUCCEEDED; neither runs again, and their names stay taken', async () => {
    const folder = await dataFolder();
    const world = createWorld(journey);
    const otherUser = userIdFor(journey, false, 'other');
    world.memory.setProfile(profileFor(otherUser, 'member'));
    const log = await openJourneyExecutionLog(folder);
    const first = world.boot(log, T0);
    await first.start(EXECUTION, journey.tier, { userId: world.userId });
    await first.start('member-other', journey.tier, { userId: otherUser });
    await world.clock.advanceTo(at(1));
    await first.stop('member-other');
    await world.clock.advanceTo(END);
    await first.idle();
    await first.suspend();
    await log.close();

    const reopened = await openJourneyExecutionLog(folder);
    const second = world.boot(reopened, END);
    // Known before resume(), as Step Functions would know them, e.g. to a replayed event that starts journeys.
    expect(await second.start('member-other', journey.tier, { userId: otherUser })).toBe('already-exists');
    expect(await second.resume()).toBe(0);
    await second.idle();
    await reopened.close();
    expect(second.executions().map((e) => [e.executionName, e.status, e.stoppedAt])).toEqual([
      [EXECUTION, 'SUCCEEDED', at(6)],
      ['member-other', 'ABORTED', at(1)],
    ]);
    expect(world.memory.published.filter((action) => action.userId === otherUser).map((action) => action.kind)).toEqual(['content']);
  });

  it('a StopExecution that arrives before resume() ends the journey where it was', async () => {
    const folder = await dataFolder();
    const world = createWorld(journey);
    const log = await openJourneyExecutionLog(folder);
    const first = world.boot(log, T0);
    await first.start(EXECUTION, journey.tier, { userId: world.userId });
    await world.clock.advanceTo(at(1));
    await first.idle();
    await first.suspend();
    await log.close();

    const reopened = await openJourneyExecutionLog(folder);
    const second = world.boot(reopened, at(1));
    await second.stop(EXECUTION);
    expect(await second.resume()).toBe(0);
    await world.clock.advanceTo(END);
    await second.idle();
    await reopened.close();
    expect(world.memory.published.map((action) => action.kind)).toEqual(['content']);
    expect(await readJourneyExecution(folder, EXECUTION)).toMatchObject({ status: 'ABORTED', stoppedAt: at(1) });
  });

  it('a journey edited while an execution waits: after the restart it carries on with the version it started with', async () => {
    const folder = await dataFolder();
    const world = createWorld(journey);
    const log = await openJourneyExecutionLog(folder);
    const first = world.boot(log, T0);
    await first.start(EXECUTION, journey.tier, { userId: world.userId });
    await world.clock.advanceTo(at(1));
    await first.idle();
    await first.suspend();
    await log.close();

    const edited: JourneyDefinition = {
      ...journey,
      steps: journey.steps.map((step) =>
        step.type === 'invite'
          ? { ...step, groupId: 'a-newer-group' }
          : step.type === 'offer'
            ? { ...step, id: 'newer_offer' }
            : step.id === 'wait_in_group'
              ? { ...step, next: 'newer_offer' }
              : step,
      ),
    };
    const reopened = await openJourneyExecutionLog(folder);
    const runner = world.boot(reopened, at(1), edited);
    expect(await runner.resume()).toBe(1);
    await world.clock.advanceTo(END);
    await runner.idle();
    await reopened.close();
    expect(actionLines(world.memory.published)).toEqual([
      '2026-03-02T02:00:00.000Z content beginner-live-session-replay',
      '2026-03-04T02:00:00.000Z invite pm-career-change-members',
      '2026-03-08T02:00:00.000Z offer pm-course-member-price',
    ]);
    expect(runner.executions()[0]).toMatchObject({ status: 'SUCCEEDED', transitions: 9 });
  });

  it('fails an execution whose recorded state the edited journey no longer has, when its own version is gone', async () => {
    const folder = await dataFolder();
    const world = createWorld(journey);
    const log = await openJourneyExecutionLog(folder);
    const first = world.boot(log, T0);
    await first.start(EXECUTION, journey.tier, { userId: world.userId });
    await world.clock.advanceTo(at(3));
    await first.idle();
    await first.suspend();
    await log.close();

    // On a virtual clock an execution in the 4-day wait is recorded at the Task after it, the member price offer.
    expect(await readJourneyExecution(folder, EXECUTION)).toMatchObject({ position: { state: 'member_price', wakeAt: at(6) } });
    const edited: JourneyDefinition = {
      ...journey,
      steps: journey.steps.map((step) =>
        step.id === 'member_price' ? { ...step, id: 'member_offer' } : step.id === 'wait_in_group' ? { ...step, next: 'member_offer' } : step,
      ),
    };
    // A data folder from before definitions were kept (or whose definitions file was removed).
    await rm(join(folder, JOURNEY_DEFINITIONS_FILE));
    const reopened = await openJourneyExecutionLog(folder);
    const runner = createJourneyRunner({
      machines: { member: compileJourney(edited) },
      clock: createVirtualClock(at(3)),
      runStep: () => Promise.reject(new Error('not called')),
      store: reopened,
    });
    expect(await runner.resume()).toBe(0);
    await reopened.close();
    expect(runner.executions()[0]).toMatchObject({
      status: 'FAILED',
      error: { error: 'JourneyRunner.CannotResume', cause: expect.stringMatching(/its journey has no state "member_price" any more/) },
    });
    expect(await readJourneyExecution(folder, EXECUTION)).toMatchObject({ status: 'FAILED' });
  });

  it('refuses a definition that reads $$.Execution.Input, which a resumed execution would get wrong', () => {
    const asl = compileJourney(journey);
    const task = asl.States['live_session_replay'] as Extract<AslDefinition['States'][string], { Type: 'Task' }>;
    const reading: AslDefinition = {
      ...asl,
      States: { ...asl.States, live_session_replay: { ...task, Parameters: { ...task.Parameters, 'input.$': '$$.Execution.Input' } } },
    };
    expect(() =>
      createJourneyRunner({ machines: { member: reading }, clock: createVirtualClock(T0), runStep: () => Promise.reject(new Error('not called')) }),
    ).toThrow(/reads \$\$\.Execution\.Input/);
  });
});
