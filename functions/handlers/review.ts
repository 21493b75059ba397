/**
 * The nightly review Lambda: the three steps of the review state machine, which EventBridge Scheduler starts.
 *
 *   plan     the dates to review (every night since the checkpoint, so a missed night is caught up) and the
 *            shards of the review index
 *   shard    one shard, every date in order (the state machine's Map runs the shards side by side)
 *   advance  moves the checkpoint to the last date, once every shard of the run has succeeded
 *
 * Safe to rerun and to resume: a reviewed user's review date moves past today, so they leave the partition that
 * is read, a rerun finds only who is left, and the checkpoint never moves backwards.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { createDynamoTierStore, dayRetentionDays } from '../aws/dynamo-store.js';
import { createEventBridgePublisher } from '../aws/eventbridge-publisher.js';
import { createSfnJourneyStarter, parseStateMachineArns } from '../aws/sfn-journey-starter.js';
import { LOCAL_DATE, localDate } from '../core/dates.js';
import type { TierServices } from '../core/ingest.js';
import { datesToReview, emptyReviewStats, reviewShardForDate } from '../core/review.js';
import {
  ENV,
  HandlerOutsideBundleError,
  bakedProjectFiles,
  createDynamoDbClient,
  createEventBridgeClient,
  createSfnClient,
  journeyIdsOf,
  loadRulesetOrFail,
  requireEnv,
  requirePositiveIntegerEnv,
  systemClock,
} from './runtime.js';

export const REVIEW_SERVICE_NAME = 'strata-review';

export type ReviewStepInput =
  | { step: 'plan' }
  | { step: 'shard'; dates: string[]; shard: number }
  | { step: 'advance'; dates: string[] };

export interface ReviewPlan {
  dates: string[];
  shards: number[];
}

export interface ShardReviewResult {
  shard: number;
  usersDue: number;
  usersChanged: number;
  transitions: Record<string, number>;
}

export interface AdvanceResult {
  checkpoint: string | undefined;
  advanced: boolean;
}

export type ReviewStepOutput = ReviewPlan | ShardReviewResult | AdvanceResult;

export interface ReviewDependencies {
  services: TierServices;
  shardCount: number;
  logger?: Logger;
  metrics?: Metrics;
}

export class InvalidReviewInputError extends Error {
  override readonly name = 'InvalidReviewInputError';
  constructor(problem: string) {
    super(`Review: ${problem}; the state machine passes {"step": "plan"}, {"step": "shard", "dates", "shard"} or {"step": "advance", "dates"}`);
  }
}

function checkDates(dates: unknown): string[] {
  if (!Array.isArray(dates) || !dates.every((date) => typeof date === 'string' && LOCAL_DATE.test(date))) {
    throw new InvalidReviewInputError('"dates" must be a list of YYYY-MM-DD dates');
  }
  return [...dates].sort();
}

/** Validates the step input: it comes from the state machine, but a hand-started execution can pass anything. */
export function parseReviewStepInput(input: unknown, shardCount: number): ReviewStepInput {
  if (input === null || typeof input !== 'object') throw new InvalidReviewInputError('the input is not an object');
  const { step, dates, shard } = input as { step?: unknown; dates?: unknown; shard?: unknown };
  switch (step) {
    case 'plan':
      return { step };
    case 'shard':
      if (typeof shard !== 'number' || !Number.isInteger(shard) || shard < 0 || shard >= shardCount) {
        throw new InvalidReviewInputError(`"shard" must be a whole number from 0 to ${shardCount - 1}`);
      }
      return { step, dates: checkDates(dates), shard };
    case 'advance':
      return { step, dates: checkDates(dates) };
    default:
      throw new InvalidReviewInputError(`unknown step ${JSON.stringify(step)}`);
  }
}

export type ReviewHandler = (input: unknown) => Promise<ReviewStepOutput>;

