/**
 * The review date: the first local date on which a user's standing could change with no new event.
 *
 * It is the earliest of the end of grace, the end of tenure or of a lock, and the first date on which the rules,
 * evaluated on the stored buckets alone, would place the user differently. Metrics only change when a counted day
 * leaves a window, and time-based facts (days since X) only matter where they cross a number in the rules, so the
 * rules are evaluated at those few candidate dates rather than day by day.
 *
 * A date too early is safe (the review recomputes it); new events only push the true date later, so ingest never
 * rewrites it. Every date returned is after `today`: a date the nightly run has already passed would be missed.
 */
import { addDays, localDate, minDate } from './dates.js';
import { isLockActive, tenureEndDate } from './decide.js';
import { factsAt } from './metrics.js';
import { compiledPassingTier, qualifiedTier } from './qualify.js';
import type { Ruleset } from './ruleset.js';
import type { DayBucket, UserProfile } from './state.js';

/** The search looks no further ahead than this: the longest window plus a year covers every rule we accept. */
const HORIZON_DAYS = 400;
const MAX_EVALUATIONS = 160;

/** The ruleset's distinct window lengths, found once per ruleset: the search runs on every saved decision. */
const windowsByMetrics = new WeakMap<Ruleset['metrics'], number[]>();

function windowLengths(ruleset: Ruleset): number[] {
  let windows = windowsByMetrics.get(ruleset.metrics);
  if (!windows) {
    windows = [...new Set(ruleset.metrics.map((m) => m.definition.windowDays))];
    windowsByMetrics.set(ruleset.metrics, windows);
  }
  return windows;
}

function countsAnything(counters: Record<string, number>): boolean {
  for (const counter in counters) if (counters[counter] !== 0) return true;
  return false;
}

/** The dates on which a time-based fact counted from `anchor` crosses one of the rules' numbers for it. */
function addCrossings(candidates: Set<string>, thresholds: readonly number[] | undefined, anchor: string): void {
  for (const threshold of thresholds ?? []) {
    if (!Number.isInteger(threshold)) {
      candidates.add(addDays(anchor, Math.ceil(threshold)));
      continue;
    }
    // Both sides of the number, for > and >= alike.
    candidates.add(addDays(anchor, threshold));
    candidates.add(addDays(anchor, threshold + 1));
  }
}

export function candidateDates(ruleset: Ruleset, profile: UserProfile, buckets: readonly DayBucket[], today: string): string[] {
  const candidates = new Set<string>();
  const windows = windowLengths(ruleset);
  for (const bucket of buckets) {
    if (!countsAnything(bucket.counters)) continue;
    // A bucket dated in the future starts counting on its own date.
    if (bucket.date > today) candidates.add(bucket.date);
    for (const window of windows) candidates.add(addDays(bucket.date, window));
  }
  for (const metric of ruleset.metrics) {
    if (metric.definition.kind !== 'last') continue;
    let latest: string | undefined;
    for (const bucket of buckets) {
      if ((bucket.counters[metric.countCounter] ?? 0) > 0 && bucket.date <= today && (latest === undefined || bucket.date > latest))
        latest = bucket.date;
    }
    if (latest !== undefined) addCrossings(candidates, ruleset.thresholds[metric.name], latest);
  }
  for (const name of Object.keys(ruleset.attributes)) {
    const stored = profile.attributes[name];
    if (ruleset.attributes[name]!.type === 'days-since' && stored)
      addCrossings(candidates, ruleset.thresholds[name], localDate(stored.at, ruleset.timezone));
  }
  const horizon = addDays(today, HORIZON_DAYS);
  return [...candidates].filter((date) => date > today && date <= horizon).sort();
}

/**
 * The date under which the review index lists a user: the review date, or the next night while an outbox is
 * waiting, so that a crash before the outbox was emptied is healed by the review even if no event follows, and no
 * later than the end of an attribute overlay's lease, so that a user who went quiet has the overlay folded.
 */
export function reviewIndexDate(profile: Pick<UserProfile, 'reviewAt' | 'outboxVersion' | 'outboxRetryAt' | 'overlayUntil'>): string | undefined {
  return minDate(profile.reviewAt, profile.outboxVersion !== undefined ? profile.outboxRetryAt : undefined, profile.overlayUntil);
}

/** The tier the rules give on `date` to these buckets and the profile's attributes. */
async function tierOn(ruleset: Ruleset, buckets: readonly DayBucket[], profile: UserProfile, date: string): Promise<string> {
  const facts = factsAt(ruleset, buckets, profile.attributes, date);
  return compiledPassingTier(ruleset, facts) ?? qualifiedTier(ruleset, facts);
}

/**
 * `baselineTier`, when the caller has it: the tier the rules give today on these same buckets and the profile's
 * attributes (what the decision just qualified), so that it is not found again.
 */
export async function nextReviewDate(
  ruleset: Ruleset,
  profile: UserProfile,
  buckets: readonly DayBucket[],
  now: Date,
  baselineTier?: string,
): Promise<string | undefined> {
  const today = localDate(now, ruleset.timezone);
  if (isLockActive(profile.lock, today)) return profile.lock.until;
  const tenureEnd = tenureEndDate(ruleset, profile);
  const boundaries = [profile.graceUntil, tenureEnd !== undefined && tenureEnd > today ? tenureEnd : undefined];

  const baseline = baselineTier ?? (await tierOn(ruleset, buckets, profile, today));
  const candidates = candidateDates(ruleset, profile, buckets, today).slice(0, MAX_EVALUATIONS);
  let firstChange: string | undefined;
  for (const date of candidates) {
    const facts = factsAt(ruleset, buckets, profile.attributes, date);
    const tier = compiledPassingTier(ruleset, facts) ?? (await qualifiedTier(ruleset, facts));
    if (tier !== baseline) {
      firstChange = date;
      break;
    }
  }
  // Past the evaluation budget, review again at the last date checked rather than never.
  if (firstChange === undefined && candidates.length === MAX_EVALUATIONS) firstChange = candidates[MAX_EVALUATIONS - 1];
  const date = minDate(...boundaries, firstChange);
  return date !== undefined && date > today ? date : date === undefined ? undefined : addDays(today, 1);
}
