/**
 * `strata lock`, `strata unlock` and `strata forget`: an operator's actions on one user.
 *
 * On the local stack they are sent to the running `strata dev` (its journeys run in that process, so only it can
 * stop or start them); with `--table` the CLI performs them itself against AWS: DynamoDB, Step Functions for the
 * journeys and EventBridge for the notices. Both run the same core calls (core/operator.ts).
 */
import { createDynamoCounters } from '../../aws/dynamo-counters.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Command } from 'commander';
import { resolve } from 'node:path';
import { createDynamoTierStore } from '../../aws/dynamo-store.js';
import { createEventBridgePublisher } from '../../aws/eventbridge-publisher.js';
import { createSfnJourneyStarter, parseStateMachineArns } from '../../aws/sfn-journey-starter.js';
import { createSqsTallyQueue } from '../../aws/sqs-tally-queue.js';
import { DEFAULT_REVIEW_SHARDS } from '../../aws/table-schema.js';
import { OperatorError, type OperatorOutcome, type OperatorRequest, type OperatorServices, performOperatorRequest } from '../../core/operator.js';
import type { Ruleset } from '../../core/ruleset.js';
import { runningStack } from '../../local/local-data.js';
import type { OperatorFailure } from '../../local/operator-endpoint.js';
import { type CliOutput, UsageError } from '../output.js';
import { loadValidRuleset } from '../load-ruleset.js';

/** The variables the deployed Lambdas read; an operator's shell can export the same values. */
const EVENT_BUS_VARIABLE = 'STRATA_EVENT_BUS_NAME';
const STATE_MACHINES_VARIABLE = 'STRATA_JOURNEY_STATE_MACHINES';
/** The same variable the stack gives its Lambdas (handlers/runtime.ts ENV.tallyQueueUrl). */
export const TALLY_QUEUE_VARIABLE = 'STRATA_TALLY_QUEUE_URL';

interface OperatorOptions {
  data: string;
  rules: string;
  table?: string;
  region?: string;
  eventBus?: string;
  stateMachines?: string;
  tallyQueue?: string;
  reviewShards: string;
}

export interface AwsOperatorClients {
  dynamo: DynamoDBClient;
  sfn: SFNClient;
  eventBridge: EventBridgeClient;
  /** With `tallyQueueUrl`: where the tallies of the executions an operator stops are queued. */
  sqs?: SQSClient;
}

export interface AwsOperatorTarget {
  tableName: string;
  eventBusName: string;
  /** The JSON map tier → journey state machine (alias) ARN, as the stack gives its Lambdas. */
  stateMachines: string;
  reviewShards: number;
  /** The stack's tally queue (output TallyQueueUrl); without it a stopped execution's steps are not counted. */
  tallyQueueUrl?: string;
}

/** The operator services on AWS: the same adapters the Lambdas use, with the operator's credentials. */
export function awsOperatorServices(ruleset: Ruleset, clients: AwsOperatorClients, target: AwsOperatorTarget): OperatorServices {
  const store = createDynamoTierStore({
    client: clients.dynamo,
    tableName: target.tableName,
    shardCount: target.reviewShards,
    timeZone: ruleset.timezone,
  });
  const publisher = createEventBridgePublisher({ client: clients.eventBridge, eventBusName: target.eventBusName });
  const journeyIds = Object.fromEntries(Object.entries(ruleset.journeys).map(([tier, journey]) => [tier, journey.id]));
  return {
    ruleset,
    store,
    eraser: store,
    publisher,
    erasurePublisher: publisher,
    journeys: createSfnJourneyStarter({
      client: clients.sfn,
      stateMachineArns: parseStateMachineArns(target.stateMachines, '--state-machines'),
      journeyIds,
    }),
    clock: { now: () => new Date() },
    counters: createDynamoCounters({ client: clients.dynamo, tableName: target.tableName }),
    ...(clients.sqs && target.tallyQueueUrl ? { tallies: createSqsTallyQueue({ client: clients.sqs, queueUrl: target.tallyQueueUrl }) } : {}),
  };
}

