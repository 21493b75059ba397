/**
 * Reliability scenarios 12 and 13 (numbered as in scenarios.test.ts): the compiled journey ASL runs on
 * aws-local-stepfunctions through the local journey runner with a virtual clock, behind the real journey-step
 * handler and the real DynamoDB store on dynalite; ingest and the nightly review start and stop executions
 * through the same outbox as in AWS.
 */
import { describe, expect, it } from 'vitest';
import { createDynamoTierStore, type DynamoTierStore } from '../../functions/aws/dynamo-store.js';
import type { TierServices } from '../../functions/core/ingest.js';
import { compileJourney } from '../../functions/core/journey/compile-journey.js';
import type { JourneyAction } from '../../functions/core/journey/decide-journey-step.js';
import type { JourneyTaskInput } from '../../functions/core/journey/journey-task.js';
import type { JourneyStarter } from '../../functions/core/ports.js';
import { runReview } from '../../functions/core/review.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import { createIngestHandler } from '../../functions/handlers/ingest.js';
import { createJourneyStepHandler, journeyStepStore } from '../../functions/handlers/journey-step.js';
import { createVirtualClock } from '../../functions/local/clock.js';
import { createJourneyRunner } from '../../functions/local/journey-runner.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { throttlingError, withFaults } from '../helpers/fault-injection.js';
import { testRuleset, testTiers, testTiersFile } from '../helpers/fixtures.js';
import { journeyDocument } from '../helpers/journey-fixtures.js';
import { RecordingBus, RecordingDeadLetters, SHARDS, batch, failedIds, opened, recordsOf, silentLogger, silentMetrics } from './world.js';

const dynalite = useDynalite();
const T0 = '2026-03-10T10:00:00.000Z';
const DAY_MS = 86_400_000;
const day = (n: number): string => new Date(Date.parse(T0) + n * DAY_MS).toISOString();

/**
 * The member journey is content, wait 2 days, invite, wait 4 days, offer. Member here needs one app open in the
 * last day and has no grace, so the nightly review demotes a member who went quiet the very next night.
 */
function memberJourneyRuleset(): Ruleset {
  const tiersFile = testTiersFile({ tiers: testTiers({ member: { journey: 'journeys/member.json', graceDays: 0 } }) }) as {
    metrics: Record<string, unknown>;
  };
  tiersFile.metrics['opens1'] = { kind: 'count', windowDays: 1, eventTypes: ['app.opened'] };
  return testRuleset({
    tiers: tiersFile,
    rules: {
      member: {
        conditions: { all: [{ fact: 'opens1', operator: 'greaterThanInclusive', value: 1 }] },
        event: { type: 'qualifies', params: { tier: 'member' } },
      },
      active: {
        conditions: { all: [{ fact: 'days7', operator: 'greaterThanInclusive', value: 4 }] },
        event: { type: 'qualifies', params: { tier: 'active' } },
      },
      core: {
        conditions: { all: [{ fact: 'spend30', operator: 'greaterThanInclusive', value: 100 }] },
        event: { type: 'qualifies', params: { tier: 'core' } },
      },
    },
    extra: { 'journeys/member.json': JSON.stringify(journeyDocument()) },
  });
}

