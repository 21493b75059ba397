/**
 * The embedded stack: the production handlers and adapters wired to local stand-ins.
 *
 *   producer --PutEvents--> local bus --USER_EVENTS_PATTERN--> local queue --> ingest handler --> DynamoDB store
 *                                                                                (dynalite)
 *   ingest / review --> journey starter --> local journey runner (the compiled ASL) --> journey-step handler
 *   notices and JourneyActions --> local bus --> the live log, actions.jsonl
 *
 * Nothing here decides anything: the decisions are the core's, behind the same handlers that run in Lambda.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { journeyActionEntry, noticeEntry, userForgottenEntry } from '../aws/eventbridge-publisher.js';
import { createDynamoCounters } from '../aws/dynamo-counters.js';
import { createDynamoTierStore, dayRetentionDays, type DynamoTierStore } from '../aws/dynamo-store.js';
import type { DeadLetter } from '../aws/sqs-dead-letter.js';
import { type EventBridgeEnvelope, JOURNEY_ACTIONS_PATTERN, TIER_NOTICES_PATTERN, USER_EVENTS_PATTERN } from '../core/event-pattern.js';
import type { TierServices } from '../core/ingest.js';
import type { OperatorServices, UserForgottenNotice } from '../core/operator.js';
import { compileJourney } from '../core/journey/compile-journey.js';
import type { JourneyAction } from '../core/journey/decide-journey-step.js';
import type { JourneyStepResult, JourneyTaskInput } from '../core/journey/journey-task.js';
import type { JourneyStarter, NoticePublisher } from '../core/ports.js';
import type { Ruleset } from '../core/ruleset.js';
import type { TierNotice } from '../core/state.js';
import { createIngestHandler } from '../handlers/ingest.js';
import { createJourneyStepHandler, journeyStepStore } from '../handlers/journey-step.js';
import { type RejudgePlan, createRejudgeHandler } from '../handlers/rejudge.js';
import { type ShardReviewResult, type ReviewPlan, type TallyCountStepResult, createReviewHandler } from '../handlers/review.js';
import type { Clock } from './clock.js';
import { startDynalite, type RunningDynalite } from './dynalite.js';
import { openJourneyExecutionLog } from './journey-execution-log.js';
import { createJourneyRunner, type JourneyRunner } from './journey-runner.js';
import { type LocalBus, createLocalBus } from './local-bus.js';
import { type IngestLog, openIngestLog } from './ingest-log.js';
import { type LocalQueue, createLocalQueue } from './local-queue.js';
import { type LocalTallyQueue, openLocalTallyQueue } from './local-tally-queue.js';

export const LOCAL_BUS_NAME = 'strata';
export const LOCAL_REVIEW_SHARDS = 4;

export type StackActivity =
  | { kind: 'notice'; notice: TierNotice }
  | { kind: 'forgotten'; notice: UserForgottenNotice }
  | { kind: 'action'; action: JourneyAction }
  | { kind: 'dead-letter'; letter: DeadLetter }
  | { kind: 'journey-started'; executionName: string; tier: string; userId: string; at: string }
  | { kind: 'journey-stopped'; executionName: string; at: string }
  | { kind: 'journey-step'; task: JourneyTaskInput; result: JourneyStepResult; at: string }
  /** A roll-up of a heavy user's sealed days stopped (it never fails the read); a later window read resumes it. */
  | { kind: 'roll-up-stopped'; userId: string; reason: string };

