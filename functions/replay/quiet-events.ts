/**
 * Events whose tier decision the replay can skip, because it is known to change nothing.
 *
 * Ingest does three things with an event: it records it in the user's day bucket, decides the user's tier
 * (decideAndSave), and flushes the outbox. Most events of a busy day are a second "was active" on a day already
 * counted active, and the decision they trigger repeats the previous one. The replay skips the decision and the
 * flush for such an event (it still records it) when all of these hold, which together make the skipped work a no-op:
 *
 * 1. The previous decision for this user was an event's, changed nothing, wrote nothing (the stored profile is the
 *    very object that decision returned) and left no outbox; and it was made on the same local date as now.
 * 2. Since then the profile has not been written (same object), so attributes, consent, tier, grace, lock and
 *    outbox are as they were.
 * 3. This event changes no attribute and no consent (applyEventToAttributes and applyConsentEvent return undefined,
 *    so decideAndSave's `ownChange` stays false).
 * 4. The event's key is not yet stored on any day or guard of the user: a copy of a known event may be a resend
 *    with another date, which ingest settles across days (the store's settleCopy) rather than only recording.
 * 5. No fact the rules read has moved since that decision: every counter this event (and each event skipped since)
 *    adds to is read by no metric, or only as the count counter of `distinct-days` and `last` metrics, which read
 *    only whether the day's counter is above zero; and that day's counter was already above zero before the event.
 *    The window start and `days-since` facts depend on the date alone, which is unchanged (1).
 *
 * Then the facts are the same, so qualify gives the same tier; decideTier for an event on a stored profile depends
 * on the profile, the qualified tier and the local date only, so it again changes nothing; with no own change and no
 * outbox, decideAndSave returns the stored profile without writing, and flushOutbox returns at once. The
 * differential tests (test/replay/quiet-events.test.ts) replay histories with and without skipping and compare.
 */
import type { DayIncrement } from '../core/metrics.js';
import type { Ruleset } from '../core/ruleset.js';

/** Counters whose day value matters to the rules only as "above zero" (or not at all). */
export function presenceOnlyCounters(ruleset: Pick<Ruleset, 'counters' | 'metrics'>): Set<string> {
  const counters = new Set(ruleset.counters.map((counter) => counter.id));
  for (const metric of ruleset.metrics) {
    if (metric.sumCounter !== undefined) counters.delete(metric.sumCounter);
    const kind = metric.definition.kind;
    if (kind !== 'distinct-days' && kind !== 'last') counters.delete(metric.countCounter);
  }
  return counters;
}

/**
 * Whether recording this increment leaves every fact as it was: each counter it adds to is presence-only and is
 * already above zero on the increment's day. `counterOn` reads the day's counter before the event is recorded.
 */
export function leavesFactsAsTheyWere(
  increment: DayIncrement,
  presenceOnly: ReadonlySet<string>,
  counterOn: (date: string, counter: string) => number,
): boolean {
  for (const counter in increment.counters) {
    if (!presenceOnly.has(counter)) return false;
    if (!(increment.counters[counter]! > 0) || !(counterOn(increment.date, counter) > 0)) return false;
  }
  return true;
}