async function performOnTable(request: OperatorRequest, options: OperatorOptions & { table: string }): Promise<OperatorOutcome> {
  const eventBusName = options.eventBus ?? process.env[EVENT_BUS_VARIABLE];
  const stateMachines = options.stateMachines ?? process.env[STATE_MACHINES_VARIABLE];
  if (!eventBusName)
    throw new UsageError(
      `${request.action}: --table needs the event bus for the notices`,
      `pass --event-bus or set ${EVENT_BUS_VARIABLE} (the stack output EventBusName)`,
    );
  if (!stateMachines) {
    throw new UsageError(
      `${request.action}: --table needs the journey state machines`,
      `pass --state-machines or set ${STATE_MACHINES_VARIABLE}, the JSON the stack gives its Lambdas in that variable`,
    );
  }
  const tallyQueueUrl = options.tallyQueue ?? process.env[TALLY_QUEUE_VARIABLE];
  if (!tallyQueueUrl)
    throw new UsageError(
      `${request.action}: --table needs the tally queue, where the steps of the journeys it stops are counted`,
      `pass --tally-queue or set ${TALLY_QUEUE_VARIABLE} (the stack output TallyQueueUrl)`,
    );
  const reviewShards = Number(options.reviewShards);
  if (!Number.isInteger(reviewShards) || reviewShards < 1)
    throw new UsageError(`${request.action}: --review-shards must be a positive whole number, not "${options.reviewShards}"`);
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const region = options.region ? { region: options.region } : {};
  const clients = {
    dynamo: new DynamoDBClient(region),
    sfn: new SFNClient(region),
    eventBridge: new EventBridgeClient(region),
    sqs: new SQSClient(region),
  };
  try {
    return await performOperatorRequest(
      awsOperatorServices(ruleset, clients, { tableName: options.table, eventBusName, stateMachines, reviewShards, tallyQueueUrl }),
      request,
    );
  } catch (error) {
    if (error instanceof OperatorError) throw new UsageError(`${request.action}: ${error.message}`, error.hint);
    throw error;
  } finally {
    for (const client of Object.values(clients)) client.destroy();
  }
}

/** Sends the request to the running `strata dev` on this data folder. */
export async function performOnLocalStack(request: OperatorRequest, dataDir: string): Promise<OperatorOutcome> {
  const stack = await runningStack(resolve(dataDir));
  if (!stack?.operatorEndpoint) {
    throw new UsageError(
      `${request.action}: no running stack uses ${dataDir}`,
      `start \`strata dev --data ${dataDir}\` first (journeys run in it), or pass --table for AWS`,
    );
  }
  const response = await fetch(stack.operatorEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const body = (await response.json()) as OperatorOutcome | OperatorFailure;
  if (!response.ok) {
    const failure = body as OperatorFailure;
    throw new UsageError(`${request.action}: ${failure.message}`, failure.hint);
  }
  return body as OperatorOutcome;
}

function describeOutcome(outcome: OperatorOutcome): string {
  switch (outcome.action) {
    case 'lock':
    case 'unlock':
      return `${outcome.userId}: ${outcome.action === 'lock' ? 'locked' : 'unlocked'}, now ${outcome.tier} (${outcome.transitions.join(', ')})`;
    case 'forget':
      return outcome.deleted === 0 && outcome.stoppedExecutions.length === 0
        ? `${outcome.userRef}: nothing stored; UserForgotten published again`
        : `${outcome.userRef}: ${outcome.deleted} item(s) deleted, ${outcome.stoppedExecutions.length} journey execution(s) stopped, UserForgotten published`;
  }
}

function operatorCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .option('--data <dir>', 'the local data directory of the running `strata dev`', '.strata')
    .option('--rules <dir>', 'the project directory with rules/ and journeys/ (with --table)', '.')
    .option('--table <name>', 'act on this DynamoDB table in AWS instead (default credential chain)')
    .option('--region <region>', 'AWS region, with --table')
    .option('--event-bus <name>', `the Strata event bus, with --table (default $${EVENT_BUS_VARIABLE})`)
    .option('--state-machines <json>', `tier → journey state machine ARN, with --table (default $${STATE_MACHINES_VARIABLE})`)
    .option('--tally-queue <url>', `the stack's tally queue URL (output TallyQueueUrl), with --table (default $${TALLY_QUEUE_VARIABLE})`)
    .option('--review-shards <n>', 'review index shards of the deployed stack, with --table', String(DEFAULT_REVIEW_SHARDS));
}

async function run(request: OperatorRequest, options: OperatorOptions, out: CliOutput): Promise<void> {
  const outcome = options.table
    ? await performOnTable(request, { ...options, table: options.table })
    : await performOnLocalStack(request, options.data);
  out.info(describeOutcome(outcome));
}

export function lockCommand(out: CliOutput): Command {
  return operatorCommand('lock', "pin a user's tier, whatever the rules say, until a date or until `strata unlock`")
    .argument('<userId>')
    .argument('<tier>')
    .option('--until <date>', 'the local date (YYYY-MM-DD) on which the lock ends; the nightly review of that date releases it')
    .requiredOption('--reason <text>', 'why; kept in the tier history')
    .action(async (userId: string, tier: string, options: OperatorOptions & { until?: string; reason: string }) => {
      await run({ action: 'lock', userId, lock: { tier, reason: options.reason, ...(options.until ? { until: options.until } : {}) } }, options, out);
    });
}

export function unlockCommand(out: CliOutput): Command {
  return operatorCommand('unlock', 'hand a locked user back to the rules (grace, not an instant drop)')
    .argument('<userId>')
    .action(async (userId: string, options: OperatorOptions) => run({ action: 'unlock', userId }, options, out));
}

export function forgetCommand(out: CliOutput): Command {
  return operatorCommand('forget', 'erase a user: every stored item, running journeys stopped, UserForgotten published (see SECURITY.md)')
    .argument('<userId>')
    .action(async (userId: string, options: OperatorOptions) => run({ action: 'forget', userId }, options, out));
}
