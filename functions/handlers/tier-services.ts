/**
 * The tier services as ingest and the nightly review both run them in Lambda: the DynamoDB store, the journey
 * starter and the notice publisher, wired from the environment the stack sets, once per cold start.
 */
import { type DynamoTierStore, createDynamoTierStore, dayRetentionDays } from '../aws/dynamo-store.js';
import { createEventBridgePublisher } from '../aws/eventbridge-publisher.js';
import { createSfnJourneyStarter, parseStateMachineArns } from '../aws/sfn-journey-starter.js';
import type { TierServices } from '../core/ingest.js';
import type { Ruleset } from '../core/ruleset.js';
import {
  ENV,
  createDynamoDbClient,
  createEventBridgeClient,
  createSfnClient,
  journeyIdsOf,
  requireEnv,
  requirePositiveIntegerEnv,
  systemClock,
} from './runtime.js';

/** `store` is `services.store` with its full type (the re-judge also uses its Scan and checkpoint). */
export function tierServicesFromEnvironment(ruleset: Ruleset): { services: TierServices; store: DynamoTierStore; shardCount: number } {
  const tableName = requireEnv(ENV.tableName, 'the DynamoDB table');
  const shardCount = requirePositiveIntegerEnv(ENV.reviewShardCount, 'the number of review index shards');
  const stateMachineArns = parseStateMachineArns(
    requireEnv(ENV.journeyStateMachines, 'tier → journey state machine ARN, as JSON'),
    ENV.journeyStateMachines,
  );
  const eventBusName = requireEnv(ENV.eventBusName, 'the event bus for tier notices');
  const store = createDynamoTierStore({
    client: createDynamoDbClient(),
    tableName,
    shardCount,
    timeZone: ruleset.timezone,
    retentionDays: dayRetentionDays(ruleset.maxWindowDays),
  });
  return {
    shardCount,
    store,
    services: {
      ruleset,
      store,
      journeys: createSfnJourneyStarter({ client: createSfnClient(), stateMachineArns, journeyIds: journeyIdsOf(ruleset) }),
      publisher: createEventBridgePublisher({ client: createEventBridgeClient(), eventBusName }),
      clock: systemClock,
    },
  };
}
