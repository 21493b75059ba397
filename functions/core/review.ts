/**
 * The nightly review: re-decides every user whose review date has come, through the sparse review index.
 *
 * It reads only the users due (never a scan), catches up on every date since the last completed night, and is
 * safe to rerun or resume: a reviewed user's review date moves past today, so they leave the partition being read,
 * and the checkpoint only advances once every shard of a date is done.
 */
import { addDays, localDate } from './dates.js';
import { shortHash } from './hash.js';
import { type TierServices, decideAndSave, flushOutbox, tryFlushOutbox } from './ingest.js';
import type { Decision } from './decide.js';

/** With no checkpoint yet (a new install), the first run looks back this far. */
export const FIRST_RUN_LOOKBACK_DAYS = 7;

export function reviewShard(userId: string, shardCount: number): number {
  return parseInt(shortHash('shard:' + userId, 8).replace(/[^A-Za-z0-9]/g, 'A'), 36) % shardCount;
}

export interface ReviewStats {
  dates: string[];
  usersDue: number;
  usersChanged: number;
  /** Users whose review threw: listed again on the retry date, the others carry on. */
  usersFailed: number;
  /** Users reviewed whose outbox could not be flushed; the next event or review flushes it again. */
  outboxFlushFailures: number;
  transitions: Record<string, number>;
}

/** Where a shard's review stopped when its time ran out: the date, and the index page it was on. */
export interface ShardPosition {
  date: string;
  /** The store's cursor of the page to list again; none = the date's first page. */
  page?: string;
}

export type ReviewFailureStage = 'decide' | 'flush';

export interface ShardReviewOptions {
  /** Users reviewed at once within the shard. */
  concurrency: number;
  /** Where a user whose review fails is listed again: the night after the run's last date. */
  retryDate: string;
  /** Asked before each user and each page; false = stop and return where to resume. Default: always true. */
  hasTimeLeft?: () => boolean;
  /** Told of each failed user, for logs and metrics; the review itself carries on. */
  onUserFailed?: (userId: string, stage: ReviewFailureStage, error: unknown) => void;
}

/** Users reviewed at once within one shard when the caller does not say. */
export const DEFAULT_USER_CONCURRENCY = 8;

export function datesToReview(checkpoint: string | undefined, today: string): string[] {
  const first = checkpoint ? addDays(checkpoint, 1) : addDays(today, -FIRST_RUN_LOOKBACK_DAYS);
  const dates: string[] = [];
  for (let date = first; date <= today; date = addDays(date, 1)) dates.push(date);
  return dates;
}

/**
 * Reviews one user: the same decide-and-save as ingest, with demotion allowed, then the outbox. A failed flush does
 * not throw (the decision is saved; the outbox keeps its retry date), so it cannot stop the shard.
 */
export async function reviewUser(services: TierServices, userId: string): Promise<Decision> {
  const saved = await decideAndSave(services, userId, 'review');
  await tryFlushOutbox(services, saved);
  return saved.decision;
}

/**
 * Reviews one user without letting a failure escape: a profile that cannot be read or decided, or an outbox that
 * cannot be flushed, is reported and the user is listed again on the retry date, so the shard carries on and the
 * checkpoint can still move. Only a failure to list the user again is thrown (the shard is then retried whole).
 */
async function reviewUserIsolated(services: TierServices, userId: string, options: ShardReviewOptions, stats: ReviewStats): Promise<void> {
  stats.usersDue += 1;
  let saved: Awaited<ReturnType<typeof decideAndSave>>;
  try {
    saved = await decideAndSave(services, userId, 'review');
  } catch (error) {
    stats.usersFailed += 1;
    options.onUserFailed?.(userId, 'decide', error);
    await services.store.deferReview(userId, options.retryDate);
    return;
  }
  const { decision } = saved;
  if (decision.changed) stats.usersChanged += 1;
  for (const transition of decision.transitions) stats.transitions[transition.kind] = (stats.transitions[transition.kind] ?? 0) + 1;
  try {
    // Only the holder of the outbox's lease flushes (see flushOutbox); saved carries it.
    await flushOutbox(services, saved);
  } catch (error) {
    stats.outboxFlushFailures += 1;
    options.onUserFailed?.(userId, 'flush', error);
    // The saved profile may still be listed under a date this run has passed; make sure tomorrow flushes it.
    await services.store.deferReview(userId, options.retryDate);
  }
}

