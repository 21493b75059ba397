import type { CountLease } from '../../functions/core/tally-batches.js';

/** A nightly count's lease from `now`, as the review handler takes it for a step's longest run (15 minutes and a margin). */
export function countLeaseAt(owner: string, now: Date): CountLease {
  return { owner, now, until: new Date(now.getTime() + 16 * 60_000) };
}