/** Ingest, review, Step Functions (local runner) and the journey-step Lambda, wired as in AWS. */
async function journeyWorld(
  options: {
    stepStore?: (store: DynamoTierStore) => DynamoTierStore;
    actionPublisher?: (publisher: { publishJourneyAction(action: JourneyAction): Promise<void> }) => {
      publishJourneyAction(action: JourneyAction): Promise<void>;
    };
  } = {},
) {
  const ruleset = memberJourneyRuleset();
  const tableName = await dynalite.freshTable();
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: SHARDS, timeZone: ruleset.timezone });
  const clock = createVirtualClock(T0);
  const actions: JourneyAction[] = [];
  const recordingActions = { publishJourneyAction: async (action: JourneyAction) => void actions.push(action) };
  const stepCalls: JourneyTaskInput[] = [];
  const stepHandler = createJourneyStepHandler({
    ruleset,
    ports: {
      store: journeyStepStore(options.stepStore ? options.stepStore(store) : store),
      publisher: options.actionPublisher ? options.actionPublisher(recordingActions) : recordingActions,
      clock,
    },
    logger: silentLogger(),
    metrics: silentMetrics(),
  });
  const runner = createJourneyRunner({
    machines: Object.fromEntries(Object.entries(ruleset.journeys).map(([tier, journey]) => [tier, compileJourney(journey)])),
    clock,
    runStep: (task) => {
      stepCalls.push(task);
      return stepHandler(task);
    },
  });
  const journeys: JourneyStarter = {
    start: (journey, userId) => runner.start(journey.executionName, journey.tier, { userId }),
    stop: (executionName) => runner.stop(executionName),
  };
  const bus = new RecordingBus();
  const services: TierServices = { ruleset, store, journeys, publisher: bus, clock };
  const ingest = createIngestHandler({ services, deadLetters: new RecordingDeadLetters(), logger: silentLogger(), metrics: silentMetrics() });
  const finish = async (): Promise<void> => {
    await clock.advanceTo(day(30));
    await runner.idle();
  };
  return { ruleset, store, clock, runner, actions, stepCalls, services, ingest, finish };
}

const actionLines = (actions: JourneyAction[]): string[] => actions.map((a) => `${a.at} ${a.kind}`);

describe('reliability scenarios: journeys', () => {
  it('12. a journey task failing twice then succeeding sends exactly once (the compiled Retry)', async () => {
    // Attempt 1: the send record is throttled before anything is written. Attempt 2: the send is recorded, then the
    // bus throttles the publish. Attempt 3: the send is already recorded, the publish goes through.
    const world = await journeyWorld({
      stepStore: (store) => withFaults(store, [{ operation: 'recordSend', call: 1, when: 'before', error: throttlingError }]),
      actionPublisher: (publisher) => withFaults(publisher, [{ operation: 'publishJourneyAction', call: 1, when: 'before', error: throttlingError }]),
    });
    const response = await world.ingest(batch(recordsOf([opened('uma', T0)])));
    expect(failedIds(response)).toEqual([]);
    await world.finish();

    expect(actionLines(world.actions)).toEqual([`${day(0)} content`, `${day(2)} invite`, `${day(6)} offer`]);
    expect(new Set(world.actions.map((a) => a.actionId)).size).toBe(3);
    expect(world.stepCalls.filter((task) => task.stepId === 'welcome')).toHaveLength(3);
    const { buckets } = await world.store.loadUserForJourney('uma', '2026-03-01');
    expect(buckets.map((b) => [b.date, b.sends])).toEqual([
      ['2026-03-10', 1],
      ['2026-03-12', 1],
      ['2026-03-16', 1],
    ]);
    const [execution] = world.runner.executions();
    expect(execution).toMatchObject({ tier: 'member', status: 'SUCCEEDED' });
    const { profile } = await world.store.loadUser('uma', '2026-03-01');
    expect(profile).toMatchObject({ tier: 'member', version: 1, journey: { executionName: execution!.executionName } });
  });

  it('13. a demotion during a journey wait: no further sends from the old journey', async () => {
    const world = await journeyWorld();
    await world.store.setReviewCheckpoint('2026-03-10');
    await world.ingest(batch(recordsOf([opened('val', T0)])));
    await world.runner.idle();
    expect(actionLines(world.actions)).toEqual([`${day(0)} content`]);

    // The next night the one open has left the 1-day window: demoted at once (no grace), during the 2-day wait.
    await world.clock.advanceTo('2026-03-11T02:00:00.000Z');
    const review = await runReview(world.services, SHARDS);
    expect(review).toMatchObject({ usersChanged: 1, transitions: { demoted: 1 } });
    await world.finish();

    expect(actionLines(world.actions)).toEqual([`${day(0)} content`]);
    expect(world.runner.executions().map((e) => [e.tier, e.status])).toEqual([['member', 'ABORTED']]);
    const { profile } = await world.store.loadUser('val', '2026-03-01');
    expect(profile).toMatchObject({ tier: 'visitor', version: 2 });
    expect(profile?.journey).toBeUndefined();
    expect((await world.store.listHistory('val', 10)).reverse().map((h) => `${h.fromTier}→${h.toTier}`)).toEqual([
      'visitor→member',
      'member→visitor',
    ]);
  });
});
