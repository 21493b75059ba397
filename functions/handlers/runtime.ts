/**
 * What every Lambda handler shares: the names of its env vars, reading them once and failing fast, the ruleset
 * baked into the bundle at synth, the system clock and the AWS clients' settings.
 *
 * The ruleset is not read from disk or from the environment at run time: the CDK app reads rules/ and journeys/
 * at synth and esbuild inlines them as `__STRATA_PROJECT_FILES__`, so a deployed function always runs exactly the
 * rules whose version hash it reports, and a broken file fails the deploy rather than the first event.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import { SFNClient, type SFNClientConfig } from '@aws-sdk/client-sfn';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { ConfigError } from '../core/errors.js';
import type { Clock } from '../core/ports.js';
import { type ProjectFiles, type Ruleset, loadRuleset } from '../core/ruleset.js';

declare global {
  /** Inlined by esbuild `define` in the Lambda bundles (see infra/); absent everywhere else. */
  // eslint-disable-next-line no-var
  var __STRATA_PROJECT_FILES__: ProjectFiles | undefined;
}

/** The global name the CDK app defines; kept here so the bundler and the reader cannot drift apart. */
export const PROJECT_FILES_GLOBAL = '__STRATA_PROJECT_FILES__';

/** Every env var the handlers read, by purpose. The CDK stack sets them through the same names. */
export const ENV = {
  tableName: 'STRATA_TABLE_NAME',
  reviewShardCount: 'STRATA_REVIEW_SHARDS',
  journeyStateMachines: 'STRATA_JOURNEY_STATE_MACHINES',
  eventBusName: 'STRATA_EVENT_BUS_NAME',
  deadLetterQueueUrl: 'STRATA_DEAD_LETTER_QUEUE_URL',
  /** The queue where journey executions' tallies wait for the nightly count (core/tally-batches.ts). */
  tallyQueueUrl: 'STRATA_TALLY_QUEUE_URL',
  /** The CloudWatch namespace of the handlers' metrics: one per stack, so two stages in one account stay apart. */
  metricsNamespace: 'STRATA_METRICS_NAMESPACE',
  /** Optional: hours an event's occurredAt may be ahead of now (default 24). */
  maxEventFutureHours: 'STRATA_MAX_EVENT_FUTURE_HOURS',
} as const;

export class MissingEnvironmentError extends Error {
  override readonly name = 'MissingEnvironmentError';
  constructor(variable: string, what: string) {
    super(`Runtime: env var ${variable} is not set (${what}); the CDK stack sets it, so deploy through the stack`);
  }
}

export class InvalidEnvironmentError extends Error {
  override readonly name = 'InvalidEnvironmentError';
  constructor(variable: string, problem: string, options?: { cause?: unknown }) {
    super(`Runtime: env var ${variable} ${problem}`, options);
  }
}

export class HandlerOutsideBundleError extends Error {
  override readonly name = 'HandlerOutsideBundleError';
  constructor(handlerName: string, factoryName: string) {
    super(
      `Runtime: the module-level ${handlerName} handler runs only in a Lambda bundle built by the CDK app, which bakes ` +
        `in the ruleset; elsewhere call ${factoryName}(...) with your own dependencies`,
    );
  }
}

export function requireEnv(variable: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[variable];
  if (value === undefined || value.trim() === '') throw new MissingEnvironmentError(variable, what);
  return value;
}

export function requirePositiveIntegerEnv(variable: string, what: string, env: NodeJS.ProcessEnv = process.env): number {
  const text = requireEnv(variable, what, env);
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidEnvironmentError(variable, `must be a positive whole number, found "${text}"`);
  return value;
}

export function optionalPositiveNumberEnv(variable: string, what: string, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env[variable];
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value)) throw new InvalidEnvironmentError(variable, `(${what}) must be a positive number, found "${text}"`);
  return value;
}

/** The project files inlined at synth, or undefined outside a bundle. */
export function bakedProjectFiles(): ProjectFiles | undefined {
  // `typeof` keeps this safe where the global was never defined; in a bundle esbuild replaces the name itself.
  return typeof __STRATA_PROJECT_FILES__ === 'undefined' ? undefined : __STRATA_PROJECT_FILES__;
}

/** Loads the ruleset, throwing every problem at once (ConfigError) so a broken bundle fails at its cold start. */
export function loadRulesetOrFail(files: ProjectFiles): Ruleset {
  const { ruleset, problems } = loadRuleset(files);
  if (!ruleset) throw new ConfigError(problems);
  return ruleset;
}

/** Tier → the id of that tier's journey, which the starter passes in each execution's input. */
export function journeyIdsOf(ruleset: Ruleset): Record<string, string> {
  return Object.fromEntries(Object.entries(ruleset.journeys).map(([tier, journey]) => [tier, journey.id]));
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * Throttling is retried by the SDK first (with backoff and jitter), and only then fails the record so that SQS
 * redelivers it later; more attempts than the default 3 ride out a short burst without a redelivery.
 */
export const DYNAMODB_MAX_ATTEMPTS = 6;

/**
 * Every SDK call is bounded in time: without a timeout a request stuck on a half-open connection holds the
 * function until Lambda kills it, and the whole batch (or the review shard) is redelivered. A timed-out attempt
 * is retried by the SDK like a throttle. DynamoDB answers single-item calls in milliseconds, so its bound is
 * short; StartExecution and PutEvents get more room. `throwOnRequestTimeout` makes the timeout an error (without
 * it, recent SDKs only log a warning).
 */
export const SDK_TIMEOUTS = {
  connectionTimeoutMs: 1_000,
  dynamoDbRequestTimeoutMs: 2_000,
  requestTimeoutMs: 4_000,
} as const;

function requestHandler(requestTimeout: number) {
  return { requestHandler: { connectionTimeout: SDK_TIMEOUTS.connectionTimeoutMs, requestTimeout, throwOnRequestTimeout: true } };
}

/** `overrides` are for tests (a local endpoint, fewer attempts); the timeouts always apply. */
export function createDynamoDbClient(overrides: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({ maxAttempts: DYNAMODB_MAX_ATTEMPTS, ...overrides, ...requestHandler(SDK_TIMEOUTS.dynamoDbRequestTimeoutMs) });
}

export function createSfnClient(overrides: SFNClientConfig = {}): SFNClient {
  return new SFNClient({ ...overrides, ...requestHandler(SDK_TIMEOUTS.requestTimeoutMs) });
}

export function createEventBridgeClient(overrides: EventBridgeClientConfig = {}): EventBridgeClient {
  return new EventBridgeClient({ ...overrides, ...requestHandler(SDK_TIMEOUTS.requestTimeoutMs) });
}

export function createSqsClient(overrides: SQSClientConfig = {}): SQSClient {
  return new SQSClient({ ...overrides, ...requestHandler(SDK_TIMEOUTS.requestTimeoutMs) });
}

/** A handler's metrics, in the namespace of its stack (see ENV.metricsNamespace). */
export function createHandlerMetrics(serviceName: string, env: NodeJS.ProcessEnv = process.env): Metrics {
  return new Metrics({ namespace: requireEnv(ENV.metricsNamespace, "the CloudWatch namespace of this stack's metrics", env), serviceName });
}

/**
 * Replaces a raw user id in a text (an error message from a lower layer, say) with its pseudonymous ref, so that
 * nothing that reaches a log line can carry it.
 */
export function redactUserId(text: string, userId: string | undefined, ref: string): string {
  if (!userId) return text;
  return text.split(userId).join(ref);
}
