/**
 * The production counters on the embedded stack (dynalite, the local runner, the real handlers): `strata report`'s
 * census matches the profiles counted directly, a redelivered tier change counts once, held-out and treated
 * conversions are counted over the same horizon, and operator paths (lock, forget) keep the census exact. Journey
 * funnels hold an execution once the nightly count has drained its tally (core/tally-batches.ts): the tests that read
 * them run that count first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDynamoCounters } from '../../functions/aws/dynamo-counters.js';
import { readProductionReport, renderProductionHtml, reportCommand } from '../../functions/cli/commands/report.js';
import { loadValidRuleset } from '../../functions/cli/commands/simulate.js';
import { COUNTER_NAMES, type ProductionReport } from '../../functions/core/analytics.js';
import { addDays, localDate } from '../../functions/core/dates.js';
import { type TierServices, ingestEvent } from '../../functions/core/ingest.js';
import { journeyStepSpec } from '../../functions/core/journey/compile-journey.js';
import { isHeldOut } from '../../functions/core/journey/decide-journey-step.js';
import type { JourneyStepResult, JourneyTaskInput } from '../../functions/core/journey/journey-task.js';
import { runJourneyStep } from '../../functions/core/journey/run-journey-step.js';
import { countTallies } from '../../functions/core/tally-batches.js';
import { journeyStepStore } from '../../functions/handlers/journey-step.js';
import { instantAtLocalTime } from '../../functions/core/local-time.js';
import { forgetUser, lockUser } from '../../functions/core/operator.js';
import type { StoppedExecution } from '../../functions/core/ports.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import { type VirtualClock, createVirtualClock } from '../../functions/local/clock.js';
import { DYNALITE_FOLDER } from '../../functions/local/local-data.js';
import { type LocalStack, startLocalStack } from '../../functions/local/local-stack.js';
import { countLeaseAt } from '../helpers/count-lease.js';

const DAY0 = '2026-03-02';

let ruleset: Ruleset;
let clock: VirtualClock;
let stack: LocalStack;

async function sendEvent(userId: string, type: string, eventId: string, properties: Record<string, unknown> = {}): Promise<void> {
  const at = clock.now().toISOString();
  await stack.bus.put([
    {
      version: '0',
      id: eventId,
      'detail-type': type,
      source: 'test.app',
      account: '000000000000',
      time: at.replace(/\.\d{3}Z$/, 'Z'),
      region: 'local',
      resources: [],
      detail: { eventId, userId, type, occurredAt: at, properties },
    },
  ]);
  await stack.settle();
}

/** Users per tier, counted from the profiles themselves (a Scan: the thing the counters exist to avoid). */
async function profilesByTier(): Promise<Record<string, number>> {
  const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((tier) => [tier.id, 0]));
  let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
  do {
    const page = await stack.dynalite.client.send(
      new ScanCommand({
        TableName: stack.dynalite.tableName,
        FilterExpression: 'sk = :profile',
        ExpressionAttributeValues: { ':profile': { S: 'PROFILE' } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of page.Items ?? []) {
      const tier = item['tier']?.S;
      if (tier) tiers[tier] = (tiers[tier] ?? 0) + 1;
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return tiers;
}

const counters = () => createDynamoCounters({ client: stack.dynalite.client, tableName: stack.dynalite.tableName });
const report = async () => readProductionReport(ruleset, counters(), localDate(clock.now(), ruleset.timezone), 30);
/** The nightly review's count step: the tallies of the executions that ended so far reach the funnels. */
const countQueuedTallies = async () =>
  countTallies(
    { source: stack.tallies, batches: counters() },
    { drainDate: localDate(clock.now(), ruleset.timezone), lease: countLeaseAt('test-review', clock.now()), hasTimeLeft: () => true },
  );

beforeEach(async () => {
  ruleset = await loadValidRuleset(process.cwd(), 'the ruleset');
  clock = createVirtualClock(instantAtLocalTime(DAY0, 10 * 60, ruleset.timezone));
  stack = await startLocalStack({ ruleset, clock, batchWindowMs: 0 });
  clock.settleWith(() => stack.settle());
  await stack.store.setReviewCheckpoint(addDays(DAY0, -1));
});
afterEach(async () => {
  await stack.close();
});

describe('production counters on the local stack', () => {
  it('report matches the profiles counted directly after a small run with promotions, a lock and an erasure', async () => {
    for (let user = 0; user < 12; user++) await sendEvent(`u${user}`, 'app.opened', `open-${user}`);
    // Three active days and a completed lesson make a member (rules/member.json).
    for (let day = 1; day <= 3; day++) {
      await clock.advanceTo(new Date(instantAtLocalTime(addDays(DAY0, day), 10 * 60, ruleset.timezone)));
      for (let user = 0; user < 5; user++) {
        await sendEvent(`u${user}`, 'app.opened', `open-${user}-${day}`);
        await sendEvent(`u${user}`, 'content.completed', `done-${user}-${day}`, { contentId: 'lesson-1' });
      }
    }
    await lockUser(stack.services, 'u7', { tier: 'core', reason: 'partner' });
    await forgetUser({ ...stack.services, eraser: stack.store, erasurePublisher: { publishUserForgotten: async () => {} } }, 'u8');
    await stack.settle();
    await countQueuedTallies();

    const direct = await profilesByTier();
    expect(direct['member']).toBeGreaterThan(0);
    expect(direct['core']).toBe(1);
    const production = await report();
    expect(production.census).toEqual(direct);
    expect(production.flows).toContainEqual({ from: null, to: 'visitor', count: 12 });
    expect(production.flows).toContainEqual({ from: 'visitor', to: null, count: 1 });
    const visitorJourney = production.journeys.find((journey) => journey.tier === 'visitor')!;
    expect(visitorJourney.entered).toBe(12);
    expect(visitorJourney.steps.some((step) => step.sent > 0)).toBe(true);
    expect(renderProductionHtml(production)).toContain('Strata production report');
  });

  it("strata report's funnels match the executions' steps once the nightly review has counted them, and say how many wait", async () => {
    await stack.close();
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-report-funnel-'));
    try {
      const steps: Array<{ task: JourneyTaskInput; result: JourneyStepResult }> = [];
      const startOnFolder = () =>
        startLocalStack({
          ruleset,
          clock,
          batchWindowMs: 0,
          dynalitePath: join(dataDir, DYNALITE_FOLDER),
          tallyQueueDir: dataDir,
          onActivity: (activity) => {
            if (activity.kind === 'journey-step') steps.push(activity);
          },
        });
      /** `strata report` itself, on the folder of the stopped stack. */
      const cliReport = async (json: boolean): Promise<string[]> => {
        const lines: string[] = [];
        const program = new Command('strata').exitOverride();
        program.addCommand(reportCommand({ info: (line) => lines.push(line), error: (line) => lines.push(line) }));
        await program.parseAsync(['report', '--data', dataDir, '--rules', process.cwd(), '--days', '400', ...(json ? ['--json'] : [])], {
          from: 'user',
        });
        return lines;
      };
      stack = await startOnFolder();
      clock.settleWith(() => stack.settle());
      await stack.store.setReviewCheckpoint(addDays(DAY0, -1));
      for (let user = 0; user < 10; user++) await sendEvent(`f${user}`, 'app.opened', `open-f${user}`);
      // Four become members on the third day, which stops their visitor journeys; the others run theirs to the end.
      for (let day = 1; day <= 3; day++) {
        await clock.advanceTo(new Date(instantAtLocalTime(addDays(DAY0, day), 10 * 60, ruleset.timezone)));
        for (let user = 0; user < 4; user++) {
          await sendEvent(`f${user}`, 'app.opened', `open-f${user}-${day}`);
          await sendEvent(`f${user}`, 'content.completed', `done-f${user}-${day}`, { contentId: 'lesson-1' });
        }
      }
      await clock.advanceTo(new Date(instantAtLocalTime(addDays(DAY0, 20), 10 * 60, ruleset.timezone)));
      const ended = new Set(
        stack.runner
          .executions()
          .filter((execution) => execution.status !== 'RUNNING')
          .map((e) => e.executionName),
      );
      expect(ended.size).toBeGreaterThanOrEqual(10);
      const waiting = await stack.tallies.waiting();
      expect(waiting).toBeGreaterThan(0);
      const funnelOf = (report: ProductionReport, journeyId: string) =>
        Object.fromEntries(
          report.journeys
            .find((journey) => journey.journeyId === journeyId)!
            .steps.map((step) => [step.stepId, { sent: step.sent, deferred: step.deferred }]),
        );
      const visitor = ruleset.journeys['visitor']!;
      // Before the nightly count: the entries are there, the steps wait, and the report says how many journeys do.
      const before = await report();
      expect(Object.values(funnelOf(before, visitor.id)).every((step) => step.sent === 0)).toBe(true);
      await stack.close();
      expect((JSON.parse((await cliReport(true)).join('\n')) as ProductionReport).talliesWaiting).toBe(waiting);
      expect(await cliReport(false)).toContain(
        `${waiting} ended journey executions wait for the nightly count: their steps are not in the funnels below yet`,
      );
      stack = await startOnFolder();
      clock.settleWith(() => stack.settle());

      const review = await stack.runNightlyReview();
      expect(review.talliesCounted).toBe(waiting);
      expect(await stack.tallies.waiting()).toBe(0);
      const after = await report();
      for (const journey of Object.values(ruleset.journeys)) {
        const expected = funnelOf(after, journey.id);
        for (const stepId of Object.keys(expected)) expected[stepId] = { sent: 0, deferred: 0 };
        for (const { task, result } of steps) {
          if (task.journeyId !== journey.id || !ended.has(task.executionName) || !(task.stepId in expected)) continue;
          if (result.outcome === 'sent') expected[task.stepId]!.sent += 1;
          if (result.outcome === 'deferred') expected[task.stepId]!.deferred += 1;
        }
        expect(funnelOf(after, journey.id), journey.id).toEqual(expected);
      }
      expect(Object.values(funnelOf(after, visitor.id)).some((step) => step.sent > 0)).toBe(true);

      // `strata report` on the stopped stack's folder reads the same funnels, and says nothing waits.
      await stack.close();
      const printed = JSON.parse((await cliReport(true)).join('\n')) as ProductionReport;
      expect(printed.talliesWaiting).toBe(0);
      for (const journey of Object.values(ruleset.journeys)) expect(funnelOf(printed, journey.id)).toEqual(funnelOf(after, journey.id));
    } finally {
      stack = await startLocalStack({ ruleset, clock, batchWindowMs: 0 });
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('counts a tier change once when its outbox flush fails after counting and is repeated by a redelivery', async () => {
    let failures = 1;
    const services: TierServices = {
      ...stack.services,
      journeys: {
        async start(journey, userId) {
          if (failures-- > 0) throw new Error('Step Functions outage');
          return stack.services.journeys.start(journey, userId);
        },
        stop: (name) => stack.services.journeys.stop(name),
      },
    };
    const event = { eventId: 'e-1', userId: 'redelivered', type: 'app.opened', occurredAt: clock.now().toISOString(), properties: {} };
    const first = await ingestEvent(services, event);
    expect(first.outboxError).toBeDefined();
    // The redelivery (after the lease runs out) flushes the outbox again, counter write included.
    await clock.advanceTo(new Date(clock.now().getTime() + 120_000));
    await ingestEvent(services, event);
    expect((await stack.store.loadUser('redelivered', DAY0)).profile?.outboxVersion).toBeUndefined();
    const production = await report();
    expect(production.census['visitor']).toBe(1);
    expect(production.flows).toEqual([{ from: null, to: 'visitor', count: 1 }]);
  });

  it('counts a send once when its step is retried after a failed publish', async () => {
    const journey = ruleset.journeys['visitor']!;
    let userId = 'sender-0';
    for (let i = 1; isHeldOut(userId, journey); i++) userId = `sender-${i}`;
    await sendEvent(userId, 'app.opened', `open-${userId}`);
    const stepId = journey.steps.find((step) => step.type === 'content')!.id;
    const task = {
      ...journeyStepSpec(journey, stepId),
      userId,
      executionName: `manual-${userId}`,
      startedAt: clock.now().toISOString(),
    };
    let publishFailures = 1;
    const ports = {
      store: journeyStepStore(stack.store),
      publisher: {
        async publishJourneyAction() {
          if (publishFailures-- > 0) throw new Error('bus outage');
        },
      },
      clock,
      counters: counters(),
    };
    const sentSoFar = async () =>
      (await counters().readJourneyDays(journey.id, DAY0)).reduce((sum, day) => sum + (day.counts[COUNTER_NAMES.sent(stepId)] ?? 0), 0);
    const before = await sentSoFar();
    await expect(runJourneyStep(ports, { task, rulesetTimeZone: ruleset.timezone })).rejects.toThrow('bus outage');
    const retried = await runJourneyStep(ports, { task, rulesetTimeZone: ruleset.timezone });
    expect(retried.outcome).toBe('sent');
    expect((await sentSoFar()) - before).toBe(1);
  });

  it('counts each journey once, when it ends: at its last step, or by the flush that stops it on a tier change', async () => {
    await stack.close();
    const steps: Array<{ task: JourneyTaskInput; result: JourneyStepResult }> = [];
    stack = await startLocalStack({
      ruleset,
      clock,
      batchWindowMs: 0,
      onActivity: (activity) => {
        if (activity.kind === 'journey-step') steps.push(activity);
      },
    });
    clock.settleWith(() => stack.settle());
    await stack.store.setReviewCheckpoint(addDays(DAY0, -1));
    const visitor = ruleset.journeys['visitor']!;
    const users: string[] = [];
    for (let i = 0; users.length < 4; i++) if (!isHeldOut(`j${i}`, visitor)) users.push(`j${i}`);
    for (const userId of users) await sendEvent(userId, 'app.opened', `open-${userId}`);
    const counted = async (journeyId: string): Promise<Record<string, number>> => {
      const totals: Record<string, number> = {};
      for (const day of await counters().readJourneyDays(journeyId, DAY0))
        for (const [name, value] of Object.entries(day.counts)) totals[name] = (totals[name] ?? 0) + value;
      return totals;
    };
    // Sent, but running: nothing is written yet.
    expect(steps.filter((step) => step.result.outcome === 'sent').length).toBeGreaterThan(0);
    expect(await counted(visitor.id)).toEqual({});
    // Two become members, which stops their visitor journeys; the other two see theirs through.
    for (let day = 1; day <= 3; day++) {
      await clock.advanceTo(new Date(instantAtLocalTime(addDays(DAY0, day), 10 * 60, ruleset.timezone)));
      for (const userId of users.slice(0, 2)) {
        await sendEvent(userId, 'app.opened', `open-${userId}-${day}`);
        await sendEvent(userId, 'content.completed', `done-${userId}-${day}`, { contentId: 'lesson-1' });
      }
    }
    await clock.advanceTo(new Date(instantAtLocalTime(addDays(DAY0, 20), 10 * 60, ruleset.timezone)));
    const executions = stack.runner.executions();
    expect(executions.filter((execution) => execution.status === 'ABORTED').length).toBe(2);
    expect(executions.every((execution) => execution.status !== 'RUNNING')).toBe(true);
    await countQueuedTallies();
    // Every step outcome of every execution, counted exactly once, from the steps as they ran.
    for (const journey of Object.values(ruleset.journeys)) {
      const expected: Record<string, number> = {};
      for (const { task, result } of steps.filter((step) => step.task.journeyId === journey.id)) {
        const name =
          result.outcome === 'sent'
            ? COUNTER_NAMES.sent(task.stepId)
            : result.outcome === 'deferred'
              ? COUNTER_NAMES.deferred(task.stepId)
              : result.outcome === 'exit'
                ? COUNTER_NAMES.exited(task.stepId, result.reason)
                : undefined;
        if (name) expected[name] = (expected[name] ?? 0) + 1;
      }
      expect(await counted(journey.id)).toEqual(expected);
    }
  });

  it('counts a stopped journey once when the flush that stopped it fails afterwards and is repeated', async () => {
    const visitor = ruleset.journeys['visitor']!;
    let userId = 'stopped-0';
    for (let i = 1; isHeldOut(userId, visitor); i++) userId = `stopped-${i}`;
    await sendEvent(userId, 'app.opened', `open-${userId}`);
    let failures = 1;
    const services: TierServices = {
      ...stack.services,
      journeys: {
        start: (journey, user) => stack.services.journeys.start(journey, user),
        async stop(name): Promise<StoppedExecution | undefined> {
          const stopped = (await stack.services.journeys.stop(name)) ?? undefined;
          if (failures-- > 0) throw new Error('the stop went through, its answer was lost');
          return stopped;
        },
      },
    };
    await expect(lockUser(services, userId, { tier: 'core', reason: 'partner' })).rejects.toThrow('answer was lost');
    // The next event (after the lease runs out) flushes the outbox again: the stop is repeated, and so the count.
    await clock.advanceTo(new Date(clock.now().getTime() + 120_000));
    const event = { eventId: 'again', userId, type: 'app.opened', occurredAt: clock.now().toISOString(), properties: {} };
    expect((await ingestEvent(services, event)).outboxError).toBeUndefined();
    await stack.settle();
    await countQueuedTallies();
    const firstSend = visitor.steps.find((step) => step.type === 'content')!.id;
    const sent = (await counters().readJourneyDays(visitor.id, DAY0)).reduce((sum, day) => sum + (day.counts[COUNTER_NAMES.sent(firstSend)] ?? 0), 0);
    expect(sent).toBe(1);
  });

  it("counts a journey's last step once when it is retried after a failed publish; a deferral writes nothing", async () => {
    const journey = ruleset.journeys['visitor']!;
    let userId = 'last-0';
    for (let i = 1; isHeldOut(userId, journey); i++) userId = `last-${i}`;
    await sendEvent(userId, 'app.opened', `open-${userId}`);
    const sends = journey.steps.filter((step) => step.type === 'content' || step.type === 'invite' || step.type === 'offer');
    const [firstSend, lastSend] = [sends[0]!.id, sends[sends.length - 1]!.id];
    const task = (state: JourneyTaskInput['state']): JourneyTaskInput => ({
      ...journeyStepSpec(journey, lastSend),
      userId,
      executionName: `manual-${userId}`,
      startedAt: clock.now().toISOString(),
      state,
      endsOn: ['sent'],
    });
    let publishFailures = 1;
    const ports = (now: Date) => ({
      store: journeyStepStore(stack.store),
      publisher: {
        async publishJourneyAction() {
          if (publishFailures-- > 0) throw new Error('bus outage');
        },
      },
      clock: { now: () => now },
      counters: counters(),
      tallies: stack.tallies,
    });
    const counted = async (): Promise<Record<string, number>> => {
      const totals: Record<string, number> = {};
      for (const day of await counters().readJourneyDays(journey.id, DAY0))
        for (const [name, value] of Object.entries(day.counts)) totals[name] = (totals[name] ?? 0) + value;
      return totals;
    };
    const before = await counted();
    // 22:00 in the journey's quiet hours: deferred twice, counted in its result and nowhere else.
    const night = new Date(instantAtLocalTime(DAY0, 22 * 60, ruleset.timezone));
    const firstSent = { outcome: 'sent', at: clock.now().toISOString(), actionId: 'a1' };
    const deferred = await runJourneyStep(ports(night), { task: task({ results: { [firstSend]: firstSent } }), rulesetTimeZone: ruleset.timezone });
    expect(deferred).toMatchObject({ outcome: 'deferred', reason: 'quiet-hours', deferrals: 1 });
    const again = await runJourneyStep(ports(night), {
      task: task({ results: { [firstSend]: firstSent, [lastSend]: deferred } }),
      rulesetTimeZone: ruleset.timezone,
    });
    expect(again).toMatchObject({ outcome: 'deferred', deferrals: 2 });
    expect(await stack.tallies.waiting()).toBe(0);
    await countQueuedTallies();
    expect(await counted()).toEqual(before);
    // The next morning it sends, and ends the execution: one write for the execution, kept once through the retry.
    const morning = new Date(instantAtLocalTime(addDays(DAY0, 1), 9 * 60, ruleset.timezone));
    const state = { results: { [firstSend]: firstSent, [lastSend]: again } };
    await expect(runJourneyStep(ports(morning), { task: task(state), rulesetTimeZone: ruleset.timezone })).rejects.toThrow('bus outage');
    const retried = await runJourneyStep(ports(morning), { task: task(state), rulesetTimeZone: ruleset.timezone });
    expect(retried).toMatchObject({ outcome: 'sent', deferrals: 2 });
    await countQueuedTallies();
    const after = await counted();
    const added = Object.fromEntries(
      Object.entries(after)
        .map(([name, value]) => [name, value - (before[name] ?? 0)])
        .filter(([, value]) => value !== 0),
    );
    expect(added).toEqual({ [COUNTER_NAMES.sent(firstSend)]: 1, [COUNTER_NAMES.sent(lastSend)]: 1, [COUNTER_NAMES.deferred(lastSend)]: 2 });
  });

  it('counts held-out and treated conversions over the same horizon: entry until the planned length ends', async () => {
    const journey = ruleset.journeys['visitor']!;
    const heldOut: string[] = [];
    const treated: string[] = [];
    for (let i = 0; heldOut.length < 2 || treated.length < 2; i++) {
      const userId = `c${i}`;
      if (isHeldOut(userId, journey)) heldOut.length < 2 && heldOut.push(userId);
      else if (treated.length < 2) treated.push(userId);
    }
    for (const userId of [...heldOut, ...treated]) await sendEvent(userId, 'app.opened', `open-${userId}`);
    const purchase = { product: 'pm-camp-4day', amount: 99 };
    // Within the horizon: one of each group converts, twice (the second purchase of an entry counts nothing).
    await clock.advanceTo(new Date(clock.now().getTime() + 2 * 86_400_000));
    for (const userId of [heldOut[0]!, treated[0]!]) {
      await sendEvent(userId, 'order.paid', `buy-${userId}`, purchase);
      await sendEvent(userId, 'order.paid', `buy-again-${userId}`, purchase);
    }
    // After the journey's planned length (7 days): the other two buy, too late to count for either group.
    await clock.advanceTo(new Date(clock.now().getTime() + 8 * 86_400_000));
    for (const userId of [heldOut[1]!, treated[1]!]) await sendEvent(userId, 'order.paid', `buy-${userId}`, purchase);

    const visitor = (await report()).journeys.find((j) => j.journeyId === journey.id)!;
    expect(visitor.observed.heldOut).toMatchObject({ users: 2, converted: 1 });
    expect(visitor.observed.treated).toMatchObject({ users: 2, converted: 1 });
    expect(visitor.observed.difference).toBeNull();
    const entryDay = (await counters().readTierDays()).find((day) => day.date === DAY0)!;
    expect(entryDay.counts[COUNTER_NAMES.convertedHeldOut(journey.id)]).toBe(1);
    expect(entryDay.counts[COUNTER_NAMES.convertedTreated(journey.id)]).toBe(1);
  });
});