/**
 * Runs `work` on each item, at most `concurrency` at once, while `hasTimeLeft()`; resolves whether every item was
 * started (and so finished). A failure stops new work, waits for the work under way, then is thrown: nothing is
 * left running behind a failed shard step.
 */
async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  hasTimeLeft: () => boolean,
  work: (item: T) => Promise<void>,
): Promise<boolean> {
  let next = 0;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      if (!hasTimeLeft()) {
        stopped = true;
        return;
      }
      try {
        await work(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (failure !== undefined) throw failure.error;
  return !stopped;
}

/**
 * Reviews the due users of one shard over `dates` (in order), from `from` on, page by page, a bounded number of
 * users at once. Resolves undefined when the shard is done, or the position to resume from when time ran out.
 *
 * Resuming re-lists the interrupted page: the users reviewed have left it (their review date moved on, or they
 * were listed again on the retry date), so the page now starts with those not yet reviewed.
 */
export async function reviewShardFrom(
  services: TierServices,
  dates: readonly string[],
  shard: number,
  stats: ReviewStats,
  options: ShardReviewOptions,
  from?: ShardPosition,
): Promise<ShardPosition | undefined> {
  const hasTimeLeft = options.hasTimeLeft ?? (() => true);
  for (const date of dates) {
    if (from && date < from.date) continue;
    let page = from && date === from.date ? from.page : undefined;
    do {
      if (!hasTimeLeft()) return positionOf(date, page);
      const listed = await services.store.listDueForReview(date, shard, page);
      const finished = await forEachBounded(listed.userIds, options.concurrency, hasTimeLeft, (userId) =>
        reviewUserIsolated(services, userId, options, stats),
      );
      if (!finished) return positionOf(date, page);
      page = listed.cursor;
    } while (page);
  }
  return undefined;
}

function positionOf(date: string, page: string | undefined): ShardPosition {
  return page === undefined ? { date } : { date, page };
}

/** Reviews every due user of one date in one shard, with no time limit; failures are isolated per user. */
export async function reviewShardForDate(
  services: TierServices,
  date: string,
  shard: number,
  stats: ReviewStats,
  concurrency = DEFAULT_USER_CONCURRENCY,
): Promise<void> {
  await reviewShardFrom(services, [date], shard, stats, { concurrency, retryDate: addDays(date, 1) });
}

export function emptyReviewStats(): ReviewStats {
  return { dates: [], usersDue: 0, usersChanged: 0, usersFailed: 0, outboxFlushFailures: 0, transitions: {} };
}

/**
 * The whole nightly run in one process. In AWS the same per-shard function runs as a Map over shards; this form
 * serves `strata dev`, `strata simulate` and tests.
 */
export async function runReview(services: TierServices, shardCount: number, concurrency = 4): Promise<ReviewStats> {
  const today = localDate(services.clock.now(), services.ruleset.timezone);
  const stats = emptyReviewStats();
  // Profiles written under a larger shard count than today's stay in those shards until they are reviewed.
  const shardsToRead = await services.store.widenReviewShardCount(shardCount);
  for (const date of datesToReview(await services.store.getReviewCheckpoint(), today)) {
    stats.dates.push(date);
    const shards = Array.from({ length: shardsToRead }, (_, i) => i);
    const workers = Array.from({ length: Math.min(concurrency, shardsToRead) }, async () => {
      for (let shard = shards.shift(); shard !== undefined; shard = shards.shift()) {
        await reviewShardFrom(services, [date], shard, stats, { concurrency: DEFAULT_USER_CONCURRENCY, retryDate: addDays(today, 1) });
      }
    });
    await Promise.all(workers);
    await services.store.setReviewCheckpoint(date);
  }
  return stats;
}
