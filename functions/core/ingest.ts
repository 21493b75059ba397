/**
 * The ingest service: one user event in, the user's tier decided, the journey outbox emptied.
 *
 *   1. One guarded day-bucket update (a duplicate changes nothing).
 *   2. One read of the profile and the window's buckets.
 *   3. Pure decision; the profile is written only if something changed, under a version condition.
 *   4. The outbox (journey start/stop and bus notices) is flushed and cleared by whoever holds its lease.
 *
 * Step 2 onwards runs after a duplicate too: evaluation is a pure function of stored state, so a crash between
 * any two writes is healed when the event is redelivered. A failure in step 4 does not fail the event: the profile
 * is saved, and the outbox is retried by the user's next event or by the review on `outboxRetryAt`.
 */
import { type AnalyticsCounters, type TierCountOccurrence, conversionOccurrence, stoppedExecutionTally, tierChangeOccurrences } from './analytics.js';
import { applyConsentEvent } from './consent.js';
import { addDays, instantMs, localDate } from './dates.js';
import { type Decision, type TierTransition, decideTier, lockTier, unlockTier } from './decide.js';
import { InvalidEventError, assertNever } from './errors.js';
import type { UserEvent } from './event.js';
import { shortHash, userRef } from './hash.js';
import { type DayIncrement, applyEventToAttributes, attributeContribution, dayIncrements, factsAt } from './metrics.js';
import type { Clock, JourneyStarter, NoticePublisher, TierStore, WindowCopies } from './ports.js';
import { type Qualification, qualify, qualifyNow } from './qualify.js';
import { nextReviewDate } from './review-date.js';
import type { Ruleset } from './ruleset.js';
import { type DayBucket, type HistoryEntry, type TierLock, type TierNotice, type UserProfile, newProfile } from './state.js';
import type { TallyQueue } from './tally-batches.js';

export { OPT_OUT_EVENT } from './consent.js';
const MAX_CONFLICT_RETRIES = 8;
/**
 * Longer than one flush can last (the ingest Lambda's timeout is 30 s), shorter than the queue's visibility timeout
 * (180 s), so that the redelivery of an event whose process died mid-flush finds the lease run out and flushes.
 */
export const OUTBOX_LEASE_MS = 60_000;
/**
 * An outbox that cannot be flushed (a bus outage) keeps only the newest entries of each kind, so that retries
 * never grow the profile without bound; the tier history of a dropped decision is then lost, never a tier change.
 */
export const MAX_PENDING_ENTRIES = 8;
/**
 * A producer resend with another date is caught when the two dates are at most this many days apart: the event's
 * window read always reaches this far back (and every later day), so its light days show the key, and the SEEN#
 * guards of heavy days outlive it (DEFAULT_DEDUP_HORIZON_DAYS in the DynamoDB store).
 */
export const RESEND_HORIZON_DAYS = 14;
/** Passes of one flush: a newer decision that adds to the outbox during a flush is flushed by the same holder. */
const MAX_FLUSH_PASSES = 3;

export interface TierServices {
  ruleset: Ruleset;
  store: TierStore;
  journeys: JourneyStarter;
  publisher: NoticePublisher;
  clock: Clock;
  /** The analytics counters (analytics.ts); absent where nothing reports on production counts (the replay). */
  counters?: AnalyticsCounters;
  /** Where a stopped execution's tally waits for the nightly count (tally-batches.ts); absent: not counted. */
  tallies?: TallyQueue;
}

export interface IngestResult {
  duplicate: boolean;
  decision?: Decision;
  profile?: UserProfile;
  /** Why the outbox could not be flushed; the event itself is applied, and the outbox is retried later. */
  outboxError?: unknown;
}

/** What decideAndSave wrote, and the lease owner if this caller now holds the outbox's lease. */
export interface SavedDecision {
  decision: Decision;
  profile: UserProfile;
  leaseOwner?: string;
  /** The event's copy was a resend of one that counts on this other date, and has been taken back out. */
  countedOn?: string;
  /** The stored profile the decision started from: the journey the user was in when the event happened. */
  previous?: UserProfile;
}

/** An event's copy as recordEvent left it, which decideAndSave settles against the window it reads. */
export interface RecordedCopy {
  eventKey: string;
  increment: DayIncrement;
  duplicate: boolean;
  appliedOn?: string;
}

