/**
 * The single table's key layout, shared by the DynamoDB store, the embedded dynalite stack and the CDK stack, so
 * that all three always agree.
 *
 *   USER#<id> / DAY#<yyyy-mm-dd>   day bucket: metric counters, event-key set, signals, journey sends
 *   USER#<id> / PROFILE            the small profile (tier, grace, lock, version, review date, outbox)
 *   USER#<id> / TIERLOG#<version>  tier history with explanations (sorts after PROFILE, outside the window query)
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
  /** Day items carry this epoch-seconds attribute; DynamoDB TTL deletes them, and it is harmless where TTL is off. */
  timeToLiveAttribute: 'expiresAt',
} as const;

export const DEFAULT_REVIEW_SHARDS = 16;
/** The most review shards a stack may have; the review accepts any shard below it (see widenReviewShardCount). */
export const MAX_REVIEW_SHARDS = 256;

export const userKey = (userId: string): string => `USER#${userId}`;
export const dayKey = (date: string): string => `DAY#${date}`;
export const PROFILE_KEY = 'PROFILE';
export const historyKey = (version: number): string => `TIERLOG#${String(version).padStart(10, '0')}`;
export const reviewPartition = (date: string, shard: number): string => `REVIEW#${date}#${shard}`;
export const SYSTEM_KEY = 'SYSTEM';
export const REVIEW_CHECKPOINT_KEY = 'REVIEW_CHECKPOINT';
