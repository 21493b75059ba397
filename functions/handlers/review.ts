/**
 * The nightly review Lambda: the three steps of the review state machine, which EventBridge Scheduler starts.
 *
 *   plan     the dates to review (every night since the checkpoint, so a missed night is caught up) and the
 *            shards of the review index (the largest count ever used, so lowering reviewShards strands no one)
 *   shard    one shard, every date in order, a bounded number of users at once, within the invocation's time
 *            budget; when time runs out it returns `next`, and the state machine calls it again from there
 *   countTallies  drains the queue of journey executions' tallies into the funnels' batch items
 *            (core/tally-batches.ts), within the invocation's time budget; when time runs out it returns `next`,
 *            and the state machine calls it again
 *   advance  moves the checkpoint to the last date, once every shard of the run has succeeded, and snapshots the census
 *
 * One user that cannot be reviewed never stops a shard: the failure is logged and counted, the user is listed
 * again for the next night, and the shard carries on, so the checkpoint still moves.
 *
 * Safe to rerun and to resume: a reviewed user's review date moves past today, so they leave the partition that
 * is read, a rerun finds only who is left, and the checkpoint never moves backwards.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { randomUUID } from 'node:crypto';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { MAX_REVIEW_SHARDS } from '../aws/table-schema.js';
import { LOCAL_DATE, addDays, localDate } from '../core/dates.js';
import { userRef } from '../core/hash.js';
import { type AnalyticsReader, snapshotCensus } from '../core/analytics.js';
import type { TierServices } from '../core/ingest.js';
import { type TallyCountPorts, type TallyCountResult, countTallies } from '../core/tally-batches.js';
import {
  DEFAULT_USER_CONCURRENCY,
  type ReviewFailureStage,
  type ShardPosition,
  datesToReview,
  emptyReviewStats,
  reviewShardFrom,
} from '../core/review.js';
import { HandlerOutsideBundleError, bakedProjectFiles, createHandlerMetrics, loadRulesetOrFail, redactUserId } from './runtime.js';
import { emitCensus } from './analytics-emitter.js';
import { tierServicesFromEnvironment } from './tier-services.js';

export const REVIEW_SERVICE_NAME = 'strata-review';
/** Users the review could not review in one shard step; the stack alarms on it. */
export const REVIEW_USERS_FAILED_METRIC = 'ReviewUsersFailed';

/**
 * A shard stops starting users when less than this is left of its invocation: enough for the users under way to
 * finish (each SDK call is bounded, see SDK_TIMEOUTS) and for the result to be returned.
 */
export const REVIEW_TIME_MARGIN_MS = 120_000;
/** Without a Lambda context (the embedded stack), the count's lease lasts this long: no step runs longer. */
const COUNT_STEP_MAX_MS = 15 * 60_000;
const COUNT_LEASE_MARGIN_MS = 60_000;

export type ReviewStepInput =
  | { step: 'plan' }
  | { step: 'shard'; dates: string[]; shard: number; cursor?: ShardPosition }
  | { step: 'countTallies'; owner?: string }
  | { step: 'advance'; dates: string[] };

export interface ReviewPlan {
  dates: string[];
  shards: number[];
}

/** The input of the shard step that resumes where this one stopped. */
export type ShardContinuation = Extract<ReviewStepInput, { step: 'shard' }> & { cursor: ShardPosition };

export interface ShardReviewResult {
  shard: number;
  usersDue: number;
  usersChanged: number;
  /** Users whose review failed this time; they are listed again for the next night. */
  usersFailed: number;
  outboxFlushFailures: number;
  transitions: Record<string, number>;
  /** Present when the time budget ran out: the state machine passes it back as the next shard step's input. */
  next?: ShardContinuation;
}

export interface AdvanceResult {
  checkpoint: string | undefined;
  advanced: boolean;
}

export type TallyCountStepResult = Omit<TallyCountResult, 'done'> & {
  /** Present when the time budget ran out first: the state machine passes it back as the next step's input. */
  next?: { step: 'countTallies'; owner: string };
};

export type ReviewStepOutput = ReviewPlan | ShardReviewResult | TallyCountStepResult | AdvanceResult;

/** The part of the Lambda context the review reads. */
export interface InvocationClock {
  getRemainingTimeInMillis(): number;
}

export interface ReviewDependencies {
  services: TierServices;
  shardCount: number;
  /** Users reviewed at once within one shard. */
  userConcurrency?: number;
  logger?: Logger;
  metrics?: Metrics;
  /** Where the nightly census snapshot is read from and written to, once the checkpoint advances. */
  census?: AnalyticsReader;
  /** The tally queue and the batch items it is drained into; absent where nothing reports on journeys. */
  tallies?: TallyCountPorts;
}

