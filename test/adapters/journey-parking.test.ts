/**
 * Executions in a long Wait are parked: their aws-local-stepfunctions run is ended once the Wait's position is
 * durable, and they are launched again from that position (the path a restart takes) just before the Wait ends.
 * A parked execution must behave exactly as one left waiting in the library, and hold far less memory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { compileJourney } from '../../functions/core/journey/compile-journey.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { runJourneyStep } from '../../functions/core/journey/run-journey-step.js';
import { createScaledClock } from '../../functions/local/clock.js';
import { openJourneyExecutionLog, readJourneyExecution } from '../../functions/local/journey-execution-log.js';
import { createJourneyRunner } from '../../functions/local/journey-runner.js';
import { DAY_MS, RULESET_TIME_ZONE, createMemoryJourneyPorts, loadShippedJourney, profileFor, userIdFor } from '../helpers/journey-fixtures.js';

const T0 = '2026-03-02T02:00:00.000Z';
const folders: string[] = [];
afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});
async function dataFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'strata-journey-parking-'));
  folders.push(folder);
  return folder;
}

// Without quiet hours: a scaled clock keeps running while the machine is built, so the start hour is not known.
const member = loadShippedJourney('member');
const journey: JourneyDefinition = { ...member, settings: { ...member.settings, quietHours: undefined } };

async function runMember(options: { msPerDay: number; parkWaitsOverMs: number; users: number }) {
  const folder = await dataFolder();
  const log = await openJourneyExecutionLog(folder);
  const clock = createScaledClock({ msPerDay: options.msPerDay, start: new Date(T0) });
  const memory = createMemoryJourneyPorts(clock);
  const steps: string[] = [];
  const runner = createJourneyRunner({
    machines: { member: compileJourney(journey) },
    clock,
    store: log,
    parkWaitsOverMs: options.parkWaitsOverMs,
    runStep: (task) => {
      steps.push(`${task.executionName} ${task.stepId}`);
      return runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE });
    },
  });
  const userIds = Array.from({ length: options.users }, (_, i) => userIdFor(journey, false, `user${i}`));
  for (const userId of userIds) {
    memory.setProfile(profileFor(userId, 'member'));
    await runner.start(`member-${userId}`, 'member', { userId });
  }
  return { folder, log, runner, steps, published: memory.published };
}

const collectGarbage = (): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
};

describe('parking executions in long Waits', () => {
  it('parks an execution in a long Wait and carries it on from its recorded position, as if it had waited in the library', async () => {
    // The member journey waits 2 days, then 4: 1.2 s and 2.4 s at 600 ms a day.
    const run = async (parkWaitsOverMs: number) => {
      const { folder, log, runner, steps, published } = await runMember({ msPerDay: 600, parkWaitsOverMs, users: 1 });
      let mostParked = 0;
      while (runner.executions()[0]?.status === 'RUNNING') {
        mostParked = Math.max(mostParked, runner.parkedCount());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await log.close();
      const { executionName, ...summary } = runner.executions()[0]!;
      return {
        mostParked,
        steps: steps.map((line) => line.split(' ')[1]),
        actions: published.map((action) => `${action.kind} ${action.actionId}`),
        summary: { status: summary.status, transitions: summary.transitions, statesEntered: summary.statesEntered },
        stored: await readJourneyExecution(folder, executionName),
      };
    };
    const [parked, unparked] = [await run(300), await run(Number.POSITIVE_INFINITY)];
    expect(unparked.mostParked).toBe(0);
    expect(parked.mostParked).toBe(1);
    expect(parked.summary).toEqual(unparked.summary);
    expect(parked.summary).toMatchObject({ status: 'SUCCEEDED', transitions: 9 });
    expect(parked.steps).toEqual(['live_session_replay', 'members_group', 'member_price']);
    expect(parked.steps).toEqual(unparked.steps);
    expect(parked.actions).toEqual(unparked.actions);
    expect(parked.stored).toMatchObject({ status: 'SUCCEEDED', transitions: 9 });
  }, 30_000);

  it('a parked execution can be stopped, is left RUNNING by suspend, and a restart keeps it parked', async () => {
    const { folder, log, runner } = await runMember({ msPerDay: DAY_MS, parkWaitsOverMs: 10_000, users: 2 });
    while (runner.parkedCount() < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    const [first, second] = runner.executions();
    await runner.stop(first!.executionName);
    expect(runner.parkedCount()).toBe(1);
    await runner.suspend();
    await log.close();
    expect(await readJourneyExecution(folder, first!.executionName)).toMatchObject({ status: 'ABORTED' });
    expect(await readJourneyExecution(folder, second!.executionName)).toMatchObject({
      status: 'RUNNING',
      position: { state: 'wait_after_replay', wakeAt: expect.any(String) },
    });

    const reopened = await openJourneyExecutionLog(folder);
    const restarted = createJourneyRunner({
      machines: { member: compileJourney(journey) },
      clock: createScaledClock({ msPerDay: DAY_MS, start: new Date(Date.parse(T0) + 60_000) }),
      store: reopened,
      runStep: () => Promise.reject(new Error('no step is due within two days')),
    });
    expect(await restarted.resume()).toBe(1);
    // Straight back to parked: no library run is started for a Wait that lasts two more days.
    expect(restarted.parkedCount()).toBe(1);
    await restarted.suspend();
    await reopened.close();
  });

  it('holds a few KB per waiting execution instead of a library run (about 16 KB)', async () => {
    const gc = collectGarbage();
    const users = 1_000;
    const measure = async (parkWaitsOverMs: number): Promise<number> => {
      gc();
      const before = process.memoryUsage().heapUsed;
      const { log, runner } = await runMember({ msPerDay: DAY_MS, parkWaitsOverMs, users });
      // Every execution has sent its first step and entered the two-day Wait.
      while (runner.executions().some((execution) => !execution.statesEntered.includes('wait_after_replay')))
        await new Promise((resolve) => setTimeout(resolve, 20));
      if (parkWaitsOverMs < DAY_MS) while (runner.parkedCount() < users) await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
      const perExecution = (process.memoryUsage().heapUsed - before) / users;
      await runner.suspend();
      await log.close();
      return perExecution;
    };
    const parkedBytes = await measure(10_000);
    // What the ports, the store's record and the runner's summary hold per user (about 6 KB), with room for noise;
    // left waiting in the library, each took about 16 KB.
    expect(parkedBytes).toBeLessThan(9_000);
  }, 60_000);

  it('keeps no library run for a finished execution, whose name stays taken', async () => {
    const gc = collectGarbage();
    const users = 1_000;
    gc();
    const before = process.memoryUsage().heapUsed;
    // Never parked: each waits inside the library until it is stopped, as a demoted user's journey is.
    const { log, runner } = await runMember({ msPerDay: DAY_MS, parkWaitsOverMs: Number.POSITIVE_INFINITY, users });
    while (runner.executions().some((execution) => !execution.statesEntered.includes('wait_after_replay')))
      await new Promise((resolve) => setTimeout(resolve, 20));
    for (const { executionName } of runner.executions()) await runner.stop(executionName);
    gc();
    const perExecution = (process.memoryUsage().heapUsed - before) / users;
    expect(runner.executions().every((execution) => execution.status === 'ABORTED')).toBe(true);
    expect(await runner.start(runner.executions()[0]!.executionName, 'member', { userId: 'someone' })).toBe('already-exists');
    await log.close();
    expect(perExecution).toBeLessThan(9_000);
  }, 60_000);
});
