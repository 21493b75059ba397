/**
 * The pure part of `strata import`: how far the replay of a history must run to judge every user as of now, and
 * what one user's replayed state becomes in the table (whole items, written in batches rather than event by event).
 *
 * The judging itself is the replay engine's (functions/replay): the same ingestEvent and nightly review as
 * production, on the history's own timeline, with journeys off. So `tierSince` is the instant the replay moved the
 * user into their tier, grace and review date are what the nightly reviews up to today left, and the day buckets
 * hold the current ruleset's counters with the event keys that deduplicate a live copy of an imported event.
 */
import { addDays, daysBetween, localDate } from './dates.js';
import { shortHash, userRef } from './hash.js';
import type { Ruleset } from './ruleset.js';
import { type DayBucket, type HistoryEntry, type TierNotice, type UserProfile, withoutOutbox } from './state.js';

/** The nightly review runs at 02:00 local (see the replay engine); a review of today has happened only after it. */
const REVIEW_HOUR = 2;

/** One whole day of a user as import writes it: the state the live writes of its events would have left. */
export interface ImportedDay extends DayBucket {
  /** The day's event keys while light; a heavy day keeps its keys in per-event guards (`guardKeys`). */
  eventKeys: readonly string[];
  heavy: boolean;
  /** A heavy day's event keys. */
  guardKeys: readonly string[];
  /** Journey send ids recorded that day (kept by `--rebuild` from the stored item). */
  sendIds?: readonly string[];
  /**
   * A stored day's attribute overlay, in the DynamoDB store's own text (kept by `--rebuild`: the profile stays as live
   * ingest left it, and the changes not folded into it yet live in the overlay).
   */
  overlay?: string;
}

/** What the replay left for one user: everything import writes for them. */
export interface ImportedUser {
  userId: string;
  profile: UserProfile;
  /** Committed history entries, oldest first. */
  history: HistoryEntry[];
  days: ImportedDay[];
}

/** The replay's view of a user's days (the replay store's StoredDay and guards), as plain values. */
export interface ReplayedDay extends DayBucket {
  eventKeys: ReadonlySet<string>;
  heavy?: boolean;
  sendIds?: ReadonlySet<string>;
}

/** Events that cannot be imported as of now: they happen later than the import. */
export interface FutureEvents {
  count: number;
  firstLine?: number;
}

/**
 * Nightly reviews the replay runs after the history's last event, so that its clock ends today: grace that ran out
 * since the export is applied, and a review date already past is moved on. Today's review counts only once its hour
 * has passed.
 */
export function reviewDaysAfterHistory(ruleset: Pick<Ruleset, 'timezone'>, lastEventAt: Date, now: Date): number {
  const zone = ruleset.timezone;
  const today = localDate(now, zone);
  const hourNow = Number(new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', hourCycle: 'h23' }).format(now));
  const lastReviewed = hourNow >= REVIEW_HOUR ? today : addDays(today, -1);
  return Math.max(0, daysBetween(localDate(lastEventAt, zone), lastReviewed));
}

/** The user's replayed days as import writes them: a heavy day's keys are the guards dated that day. */
export function importedDays(days: Iterable<ReplayedDay>, guards: ReadonlyMap<string, string>): ImportedDay[] {
  const guardKeysByDate = new Map<string, string[]>();
  for (const [key, date] of guards) guardKeysByDate.set(date, [...(guardKeysByDate.get(date) ?? []), key]);
  const result: ImportedDay[] = [];
  for (const day of days) {
    const imported: ImportedDay = {
      date: day.date,
      counters: { ...day.counters },
      eventKeys: day.heavy ? [] : [...day.eventKeys].sort(),
      heavy: day.heavy === true,
      guardKeys: day.heavy ? (guardKeysByDate.get(day.date) ?? []).sort() : [],
    };
    if (day.signals?.length) imported.signals = [...day.signals];
    if (day.sends !== undefined) imported.sends = day.sends;
    if (day.sendIds?.size) imported.sendIds = [...day.sendIds].sort();
    result.push(imported);
  }
  return result.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}

/**
 * The profile import writes. Quiet by default: no journey is running for an imported user, so the profile names
 * none (the next tier change then has nothing to stop). With journeys started, it names the current tier's run,
 * started now under the name a live entry at `tierSince` would have had.
 */
export function importedProfile(replayed: UserProfile, journey: { startedAt: Date } | undefined): UserProfile {
  const { journey: replayedJourney, ...profile } = withoutOutbox(replayed);
  if (journey && replayedJourney && replayedJourney.tier === replayed.tier) {
    return { ...profile, journey: { ...replayedJourney, startedAt: journey.startedAt.toISOString() } };
  }
  return profile;
}

/** Counts of what an import writes, by kind, for `--dry-run` and the final report. */
export interface ImportCounts {
  users: number;
  profiles: number;
  historyEntries: number;
  dayItems: number;
  guardItems: number;
  /** Items left out because their TTL has already passed (older than the retention). */
  expiredItems: number;
}

export function emptyCounts(): ImportCounts {
  return { users: 0, profiles: 0, historyEntries: 0, dayItems: 0, guardItems: 0, expiredItems: 0 };
}

/** The dates a history covers, first and last, in the ruleset's zone: what `--rebuild` rewrites. */
export function coveredDates(ruleset: Pick<Ruleset, 'timezone'>, firstEventAt: Date, lastEventAt: Date): { from: string; to: string } {
  return { from: localDate(firstEventAt, ruleset.timezone), to: localDate(lastEventAt, ruleset.timezone) };
}

/** `--notices`: one TierChanged of kind `imported` per imported user, deterministic so that a resend is recognisable. */
export function importedNotice(profile: UserProfile, rulesetVersion: string, at: Date): TierNotice {
  return {
    noticeId: shortHash(`${profile.userId}|imported|${profile.tier}|${profile.tierSince}`, 22),
    detailType: 'TierChanged',
    userRef: userRef(profile.userId),
    userId: profile.userId,
    kind: 'imported',
    toTier: profile.tier,
    ...(profile.graceUntil !== undefined ? { graceUntil: profile.graceUntil } : {}),
    at: at.toISOString(),
    rulesetVersion,
  };
}
