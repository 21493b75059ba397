/**
 * The journey-step Lambda: the Task that every compiled journey state machine calls, with the Task's Parameters
 * as input (see core/journey/journey-task.ts) and the step's outcome as output, which the Choice after the Task
 * routes on. The decision is the journey core's; this wires it to DynamoDB and the event bus.
 *
 * The step's parameters (what to send, the guards, quiet hours, cap and holdout) come in the Task input, compiled
 * into the execution's own journey version; only the ruleset's time zone is read from the baked-in files.
 *
 * Failures worth retrying (throttling, a bus outage) are thrown as `Strata.Transient`, which the compiled
 * definition retries with backoff; anything else fails the step into the journey's Failed state.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type JourneyUserStore, createDynamoTierStore, dayRetentionDays, isTransientError } from '../aws/dynamo-store.js';
import { createDynamoCounters } from '../aws/dynamo-counters.js';
import { PublishFailedError, createEventBridgePublisher } from '../aws/eventbridge-publisher.js';
import { userRef } from '../core/hash.js';
import { type JourneyStepPorts, type JourneyStepStore, runJourneyStep } from '../core/journey/run-journey-step.js';
import { type JourneyStepResult, type JourneyTaskInput, TransientJourneyError, journeyTaskInputSchema } from '../core/journey/journey-task.js';
import type { Ruleset } from '../core/ruleset.js';
import {
  ENV,
  HandlerOutsideBundleError,
  bakedProjectFiles,
  createDynamoDbClient,
  createEventBridgeClient,
  createHandlerMetrics,
  loadRulesetOrFail,
  redactUserId,
  requireEnv,
  requirePositiveIntegerEnv,
  systemClock,
} from './runtime.js';
import { countersWithMetrics, emitJourneyStep } from './analytics-emitter.js';
import { tallyQueueFromEnvironment } from './tier-services.js';

export const JOURNEY_STEP_SERVICE_NAME = 'strata-journey-step';

export interface JourneyStepDependencies {
  ruleset: Ruleset;
  ports: JourneyStepPorts;
  logger?: Logger;
  metrics?: Metrics;
}

export type JourneyStepHandler = (input: unknown) => Promise<JourneyStepResult>;

/** The Task passed something that no compiled journey passes: a hand-edited definition or a hand-started run. */
export class InvalidJourneyTaskError extends Error {
  override readonly name = 'InvalidJourneyTaskError';
  constructor(problem: string) {
    super(
      `JourneyStep: ${problem}; pass the Parameters that compileJourney writes into the Task (redeploy the journey rather than editing its state machine)`,
    );
  }
}

export function parseJourneyTaskInput(input: unknown): JourneyTaskInput {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new InvalidJourneyTaskError('the input is not an object');
  const parsed = journeyTaskInputSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(input)'}: ${issue.message}`);
    throw new InvalidJourneyTaskError(`the Task input is not a journey step (${problems.join('; ')})`);
  }
  return parsed.data;
}

const OUTCOME_METRICS: Partial<Record<JourneyStepResult['outcome'], string>> = {
  sent: 'JourneySends',
  deferred: 'JourneyDeferrals',
  exit: 'JourneyExits',
};

export function createJourneyStepHandler(dependencies: JourneyStepDependencies): JourneyStepHandler {
  const { ruleset, ports } = dependencies;
  const logger = dependencies.logger ?? new Logger({ serviceName: JOURNEY_STEP_SERVICE_NAME });
  const metrics = dependencies.metrics ?? new Metrics({ namespace: 'Strata', serviceName: JOURNEY_STEP_SERVICE_NAME });

  return async (input) => {
    const task = parseJourneyTaskInput(input);
    const ref = userRef(task.userId);
    const journey = { id: task.journeyId, version: task.journeyVersion };
    let result: JourneyStepResult;
    try {
      result = await runJourneyStep(ports, { task, rulesetTimeZone: ruleset.timezone });
    } catch (error) {
      const err = error as Error;
      const transient = error instanceof PublishFailedError || isTransientError(error);
      logger.error('Journey step failed', {
        userRef: ref,
        journeyId: journey.id,
        journeyVersion: journey.version,
        stepId: task.stepId,
        transient,
        errorName: err.name,
        errorMessage: redactUserId(err.message, task.userId, ref),
      });
      if (transient)
        throw new TransientJourneyError(`JourneyStep: ${journey.id}/${task.stepId} for ${ref} hit a transient failure (${err.name})`, {
          cause: error,
        });
      throw error;
    }
    // Once per Task that succeeded: a retried step emits only from the attempt that returns.
    emitJourneyStep(metrics, task, result);
    const metric = OUTCOME_METRICS[result.outcome];
    if (metric) {
      metrics.addMetric(metric, MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
    }
    logger.info('Journey step done', {
      userRef: ref,
      journeyId: journey.id,
      journeyVersion: journey.version,
      stepId: task.stepId,
      outcome: result.outcome,
    });
    return result;
  };
}

/**
 * The DynamoDB store as the journey core's port. The store reports an absent profile as a missing key and the
 * port wants it spelled out as undefined; this is the only difference.
 */
export function journeyStepStore(store: JourneyUserStore): JourneyStepStore {
  return {
    async loadUserForJourney(userId, sinceDate) {
      const { profile, buckets } = await store.loadUserForJourney(userId, sinceDate);
      return { profile, buckets };
    },
    recordSend: (userId, date, sendId) => store.recordSend(userId, date, sendId),
  };
}

export function journeyStepDependenciesFromEnvironment(files = bakedProjectFiles()): JourneyStepDependencies {
  if (!files) throw new HandlerOutsideBundleError('journey-step', 'createJourneyStepHandler');
  const ruleset = loadRulesetOrFail(files);
  const tableName = requireEnv(ENV.tableName, 'the DynamoDB table');
  const shardCount = requirePositiveIntegerEnv(ENV.reviewShardCount, 'the number of review index shards');
  const eventBusName = requireEnv(ENV.eventBusName, 'the event bus for journey actions');
  const client = createDynamoDbClient();
  const metrics = createHandlerMetrics(JOURNEY_STEP_SERVICE_NAME);
  return {
    ruleset,
    ports: {
      store: journeyStepStore(
        createDynamoTierStore({
          client,
          tableName,
          shardCount,
          timeZone: ruleset.timezone,
          retentionDays: dayRetentionDays(ruleset.maxWindowDays),
        }),
      ),
      publisher: createEventBridgePublisher({ client: createEventBridgeClient(), eventBusName }),
      clock: systemClock,
      counters: countersWithMetrics(createDynamoCounters({ client, tableName }), metrics),
      tallies: tallyQueueFromEnvironment(),
    },
    metrics,
  };
}

export const handler: JourneyStepHandler = bakedProjectFiles()
  ? createJourneyStepHandler(journeyStepDependenciesFromEnvironment())
  : () => Promise.reject(new HandlerOutsideBundleError('journey-step', 'createJourneyStepHandler'));
