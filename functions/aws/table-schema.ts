/**
 * The single table's key layout, shared by the DynamoDB store, the embedded dynalite stack and the CDK stack, so
 * that all three always agree.
 *
 *   USER#<id> / DAY#<yyyy-mm-dd>   day bucket: metric counters, signals, journey sends, and the event keys of a
 *                                  light day (a heavy day keeps only a few pending keys; see dynamo-store.ts)
 *   USER#<id> / DAY#<last date>~  segment: a few sealed heavy days rolled up into one item (see dynamo-store.ts)
 *   USER#<id> / PROFILE            the small profile (tier, grace, lock, version, review date, outbox)
 *   USER#<id> / SEEN#<event key>   the duplicate guard of one event on a heavy day, whatever its date (expires)
 *   USER#<id> / TIERLOG#<version>#<entry id>  tier history with explanations (after PROFILE, outside the window)
 *   SYSTEM / REVIEW_CHECKPOINT     the last completed nightly review date
 *
 * The sparse review index lists a profile under REVIEW#<date>#<shard> only while it has a review date.
 */
export const TABLE_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  reviewIndexName: 'review',
  reviewPartitionKey: 'reviewPk',
  reviewSortKey: 'pk',
  /**
   * Day items, event guards and history entries carry this epoch-seconds attribute; DynamoDB TTL deletes them, and
   * it is harmless where TTL is off.
   */
  timeToLiveAttribute: 'expiresAt',
} as const;

export const DEFAULT_REVIEW_SHARDS = 16;
/** The most review shards a stack may have; the review accepts any shard below it (see widenReviewShardCount). */
export const MAX_REVIEW_SHARDS = 256;

export const userKey = (userId: string): string => `USER#${userId}`;
export const dayKey = (date: string): string => `DAY#${date}`;
/**
 * A segment item: the sealed heavy days of SEGMENT_DAYS consecutive days (aligned on days since 1970-01-01), rolled up
 * into one item (see dynamo-store.ts). Keyed by its last date behind `~`, it sorts after that date's day item and
 * before the next date's, so the window Query (DAY#<from> .. PROFILE) reads it exactly when one of its days can be in
 * the window, and no other query is needed.
 */
export const SEGMENT_DAYS = 8;
const SEGMENT_SUFFIX = '~';
export const segmentFirstDate = (date: string): string => {
  const epochDay = Date.parse(`${date}T00:00:00Z`) / 86_400_000;
  return new Date(Math.floor(epochDay / SEGMENT_DAYS) * SEGMENT_DAYS * 86_400_000).toISOString().slice(0, 10);
};
export const segmentKey = (lastDate: string): string => `${dayKey(lastDate)}${SEGMENT_SUFFIX}`;
export const isSegmentKey = (sortKey: string): boolean => sortKey.startsWith(dayKey('')) && sortKey.endsWith(SEGMENT_SUFFIX);
export const PROFILE_KEY = 'PROFILE';
/** Sorts after PROFILE and before TIERLOG, so neither the window query nor the history query reads guards. */
export const seenKey = (eventKey: string): string => `SEEN#${eventKey}`;
export const HISTORY_PREFIX = 'TIERLOG#';
/** By version, then id: two writers of one version (one of them loses the profile write) never overwrite each other. */
export const historyKey = (version: number, id?: string): string =>
  `${HISTORY_PREFIX}${String(version).padStart(10, '0')}${id === undefined ? '' : `#${id}`}`;
export const reviewPartition = (date: string, shard: number): string => `REVIEW#${date}#${shard}`;
export const SYSTEM_KEY = 'SYSTEM';
export const REVIEW_CHECKPOINT_KEY = 'REVIEW_CHECKPOINT';