export function createReviewHandler(dependencies: ReviewDependencies): ReviewHandler {
  const { services, shardCount } = dependencies;
  const logger = dependencies.logger ?? new Logger({ serviceName: REVIEW_SERVICE_NAME });
  const metrics = dependencies.metrics ?? new Metrics({ namespace: 'Strata', serviceName: REVIEW_SERVICE_NAME });

  async function plan(): Promise<ReviewPlan> {
    const today = localDate(services.clock.now(), services.ruleset.timezone);
    const checkpoint = await services.store.getReviewCheckpoint();
    const dates = datesToReview(checkpoint, today);
    logger.info('Review planned', { checkpoint, today, dates: dates.length, shardCount });
    return { dates, shards: Array.from({ length: shardCount }, (_, i) => i) };
  }

  async function reviewOneShard(dates: string[], shard: number): Promise<ShardReviewResult> {
    const stats = emptyReviewStats();
    // Dates in order: a user due on an early date is reviewed there, and moves on to a later date or out.
    for (const date of dates) await reviewShardForDate(services, date, shard, stats);
    metrics.addMetric('UsersReviewed', MetricUnit.Count, stats.usersDue);
    metrics.addMetric('ReviewTierChanges', MetricUnit.Count, stats.usersChanged);
    metrics.publishStoredMetrics();
    logger.info('Shard reviewed', { shard, dates: dates.length, usersDue: stats.usersDue, usersChanged: stats.usersChanged, transitions: stats.transitions });
    return { shard, usersDue: stats.usersDue, usersChanged: stats.usersChanged, transitions: stats.transitions };
  }

  async function advance(dates: string[]): Promise<AdvanceResult> {
    const last = dates[dates.length - 1];
    const checkpoint = await services.store.getReviewCheckpoint();
    // A late rerun of an older execution must not move the checkpoint back over nights already done.
    if (last === undefined || (checkpoint !== undefined && checkpoint >= last)) return { checkpoint, advanced: false };
    await services.store.setReviewCheckpoint(last);
    logger.info('Review checkpoint advanced', { from: checkpoint, to: last });
    return { checkpoint: last, advanced: true };
  }

  return async (input) => {
    const step = parseReviewStepInput(input, shardCount);
    switch (step.step) {
      case 'plan':
        return plan();
      case 'shard':
        return reviewOneShard(step.dates, step.shard);
      case 'advance':
        return advance(step.dates);
    }
  };
}

export function reviewDependenciesFromEnvironment(files = bakedProjectFiles()): ReviewDependencies {
  if (!files) throw new HandlerOutsideBundleError('review', 'createReviewHandler');
  const ruleset = loadRulesetOrFail(files);
  const tableName = requireEnv(ENV.tableName, 'the DynamoDB table');
  const shardCount = requirePositiveIntegerEnv(ENV.reviewShardCount, 'the number of review index shards');
  const stateMachineArns = parseStateMachineArns(requireEnv(ENV.journeyStateMachines, 'tier → journey state machine ARN, as JSON'), ENV.journeyStateMachines);
  const eventBusName = requireEnv(ENV.eventBusName, 'the event bus for tier notices');
  return {
    shardCount,
    services: {
      ruleset,
      store: createDynamoTierStore({ client: createDynamoDbClient(), tableName, shardCount, timeZone: ruleset.timezone, retentionDays: dayRetentionDays(ruleset.maxWindowDays) }),
      journeys: createSfnJourneyStarter({ client: createSfnClient(), stateMachineArns, journeyIds: journeyIdsOf(ruleset) }),
      publisher: createEventBridgePublisher({ client: createEventBridgeClient(), eventBusName }),
      clock: systemClock,
    },
  };
}

export const handler: ReviewHandler = bakedProjectFiles()
  ? createReviewHandler(reviewDependenciesFromEnvironment())
  : () => Promise.reject(new HandlerOutsideBundleError('review', 'createReviewHandler'));