export class VersionConflictError extends Error {
  override readonly name = 'VersionConflictError';
  constructor(userRefText: string) {
    super(`Ingest: profile of ${userRefText} kept changing under ${MAX_CONFLICT_RETRIES} attempts; the event will be retried`);
  }
}

/** The key that guards a day bucket against a second delivery of the same event: short, and no raw id stored. */
export function eventKey(eventId: string): string {
  // The same event's key is asked for more than once in a row (the replay's quiet-event check, then ingest).
  if (eventId !== lastKeyed.eventId) lastKeyed = { eventId, key: shortHash('event:' + eventId, 12) };
  return lastKeyed.key;
}
let lastKeyed = { eventId: '', key: shortHash('event:', 12) };

/**
 * Stops a journey execution and queues the tally of the steps it ran. A stopped execution never reaches the Task
 * that would, so whoever stops it does, under its id: a repeated stop, or that Task racing the stop, queues another
 * tally under the same id, and the nightly count keeps the first it drains (tally-batches.ts).
 */
export async function stopAndCount(services: TierServices, executionName: string): Promise<void> {
  const stopped = await services.journeys.stop(executionName);
  const tally = stopped && services.tallies ? stoppedExecutionTally(services.ruleset, executionName, stopped) : undefined;
  if (tally) await services.tallies?.enqueue(tally);
}

export function windowStart(ruleset: Ruleset, now: Date): string {
  return addDays(localDate(now, ruleset.timezone), -(ruleset.maxWindowDays - 1));
}

/**
 * The copy of an event that must be settled with the store, if any: the window shows the event's key on another
 * light day (a producer resend with another date), or this copy is on a light day and heavy days lie within the
 * resend horizon (their keys are not in the window, only in their guards). The claim proposes the date that should
 * count: the earliest other copy's, or this copy's own when only heavy days were seen.
 */
export function copyToSettle(
  copies: WindowCopies | undefined,
  eventKey: string,
  ownDate: string,
): { on: 'light' | 'heavy'; claim: string } | undefined {
  if (!copies) return undefined;
  // The earliest other light day that holds the key (every fresh event asks, so no list is made and sorted).
  const { lightKeys } = copies;
  let elsewhere: string | undefined;
  for (const date of Object.keys(lightKeys)) {
    if (date !== ownDate && (elsewhere === undefined || date < elsewhere) && lightKeys[date]!.includes(eventKey)) elsewhere = date;
  }
  if (lightKeys[ownDate]?.includes(eventKey)) {
    if (elsewhere !== undefined) return { on: 'light', claim: elsewhere };
    const from = addDays(ownDate, -RESEND_HORIZON_DAYS);
    const to = addDays(ownDate, RESEND_HORIZON_DAYS);
    const heavyNearby = copies.heavyDates.some((date) => date !== ownDate && date >= from && date <= to);
    return heavyNearby ? { on: 'light', claim: ownDate } : undefined;
  }
  if (elsewhere !== undefined && copies.heavyDates.includes(ownDate)) return { on: 'heavy', claim: elsewhere };
  return undefined;
}

function noticeTypeOf(transition: TierTransition): TierNotice['detailType'] | undefined {
  switch (transition.kind) {
    case 'grace-started':
      return 'GraceStarted';
    case 'grace-cleared':
      return 'GraceCleared';
    case 'entered':
    case 'promoted':
    case 'demoted':
      return 'TierChanged';
    // An operator's lock and unlock are announced even when the tier stays: channels may treat a pinned user apart.
    case 'locked':
    case 'unlocked':
      return 'TierChanged';
    default:
      return assertNever(transition.kind, 'transition kind');
  }
}

export function noticesFor(decision: Decision, userId: string): TierNotice[] {
  const explanation = decision.explanation;
  if (!explanation) return [];
  return decision.transitions.flatMap((transition, i): TierNotice[] => {
    const detailType = noticeTypeOf(transition);
    if (!detailType) return [];
    return [
      {
        noticeId: shortHash(`${userId}|${explanation.at}|${i}|${transition.kind}|${transition.toTier}`, 22),
        detailType,
        userRef: userRef(userId),
        userId,
        kind: transition.kind,
        ...(transition.fromTier !== undefined ? { fromTier: transition.fromTier } : {}),
        toTier: transition.toTier,
        ...(transition.graceUntil !== undefined ? { graceUntil: transition.graceUntil } : {}),
        at: explanation.at,
        rulesetVersion: explanation.rulesetVersion,
      },
    ];
  });
}