export class InvalidReviewInputError extends Error {
  override readonly name = 'InvalidReviewInputError';
  constructor(problem: string) {
    super(
      `Review: ${problem}; the state machine passes {"step": "plan"}, {"step": "shard", "dates", "shard", "cursor"?}, {"step": "countTallies"} or {"step": "advance", "dates"}`,
    );
  }
}

function checkDates(dates: unknown): string[] {
  if (!Array.isArray(dates) || !dates.every((date) => typeof date === 'string' && LOCAL_DATE.test(date))) {
    throw new InvalidReviewInputError('"dates" must be a list of YYYY-MM-DD dates');
  }
  return [...dates].sort();
}

function checkCursor(cursor: unknown, dates: string[]): ShardPosition | undefined {
  if (cursor === undefined) return undefined;
  const { date, page } = (cursor ?? {}) as { date?: unknown; page?: unknown };
  if (
    typeof cursor !== 'object' ||
    cursor === null ||
    typeof date !== 'string' ||
    !dates.includes(date) ||
    (page !== undefined && typeof page !== 'string')
  ) {
    throw new InvalidReviewInputError('"cursor" must be {"date": one of "dates", "page"?: text}, as a shard step returned it in "next"');
  }
  return page === undefined ? { date } : { date, page };
}

/**
 * Validates the step input: it comes from the state machine, but a hand-started execution can pass anything.
 * Shards are checked against the largest count the stack allows, not today's: after `reviewShards` was lowered,
 * the plan still lists the higher shards that hold profiles.
 */
export function parseReviewStepInput(input: unknown): ReviewStepInput {
  if (input === null || typeof input !== 'object') throw new InvalidReviewInputError('the input is not an object');
  const { step, dates, shard, cursor, owner } = input as { step?: unknown; dates?: unknown; shard?: unknown; cursor?: unknown; owner?: unknown };
  switch (step) {
    case 'plan':
      return { step };
    case 'shard': {
      if (typeof shard !== 'number' || !Number.isInteger(shard) || shard < 0 || shard >= MAX_REVIEW_SHARDS) {
        throw new InvalidReviewInputError(`"shard" must be a whole number from 0 to ${MAX_REVIEW_SHARDS - 1}`);
      }
      const checked = checkDates(dates);
      const position = checkCursor(cursor, checked);
      return position ? { step, dates: checked, shard, cursor: position } : { step, dates: checked, shard };
    }
    case 'countTallies':
      if (owner === undefined) return { step };
      if (typeof owner !== 'string' || owner === '')
        throw new InvalidReviewInputError('"owner" must be a non-empty string (the review execution\'s id)');
      return { step, owner };
    case 'advance':
      return { step, dates: checkDates(dates) };
    default:
      throw new InvalidReviewInputError(`unknown step ${JSON.stringify(step)}`);
  }
}

export type ReviewHandler = (input: unknown, context?: InvocationClock) => Promise<ReviewStepOutput>;

