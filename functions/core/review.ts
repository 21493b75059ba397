/**
 * The nightly review: re-decides every user whose review date has come, through the sparse review index.
 *
 * It reads only the users due (never a scan), catches up on every date since the last completed night, and is
 * safe to rerun or resume: a reviewed user's review date moves past today, so they leave the partition being read,
 * and the checkpoint only advances once every shard of a date is done.
 */
import { addDays, localDate } from './dates.js';
import { shortHash } from './hash.js';
import { type TierServices, decideAndSave, tryFlushOutbox } from './ingest.js';
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
  transitions: Record<string, number>;
}

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

/** Reviews every due user of one date in one shard, page by page. */
export async function reviewShardForDate(services: TierServices, date: string, shard: number, stats: ReviewStats): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await services.store.listDueForReview(date, shard, cursor);
    for (const userId of page.userIds) {
      stats.usersDue += 1;
      const decision = await reviewUser(services, userId);
      if (decision.changed) stats.usersChanged += 1;
      for (const transition of decision.transitions) stats.transitions[transition.kind] = (stats.transitions[transition.kind] ?? 0) + 1;
    }
    cursor = page.cursor;
  } while (cursor);
}

export function emptyReviewStats(): ReviewStats {
  return { dates: [], usersDue: 0, usersChanged: 0, transitions: {} };
}

/**
 * The whole nightly run in one process. In AWS the same per-shard function runs as a Map over shards; this form
 * serves `strata dev`, `strata simulate` and tests.
 */
export async function runReview(services: TierServices, shardCount: number, concurrency = 4): Promise<ReviewStats> {
  const today = localDate(services.clock.now(), services.ruleset.timezone);
  const stats = emptyReviewStats();
  for (const date of datesToReview(await services.store.getReviewCheckpoint(), today)) {
    stats.dates.push(date);
    const shards = Array.from({ length: shardCount }, (_, i) => i);
    const workers = Array.from({ length: Math.min(concurrency, shardCount) }, async () => {
      for (let shard = shards.shift(); shard !== undefined; shard = shards.shift()) {
        await reviewShardForDate(services, date, shard, stats);
      }
    });
    await Promise.all(workers);
    await services.store.setReviewCheckpoint(date);
  }
  return stats;
}