/**
 * Decide, then persist under the version condition; on a conflict re-read and decide again. Shared by ingest
 * (trigger 'event') and the nightly review (trigger 'review').
 */
export async function decideAndSave(
  services: TierServices,
  userId: string,
  trigger: 'event' | 'review' | { lock: TierLock | undefined },
  event?: UserEvent,
  /** The event's copy as recordEvent left it (ingest only): a fresh copy is settled against the window read here. */
  copy?: RecordedCopy,
): Promise<SavedDecision> {
  const { ruleset, store, clock } = services;
  // A copy of an event already applied under another date: its attributes must not count twice either.
  let countedOn = copy?.duplicate && copy.appliedOn !== copy.increment.date ? copy.appliedOn : undefined;
  // A duplicate that counts on its own date may be the redelivery of an attempt that crashed before its settle (between
  // W1 and W2, which this delivery adopted, or after W2): it is settled as a fresh copy is. For a plain redelivery
  // the window read shows no copy elsewhere, and nothing is settled.
  let settled = copy === undefined || countedOn !== undefined;
  for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
    const now = clock.now();
    const decisionWindow = windowStart(ruleset, now);
    // The read reaches the resend horizon before the event's date, so that its light days show a resend's key.
    const resendWindow = copy ? addDays(copy.increment.date, -RESEND_HORIZON_DAYS) : decisionWindow;
    const read = await store.loadUser(userId, resendWindow < decisionWindow ? resendWindow : decisionWindow);
    if (!settled && copy) {
      settled = true;
      const toSettle = copyToSettle(read.copies, copy.eventKey, copy.increment.date);
      const countsOn = toSettle && (await store.settleCopy(userId, copy.eventKey, copy.increment, toSettle));
      if (countsOn !== undefined && countsOn !== copy.increment.date) {
        // This copy was taken back out: read again without it.
        countedOn = countsOn;
        continue;
      }
    }
    const stored = read.profile;
    // Most reads start at the decision window already: then the read's own list is the window's.
    const buckets = read.buckets.every((bucket) => bucket.date >= decisionWindow)
      ? read.buckets
      : read.buckets.filter((bucket) => bucket.date >= decisionWindow);
    const applyAttributes = countedOn === undefined;
    let profile = stored ?? newProfile(userId, ruleset.baseTier, now);
    let ownChange = false;
    if (event && applyAttributes) {
      const attributes = applyEventToAttributes(ruleset, profile, event);
      if (attributes) {
        profile = { ...profile, attributes };
        ownChange = true;
      }
      const consented = applyConsentEvent(profile, event);
      if (consented) {
        profile = consented;
        ownChange = true;
      }
    }
    const today = localDate(now, ruleset.timezone);
    const facts = factsAt(ruleset, buckets, profile.attributes, today);
    const qualification = qualifyNow(ruleset, facts) ?? (await qualify(ruleset, facts));
    const decision =
      typeof trigger === 'object'
        ? await operatorDecision(ruleset, profile, trigger.lock, now, qualification)
        : await decideTier({ ruleset, profile, qualification, now, trigger, eventId: event?.eventId });
    const leaseIsFree = !profile.outboxLease || instantMs(profile.outboxLease.until) <= now.getTime();
    // At review the review date itself always moves, so the profile is always written.
    if (!decision.changed && !ownChange && trigger === 'event') {
      const unchanged = stored ?? profile;
      // An outbox left by a failed or crashed flush: take its lease (one write, only on this retry path) and flush.
      const extras = { ...(countedOn ? { countedOn } : {}), ...(stored ? { previous: stored } : {}) };
      if (unchanged.outboxVersion === undefined || !leaseIsFree) return { decision, profile: unchanged, ...extras };
      const lease = outboxLease(userId, profile.version, now);
      const leased: UserProfile = { ...unchanged, outboxLease: lease };
      if (await store.saveProfile(leased, unchanged.version))
        return { decision, profile: { ...leased, version: unchanged.version + 1 }, leaseOwner: lease.owner, ...extras };
      continue;
    }

    const next: UserProfile = { ...decision.profile };
    // The decision keeps the attributes it was qualified on (same buckets, same date): its qualified tier is the baseline.
    const baselineTier = next.attributes === profile.attributes ? qualification.tier : undefined;
    const reviewAt = await nextReviewDate(ruleset, next, buckets as DayBucket[], now, baselineTier);
    if (reviewAt) next.reviewAt = reviewAt;
    else delete next.reviewAt;
    const version = profile.version + 1;
    const notices = noticesFor(decision, userId);
    if (notices.length > 0) next.pendingNotices = [...(next.pendingNotices ?? []), ...notices].slice(-MAX_PENDING_ENTRIES);
    if (decision.explanation) {
      // History first, then the profile that points to it (see HistoryEntry): the explanation stays out of the outbox.
      const { explanation } = decision;
      const id = `${version}.${shortHash(JSON.stringify(explanation), 10)}`;
      const entry: HistoryEntry = {
        userId,
        at: explanation.at,
        version,
        fromTier: explanation.fromTier,
        toTier: explanation.toTier,
        explanation,
        id,
      };
      if (profile.lastHistoryId !== undefined) entry.previousId = profile.lastHistoryId;
      await store.appendHistory(entry);
      next.lastHistoryId = id;
    }
    if (decision.changed) {
      next.outboxVersion = version;
      next.outboxRetryAt = addDays(today, 1);
    }
    // The lease rides in this same write. A live lease of another flush is kept: that flush sees the newer outbox
    // when its clear fails, and flushes the rest itself.
    const lease = next.outboxVersion !== undefined && leaseIsFree ? outboxLease(userId, profile.version, now) : undefined;
    if (lease) next.outboxLease = lease;
    if (await store.saveProfile(next, profile.version)) {
      return {
        decision,
        profile: { ...next, version },
        ...(lease ? { leaseOwner: lease.owner } : {}),
        ...(countedOn ? { countedOn } : {}),
        ...(stored ? { previous: stored } : {}),
      };
    }
  }
  throw new VersionConflictError(userRef(userId));
}

