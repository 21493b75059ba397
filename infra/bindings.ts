/**
 * One call per dependency that sets both the env var a handler reads and the narrowest IAM grant it needs, in the
 * style of Powertools' `bindTable`: the name and the permission can never drift apart.
 *
 * Table grants name the exact actions the DynamoDB store uses (no `dynamodb:*`, no `/index/*`), per function.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { CfnStateMachineAlias, StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { TABLE_KEYS } from '../functions/aws/table-schema.js';
import { ENV } from '../functions/handlers/runtime.js';
import { acknowledgeWildcardResources } from './nag.js';

/**
 * What each function does with the table, as the store's DynamoDB calls: ingest reads a user's window (Query)
 * and writes day items and the profile (UpdateItem, PutItem); the review also reads the review index and the
 * checkpoint (GetItem); a journey step reads the user and records sends; the re-judge scans the profiles.
 */
export const TABLE_ACCESS = {
  // GetItem: a heavy day's guard read and a resend's settle (dynamo-store.ts); test/infra/table-permissions.test.ts checks these.
  ingest: { actions: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'], reviewIndex: false },
  review: { actions: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'], reviewIndex: true },
  journeyStep: { actions: ['dynamodb:Query', 'dynamodb:UpdateItem'], reviewIndex: false },
  // The re-judge judges as the review does, reading every profile by a Scan instead of the review index.
  rejudge: { actions: ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'], reviewIndex: false },
} as const satisfies Record<string, { actions: readonly string[]; reviewIndex: boolean }>;

export type TableAccess = keyof typeof TABLE_ACCESS;

export interface TableBinding {
  table: ITableV2;
  /** Review index shards: part of the key layout, so every function that writes profiles must agree on it. */
  shardCount: number;
}

export function bindTable(fn: LambdaFunction, binding: TableBinding, access: TableAccess): void {
  const { table, shardCount } = binding;
  const { actions, reviewIndex } = TABLE_ACCESS[access];
  fn.addEnvironment(ENV.tableName, table.tableName);
  fn.addEnvironment(ENV.reviewShardCount, String(shardCount));
  fn.addToRolePolicy(new PolicyStatement({ actions: [...actions], resources: [table.tableArn] }));
  if (reviewIndex) {
    fn.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${table.tableArn}/index/${TABLE_KEYS.reviewIndexName}`] }));
  }
}

export function bindEventBus(fn: LambdaFunction, bus: IEventBus): void {
  fn.addEnvironment(ENV.eventBusName, bus.eventBusName);
  bus.grantPutEventsTo(fn);
}

export function bindDeadLetterQueue(fn: LambdaFunction, queue: IQueue): void {
  fn.addEnvironment(ENV.deadLetterQueueUrl, queue.queueUrl);
  queue.grantSendMessages(fn);
}

/**
 * The queue of journey executions' tallies: the functions that end or stop executions send to it ('enqueue'); the
 * review also drains it ('drain': receive, release, delete, and its depth for the logs).
 */
export function bindTallyQueue(fn: LambdaFunction, queue: IQueue, access: 'enqueue' | 'drain'): void {
  fn.addEnvironment(ENV.tallyQueueUrl, queue.queueUrl);
  queue.grantSendMessages(fn);
  if (access === 'drain') queue.grantConsumeMessages(fn);
}

/** A journey state machine and the alias its executions start on. */
export interface JourneyTarget {
  machine: StateMachine;
  alias: CfnStateMachineAlias;
  aliasName: string;
}

/**
 * The journeys a function starts and stops: the tier → alias ARN map, StartExecution on each machine through its
 * alias only, and Stop/Describe on its executions. Execution names are per-user hashes made at run time, so the
 * execution ARN must end in `*`; it is scoped to one machine, and acknowledged as such.
 */
export function bindJourneyStarter(fn: LambdaFunction, journeys: Record<string, JourneyTarget>): void {
  const stack = Stack.of(fn);
  const arns = Object.fromEntries(Object.entries(journeys).map(([tier, target]) => [tier, target.alias.attrArn]));
  fn.addEnvironment(ENV.journeyStateMachines, stack.toJsonString(arns));
  const targets = Object.values(journeys);
  const list = targets.map((target) => target.machine);
  if (list.length === 0) return;
  // Step Functions authorizes an alias by its machine's ARN; the qualifier condition keeps starts on the alias,
  // so a start can never run an unpublished revision.
  fn.addToRolePolicy(
    new PolicyStatement({
      actions: ['states:StartExecution'],
      resources: list.map((m) => m.stateMachineArn),
      conditions: { StringEquals: { 'states:StateMachineQualifier': [...new Set(targets.map((target) => target.aliasName))] } },
    }),
  );
  const executionArns = list.map((machine) =>
    stack.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${machine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    }),
  );
  // GetExecutionHistory: where a stopped execution was, so that its journey counters can be counted (analytics.ts).
  fn.addToRolePolicy(
    new PolicyStatement({ actions: ['states:StopExecution', 'states:DescribeExecution', 'states:GetExecutionHistory'], resources: executionArns }),
  );
  acknowledgeWildcardResources(
    fn.role ?? fn,
    executionArns,
    "Journey executions are named per user at run time (a hash, no PII), so Stop/Describe/GetExecutionHistory can only be scoped to one journey state machine's executions, never to a fixed ARN.",
  );
}