export interface LocalStackOptions {
  ruleset: Ruleset;
  clock: Clock;
  /** Persist dynalite here; in memory when absent. */
  dynalitePath?: string;
  dynalitePort?: number;
  /** Run dynalite in a worker thread, so that it and the handlers use two cores. */
  dynaliteThread?: 'main' | 'worker';
  onActivity?: (activity: StackActivity) => void | Promise<void>;
  /** Lambda concurrency of the ingest queue's consumer. */
  ingestConcurrency?: number;
  /** How long the queue lets a batch fill up; a backtest that settles after every wave wants 0. */
  batchWindowMs?: number;
  /**
   * Record journey executions in this folder (journey-executions.jsonl), carry on with the running ones on start,
   * and leave them running on close. Without it journeys live in memory and close() ends them.
   */
  journeyDataDir?: string;
  /** Makes acceptance durable: the ingest queue is written to (and replayed from) a log in this folder. */
  ingestLogDir?: string;
  /** Keeps the queue of journey executions' tallies (waiting for the nightly count) in a file here; in memory when absent. */
  tallyQueueDir?: string;
  /** How far ahead of the clock an event may be stamped; the core's default (one day) when absent. */
  maxEventFutureMs?: number;
}

export interface NightlyReviewResult {
  dates: string[];
  usersDue: number;
  usersChanged: number;
  /** Journey executions' tallies counted into the funnels by this review. */
  talliesCounted: number;
}

export interface LocalStack {
  ruleset: Ruleset;
  bus: LocalBus;
  queue: LocalQueue;
  store: DynamoTierStore;
  runner: JourneyRunner;
  dynalite: RunningDynalite;
  /** Where journey executions' tallies wait for the nightly count. */
  tallies: LocalTallyQueue;
  services: TierServices;
  /** The same services with erasure: what `strata lock`, `unlock` and `forget` act through. */
  operator: OperatorServices;
  /** Events applied for the first time, and deliveries recognised as duplicates. */
  counters: { eventsRecorded: number; duplicates: number };
  /** Journeys that were running when the stack last stopped (or crashed) and carry on from where they were. */
  resumedJourneys: number;
  /** The nightly review as the deployed state machine runs it: plan, every shard, the tally count, then the checkpoint. */
  runNightlyReview(): Promise<NightlyReviewResult>;
  /** Judges every user under the ruleset if it is not the one last re-judged under (a restart with new rules). */
  runRejudge(): Promise<{ needed: boolean; usersJudged: number; usersChanged: number }>;
  /** Resolves once the queue is empty and every journey is finished or waiting for the clock. */
  settle(): Promise<void>;
  /** Resolves with how many accepted events are not yet applied (kept in the ingest log for the next start). */
  close(): Promise<{ remaining: number }>;
}