/**
 * The outbox lease a decision on profile version `version` takes. Made only when the outbox needs a lease: most
 * events leave no outbox, and the hash costs more than the decision.
 */
function outboxLease(userId: string, version: number, now: Date): NonNullable<UserProfile['outboxLease']> {
  return {
    owner: shortHash(`lease|${userId}|${version}|${now.toISOString()}`, 16),
    until: new Date(now.getTime() + OUTBOX_LEASE_MS).toISOString(),
  };
}

function operatorDecision(
  ruleset: Ruleset,
  profile: UserProfile,
  lock: TierLock | undefined,
  now: Date,
  qualification: Qualification,
): Promise<Decision> {
  if (lock) return lockTier(ruleset, profile, lock, now, qualification);
  return unlockTier(ruleset, profile, now, qualification);
}

/** An operator pins a user's tier (lock) or hands it back to the rules (lock undefined). */
export async function setTierLock(services: TierServices, userId: string, lock: TierLock | undefined): Promise<Decision> {
  const saved = await decideAndSave(services, userId, { lock });
  await flushOutbox(services, saved);
  return saved.decision;
}

/** Whether a flush would do anything: an outbox is waiting and this caller holds its lease. */
function holdsOutboxToFlush(saved: Pick<SavedDecision, 'profile' | 'leaseOwner'>): boolean {
  return saved.profile.outboxVersion !== undefined && saved.leaseOwner !== undefined;
}

/**
 * Does what the outbox holds (history, journey stop and start, bus notices), then clears it, if this caller holds
 * the outbox's lease (`saved.leaseOwner`); otherwise another flush is under way and this one does nothing. Every step
 * is idempotent, so a crash anywhere here is healed by repeating the flush on the next event or review. When a
 * newer decision adds to the outbox meanwhile (the clear is refused), the holder flushes what it has not done yet.
 */
