/**
 * The tier services as ingest and the nightly review both run them in Lambda: the DynamoDB store, the journey
 * starter and the notice publisher, wired from the environment the stack sets, once per cold start.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { type DynamoCounters, createDynamoCounters } from '../aws/dynamo-counters.js';
import { type DynamoTierStore, createDynamoTierStore, dayRetentionDays } from '../aws/dynamo-store.js';
import { createEventBridgePublisher } from '../aws/eventbridge-publisher.js';
import { createSfnJourneyStarter, parseStateMachineArns } from '../aws/sfn-journey-starter.js';
import { createSqsTallyQueue } from '../aws/sqs-tally-queue.js';
import { userRef } from '../core/hash.js';
import type { TierServices } from '../core/ingest.js';
import type { Ruleset } from '../core/ruleset.js';
import { countersWithMetrics } from './analytics-emitter.js';
import {
  ENV,
  createDynamoDbClient,
  createEventBridgeClient,
  createHandlerMetrics,
  createSfnClient,
  createSqsClient,
  journeyIdsOf,
  requireEnv,
  requirePositiveIntegerEnv,
  systemClock,
} from './runtime.js';

/** The service name of the analytics metrics' handler instance (the metrics themselves carry no service dimension). */
export const ANALYTICS_SERVICE_NAME = 'strata-analytics';
const storeLogger = new Logger({ serviceName: 'strata-store' });

/** The tally queue as the stack gives it to every Lambda that ends or stops journey executions. */
export function tallyQueueFromEnvironment(): ReturnType<typeof createSqsTallyQueue> {
  const queueUrl = requireEnv(ENV.tallyQueueUrl, "the queue of journey executions' tallies");
  return createSqsTallyQueue({
    client: createSqsClient(),
    queueUrl,
    onUnreadable: (messageId) => storeLogger.error('A tally queue message is no tally; it is left for the dead-letter queue', { messageId }),
  });
}

/** `store` is `services.store` with its full type (the re-judge also uses its Scan and checkpoint). */
export function tierServicesFromEnvironment(ruleset: Ruleset): {
  services: TierServices;
  store: DynamoTierStore;
  shardCount: number;
  counters: DynamoCounters;
  tallies: ReturnType<typeof createSqsTallyQueue>;
} {
  const tableName = requireEnv(ENV.tableName, 'the DynamoDB table');
  const shardCount = requirePositiveIntegerEnv(ENV.reviewShardCount, 'the number of review index shards');
  const stateMachineArns = parseStateMachineArns(
    requireEnv(ENV.journeyStateMachines, 'tier → journey state machine ARN, as JSON'),
    ENV.journeyStateMachines,
  );
  const eventBusName = requireEnv(ENV.eventBusName, 'the event bus for tier notices');
  const client = createDynamoDbClient();
  const counters = createDynamoCounters({ client, tableName });
  const tallies = tallyQueueFromEnvironment();
  const store = createDynamoTierStore({
    client,
    tableName,
    shardCount,
    timeZone: ruleset.timezone,
    retentionDays: dayRetentionDays(ruleset.maxWindowDays),
    onRollUpFailure: (userId, error) =>
      storeLogger.warn('Roll-up of sealed heavy days stopped; a later window read resumes it', {
        userRef: userRef(userId),
        reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
  });
  return {
    shardCount,
    store,
    counters,
    tallies,
    services: {
      ruleset,
      store,
      journeys: createSfnJourneyStarter({ client: createSfnClient(), stateMachineArns, journeyIds: journeyIdsOf(ruleset) }),
      publisher: createEventBridgePublisher({ client: createEventBridgeClient(), eventBusName }),
      clock: systemClock,
      counters: countersWithMetrics(counters, createHandlerMetrics(ANALYTICS_SERVICE_NAME)),
      tallies,
    },
  };
}