function quietLogger(serviceName: string): Logger {
  // Handlers log JSON for CloudWatch; on a terminal the stack prints its own readable log instead.
  return new Logger({ serviceName, logLevel: 'ERROR' });
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { ruleset, clock } = options;
  const report = async (activity: StackActivity): Promise<void> => {
    await options.onActivity?.(activity);
  };
  const dynalite = await startDynalite({
    ...(options.dynalitePath ? { path: options.dynalitePath } : {}),
    ...(options.dynalitePort ? { port: options.dynalitePort } : {}),
    ...(options.dynaliteThread ? { thread: options.dynaliteThread } : {}),
  });
  const baseStore = createDynamoTierStore({
    client: dynalite.client,
    tableName: dynalite.tableName,
    shardCount: LOCAL_REVIEW_SHARDS,
    timeZone: ruleset.timezone,
    retentionDays: dayRetentionDays(ruleset.maxWindowDays),
    // Logged as the Lambdas log it, so that a roll-up that keeps stopping shows locally too.
    onRollUpFailure: (userId, error) =>
      void report({ kind: 'roll-up-stopped', userId, reason: error instanceof Error ? error.message : String(error) }),
  });
  const analytics = createDynamoCounters({ client: dynalite.client, tableName: dynalite.tableName });
  let tallies: LocalTallyQueue;
  try {
    tallies = await openLocalTallyQueue(options.tallyQueueDir);
  } catch (error) {
    await dynalite.close();
    throw error;
  }
  const counters = { eventsRecorded: 0, duplicates: 0 };
  // Counted at the store, the one place that knows whether a delivery was new.
  const store: DynamoTierStore = {
    ...baseStore,
    async recordEvent(userId, eventKey, increment) {
      const result = await baseStore.recordEvent(userId, eventKey, increment);
      if (result.duplicate) counters.duplicates += 1;
      else counters.eventsRecorded += 1;
      return result;
    },
    // A copy recorded above that turns out to be a resend with another date is taken back out: a duplicate after all.
    async settleCopy(userId, eventKey, increment, copy) {
      const countsOn = await baseStore.settleCopy(userId, eventKey, increment, copy);
      if (countsOn !== increment.date) {
        counters.eventsRecorded -= 1;
        counters.duplicates += 1;
      }
      return countsOn;
    },
  };
  const bus = createLocalBus(clock);
  const deliver = (entries: PutEventsRequestEntry[]): Promise<void> => bus.putEntries(entries);
  const publisher: NoticePublisher & { publishJourneyAction(action: JourneyAction): Promise<void> } = {
    publishNotices: (notices) => deliver(notices.map((notice) => noticeEntry(LOCAL_BUS_NAME, notice))),
    publishJourneyAction: (action) => deliver([journeyActionEntry(LOCAL_BUS_NAME, action)]),
  };

  const runStep = createJourneyStepHandler({
    ruleset,
    ports: { store: journeyStepStore(store), publisher, clock, counters: analytics, tallies },
    logger: quietLogger('strata-journey-step'),
  });
  const machines = Object.fromEntries(Object.entries(ruleset.journeys).map(([tier, journey]) => [tier, compileJourney(journey)]));
  const executionLog = options.journeyDataDir ? await openJourneyExecutionLog(options.journeyDataDir) : undefined;
  const runner = createJourneyRunner({
    machines,
    clock,
    ...(executionLog ? { store: executionLog } : {}),
    runStep: async (task) => {
      const result = await runStep(task);
      await report({ kind: 'journey-step', task, result, at: clock.now().toISOString() });
      return result;
    },
  });
  const journeys: JourneyStarter = {
    async start(journey, userId) {
      const outcome = await runner.start(journey.executionName, journey.tier, { userId });
      if (outcome === 'started')
        await report({ kind: 'journey-started', executionName: journey.executionName, tier: journey.tier, userId, at: clock.now().toISOString() });
      return outcome;
    },
    async stop(executionName) {
      const stopped = await runner.stop(executionName);
      await report({ kind: 'journey-stopped', executionName, at: clock.now().toISOString() });
      return stopped;
    },
  };

  const services: TierServices = { ruleset, store, journeys, publisher, clock, counters: analytics, tallies };
  const ingest = createIngestHandler({
    services,
    deadLetters: { sendToDeadLetter: (letter) => report({ kind: 'dead-letter', letter }) },
    logger: quietLogger('strata-ingest'),
    ...(options.maxEventFutureMs !== undefined ? { maxEventFutureMs: options.maxEventFutureMs } : {}),
  });
  let ingestLog: IngestLog | undefined;
  try {
    ingestLog = options.ingestLogDir ? await openIngestLog(options.ingestLogDir) : undefined;
  } catch (error) {
    await executionLog?.close();
    await tallies.close();
    await dynalite.close();
    throw error;
  }
  const queue = createLocalQueue({
    handler: ingest,
    concurrency: options.ingestConcurrency ?? 4,
    ...(options.batchWindowMs !== undefined ? { batchWindowMs: options.batchWindowMs } : {}),
    ...(ingestLog ? { log: ingestLog } : {}),
    onDeadLetter: (letter) => report({ kind: 'dead-letter', letter }),
  });
  const toMessage = (envelope: EventBridgeEnvelope) => ({ id: envelope.id, body: JSON.stringify(envelope) });
  bus.addTarget({
    name: 'ingest-queue',
    pattern: USER_EVENTS_PATTERN,
    deliver: (envelope) => queue.send([toMessage(envelope)]),
    deliverBatch: (envelopes) => queue.send(envelopes.map(toMessage)),
  });
  bus.addTarget({
    name: 'tier-notices',
    pattern: TIER_NOTICES_PATTERN,
    deliver: (envelope) =>
      envelope['detail-type'] === 'UserForgotten'
        ? report({ kind: 'forgotten', notice: envelope.detail as unknown as UserForgottenNotice })
        : report({ kind: 'notice', notice: envelope.detail as unknown as TierNotice }),
  });
  bus.addTarget({
    name: 'journey-actions',
    pattern: JOURNEY_ACTIONS_PATTERN,
    deliver: (envelope) => report({ kind: 'action', action: envelope.detail as unknown as JourneyAction }),
  });

  const review = createReviewHandler({
    services,
    shardCount: LOCAL_REVIEW_SHARDS,
    logger: quietLogger('strata-review'),
    census: analytics,
    tallies: { source: tallies, batches: analytics },
  });
  // With every target wired, so that a resumed step's action is delivered.
  const resumedJourneys = await runner.resume();

  return {
    ruleset,
    bus,
    queue,
    store,
    runner,
    dynalite,
    tallies,
    services,
    operator: {
      ...services,
      eraser: store,
      erasurePublisher: { publishUserForgotten: (notice) => deliver([userForgottenEntry(LOCAL_BUS_NAME, notice)]) },
    },
    counters,
    resumedJourneys,
    async runNightlyReview() {
      const plan = (await review({ step: 'plan' })) as ReviewPlan;
      const results = (await Promise.all(plan.shards.map((shard) => review({ step: 'shard', dates: plan.dates, shard })))) as ShardReviewResult[];
      // As the state machine does, after the shards (whose flushes may stop executions) and before the checkpoint.
      let talliesCounted = 0;
      if (plan.dates.length > 0) {
        let count: TallyCountStepResult;
        do {
          // One process owns the local queue and table, so its counts share one lease owner and never wait on each other.
          count = (await review({ step: 'countTallies', owner: 'embedded-stack' })) as TallyCountStepResult;
          talliesCounted += count.counted;
        } while (count.next);
        await review({ step: 'advance', dates: plan.dates });
      }
      return {
        dates: plan.dates,
        usersDue: results.reduce((sum, r) => sum + r.usersDue, 0),
        usersChanged: results.reduce((sum, r) => sum + r.usersChanged, 0),
        talliesCounted,
      };
    },
    async runRejudge() {
      const rejudge = createRejudgeHandler({ services, store, totalSegments: LOCAL_REVIEW_SHARDS, logger: quietLogger('strata-rejudge') });
      const plan = (await rejudge({ step: 'plan' })) as RejudgePlan;
      const results = await Promise.all(
        plan.segments.map((segment) => rejudge({ step: 'segment', segment }) as Promise<{ usersJudged: number; usersChanged: number }>),
      );
      if (plan.needed) await rejudge({ step: 'complete' });
      return {
        needed: plan.needed,
        usersJudged: results.reduce((sum, r) => sum + r.usersJudged, 0),
        usersChanged: results.reduce((sum, r) => sum + r.usersChanged, 0),
      };
    },
    async settle() {
      // Ingest can start journeys and journeys can publish; loop until both are quiet.
      for (let round = 0; round < 50; round++) {
        await queue.drain();
        await runner.idle();
        if (queue.stats().inFlight === 0) return;
      }
    },
    async close() {
      const { remaining } = await queue.close();
      if (executionLog) {
        // Not StopExecution: the journeys carry on at the next start.
        await runner.suspend();
        await executionLog.close();
      } else {
        for (const execution of runner.executions()) if (execution.status === 'RUNNING') await runner.stop(execution.executionName);
      }
      await tallies.close();
      await dynalite.close();
      return { remaining };
    },
  };
}