export async function flushOutbox(services: TierServices, saved: Pick<SavedDecision, 'profile' | 'leaseOwner'>): Promise<void> {
  const { leaseOwner } = saved;
  let profile = saved.profile;
  if (!holdsOutboxToFlush(saved)) return;
  const done = new Set<string>();
  const counted: TierCountOccurrence[] = [];
  const once = async (id: string, work: () => Promise<unknown>): Promise<void> => {
    if (done.has(id)) return;
    await work();
    done.add(id);
  };
  for (let pass = 0; pass < MAX_FLUSH_PASSES; pass++) {
    const { pendingJourney, pendingNotices, pendingHistory } = profile;
    // Counted first and under each change's id, so that a flush repeated after any later failure adds nothing.
    const { counters } = services;
    if (counters) {
      for (const occurrence of tierChangeOccurrences(services.ruleset, profile.userId, pendingNotices ?? [], pendingJourney)) {
        await once(`count:${occurrence.id}`, async () => {
          await counters.addOnce(occurrence);
          counted.push(occurrence);
        });
      }
    }
    for (const entry of pendingHistory ?? []) await once(`history:${entry.version}`, () => services.store.appendHistory(entry));
    if (pendingJourney) {
      for (const name of pendingJourney.stopExecutionNames) {
        await once(`stop:${name}`, () => stopAndCount(services, name));
      }
      const { start } = pendingJourney;
      if (start) await once(`start:${start.executionName}`, () => services.journeys.start(start, profile.userId));
    }
    const fresh = (pendingNotices ?? []).filter((notice) => !done.has(`notice:${notice.noticeId}`));
    if (fresh.length > 0) {
      await services.publisher.publishNotices(fresh);
      for (const notice of fresh) done.add(`notice:${notice.noticeId}`);
    }
    if (await services.store.clearOutbox(profile)) {
      for (const occurrence of counted) services.counters?.settle(occurrence);
      return;
    }
    const { profile: current } = await services.store.loadUser(profile.userId, windowStart(services.ruleset, services.clock.now()));
    if (current?.outboxVersion === undefined || current.outboxLease?.owner !== leaseOwner) return;
    profile = current;
  }
}

/**
 * flushOutbox that reports instead of throwing: once the profile is saved, a failed StartExecution or PutEvents must
 * neither fail the event (which would dead-letter an applied event) nor stop a review shard. The outbox stays, and
 * the next event or the review on `outboxRetryAt` retries it once the lease has run out.
 */
export async function tryFlushOutbox(services: TierServices, saved: Pick<SavedDecision, 'profile' | 'leaseOwner'>): Promise<{ error?: unknown }> {
  try {
    await flushOutbox(services, saved);
    return {};
  } catch (error) {
    return { error };
  }
}

/**
 * The event's day increment, with what it contributes to the attributes when it changes any: the store may keep that
 * beside the day's counters (a heavy day's attribute overlay), so that no profile write is needed for it. An
 * attribute of the wrong type is refused later, by decideAndSave after the day write, as it always has been.
 */
function eventIncrement(ruleset: Ruleset, event: UserEvent): DayIncrement {
  const increment = dayIncrements(ruleset, event);
  let attributes: DayIncrement['attributes'];
  try {
    attributes = attributeContribution(ruleset, event);
  } catch (error) {
    if (error instanceof InvalidEventError) return increment;
    throw error;
  }
  return Object.keys(attributes).length > 0 ? { ...increment, attributes } : increment;
}

export async function ingestEvent(services: TierServices, event: UserEvent): Promise<IngestResult> {
  const increment = eventIncrement(services.ruleset, event);
  const key = eventKey(event.eventId);
  const recorded = await services.store.recordEvent(event.userId, key, increment);
  // A same-day duplicate still applies its attributes (idempotent), which heals a crash before the profile write.
  const saved = await decideAndSave(services, event.userId, 'event', event, { eventKey: key, increment, ...recorded });
  // Most events leave no outbox: the flush would return at once, so it is not even called.
  const { error } = holdsOutboxToFlush(saved) ? await tryFlushOutbox(services, saved) : {};
  // Whether or not the event is a duplicate: a conversion counts once per journey entry, under the entry's id.
  const conversion = services.counters ? conversionOccurrence(services.ruleset, saved.previous, event) : undefined;
  if (conversion) await services.counters?.addOnce(conversion);
  return {
    duplicate: recorded.duplicate || saved.countedOn !== undefined,
    decision: saved.decision,
    profile: saved.profile,
    ...(error !== undefined ? { outboxError: error } : {}),
  };
}