export function createReviewHandler(dependencies: ReviewDependencies): ReviewHandler {
  const { services, shardCount } = dependencies;
  const userConcurrency = dependencies.userConcurrency ?? DEFAULT_USER_CONCURRENCY;
  const logger = dependencies.logger ?? new Logger({ serviceName: REVIEW_SERVICE_NAME });
  const metrics = dependencies.metrics ?? new Metrics({ namespace: 'Strata', serviceName: REVIEW_SERVICE_NAME });

  async function plan(): Promise<ReviewPlan> {
    const today = localDate(services.clock.now(), services.ruleset.timezone);
    const checkpoint = await services.store.getReviewCheckpoint();
    const dates = datesToReview(checkpoint, today);
    const shardsToRead = await services.store.widenReviewShardCount(shardCount);
    logger.info('Review planned', { checkpoint, today, dates: dates.length, shardCount, shardsToRead });
    return { dates, shards: Array.from({ length: shardsToRead }, (_, i) => i) };
  }

  function logUserFailure(userId: string, stage: ReviewFailureStage, error: unknown): void {
    const ref = userRef(userId);
    const reason = redactUserId(error instanceof Error ? `${error.name}: ${error.message}` : String(error), userId, ref);
    const message =
      stage === 'decide' ? 'User review failed; listed again for the next night' : 'Outbox flush failed; the next event or review retries it';
    logger.error(message, { userRef: ref, stage, reason });
  }

  async function reviewOneShard(
    dates: string[],
    shard: number,
    cursor: ShardPosition | undefined,
    context: InvocationClock | undefined,
  ): Promise<ShardReviewResult> {
    const stats = emptyReviewStats();
    const last = dates[dates.length - 1];
    const stoppedAt =
      last === undefined
        ? undefined
        : await reviewShardFrom(
            services,
            dates,
            shard,
            stats,
            {
              concurrency: userConcurrency,
              retryDate: addDays(last, 1),
              hasTimeLeft: context ? () => context.getRemainingTimeInMillis() > REVIEW_TIME_MARGIN_MS : () => true,
              onUserFailed: logUserFailure,
            },
            cursor,
          );
    metrics.addMetric('UsersReviewed', MetricUnit.Count, stats.usersDue);
    metrics.addMetric('ReviewTierChanges', MetricUnit.Count, stats.usersChanged);
    metrics.addMetric(REVIEW_USERS_FAILED_METRIC, MetricUnit.Count, stats.usersFailed);
    metrics.addMetric('ReviewOutboxFlushFailures', MetricUnit.Count, stats.outboxFlushFailures);
    metrics.publishStoredMetrics();
    const { usersDue, usersChanged, usersFailed, outboxFlushFailures, transitions } = stats;
    logger.info(stoppedAt ? 'Shard paused: time budget used, resuming' : 'Shard reviewed', {
      shard,
      dates: dates.length,
      usersDue,
      usersChanged,
      usersFailed,
      outboxFlushFailures,
      transitions,
    });
    const result: ShardReviewResult = { shard, usersDue, usersChanged, usersFailed, outboxFlushFailures, transitions };
    if (stoppedAt) result.next = { step: 'shard', dates, shard, cursor: stoppedAt };
    return result;
  }

  async function countQueuedTallies(owner: string, context: InvocationClock | undefined): Promise<TallyCountStepResult> {
    if (!dependencies.tallies) return { received: 0, counted: 0, duplicates: 0, batches: 0 };
    const now = services.clock.now();
    const drainDate = localDate(now, services.ruleset.timezone);
    // The lease lasts as long as this invocation can, and a little more for a write already sent when it ends.
    const lease = {
      owner,
      now,
      until: new Date(now.getTime() + (context ? context.getRemainingTimeInMillis() : COUNT_STEP_MAX_MS) + COUNT_LEASE_MARGIN_MS),
    };
    const { done, leaseHeldElsewhere, ...counts } = await countTallies(dependencies.tallies, {
      drainDate,
      lease,
      hasTimeLeft: context ? () => context.getRemainingTimeInMillis() > REVIEW_TIME_MARGIN_MS : () => true,
    });
    metrics.addMetric('JourneyTalliesCounted', MetricUnit.Count, counts.counted);
    metrics.addMetric('JourneyTallyDuplicates', MetricUnit.Count, counts.duplicates);
    metrics.publishStoredMetrics();
    if (leaseHeldElsewhere)
      logger.warn('Tally count skipped: another count holds its lease (a second review run); it counts the queue', { drainDate, owner });
    else logger.info(done ? 'Journey tallies counted' : 'Tally count paused: time budget used, resuming', { drainDate, ...counts });
    return done ? counts : { ...counts, next: { step: 'countTallies', owner } };
  }

  async function advance(dates: string[]): Promise<AdvanceResult> {
    const last = dates[dates.length - 1];
    const checkpoint = await services.store.getReviewCheckpoint();
    // A late rerun of an older execution must not move the checkpoint back over nights already done.
    if (last === undefined || (checkpoint !== undefined && checkpoint >= last)) return { checkpoint, advanced: false };
    await services.store.setReviewCheckpoint(last);
    logger.info('Review checkpoint advanced', { from: checkpoint, to: last });
    if (dependencies.census) emitCensus(metrics, await snapshotCensus(services.ruleset, dependencies.census, last));
    return { checkpoint: last, advanced: true };
  }

  return async (input, context) => {
    const step = parseReviewStepInput(input);
    switch (step.step) {
      case 'plan':
        return plan();
      case 'shard':
        return reviewOneShard(step.dates, step.shard, step.cursor, context);
      case 'countTallies':
        // The state machine passes its execution's id; a caller without one (an older definition) counts alone.
        return countQueuedTallies(step.owner ?? randomUUID(), context);
      case 'advance':
        return advance(step.dates);
    }
  };
}

export function reviewDependenciesFromEnvironment(files = bakedProjectFiles()): ReviewDependencies {
  if (!files) throw new HandlerOutsideBundleError('review', 'createReviewHandler');
  const ruleset = loadRulesetOrFail(files);
  const { services, shardCount, counters, tallies } = tierServicesFromEnvironment(ruleset);
  return {
    shardCount,
    census: counters,
    tallies: { source: tallies, batches: counters },
    metrics: createHandlerMetrics(REVIEW_SERVICE_NAME),
    services,
  };
}

export const handler: ReviewHandler = bakedProjectFiles()
  ? createReviewHandler(reviewDependenciesFromEnvironment())
  : () => Promise.reject(new HandlerOutsideBundleError('review', 'createReviewHandler'));
