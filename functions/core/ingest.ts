/**
 * The ingest service: one user event in, the user's tier decided, the journey outbox emptied.
 *
 *   1. One guarded day-bucket update (a duplicate changes nothing).
 *   2. One read of the profile and the window's buckets.
 *   3. Pure decision; the profile is written only if something changed, under a version condition.
 *   4. The outbox (journey start/stop and bus notices) is flushed and cleared.
 *
 * Step 2 onwards runs after a duplicate too: evaluation is a pure function of stored state, so a crash between
 * any two writes is healed when the event is redelivered.
 */
import { applyConsentEvent } from './consent.js';
import { addDays, localDate } from './dates.js';
import { type Decision, type TierTransition, decideTier, lockTier, unlockTier } from './decide.js';
import { assertNever } from './errors.js';
import type { UserEvent } from './event.js';
import { shortHash, userRef } from './hash.js';
import { applyEventToAttributes, dayIncrements, factsAt } from './metrics.js';
import type { Clock, JourneyStarter, NoticePublisher, TierStore } from './ports.js';
import { type Qualification, qualify } from './qualify.js';
import { nextReviewDate } from './review-date.js';
import type { Ruleset } from './ruleset.js';
import { type DayBucket, type HistoryEntry, type TierLock, type TierNotice, type UserProfile, newProfile } from './state.js';

export { OPT_OUT_EVENT } from './consent.js';
const MAX_CONFLICT_RETRIES = 8;

export interface TierServices {
  ruleset: Ruleset;
  store: TierStore;
  journeys: JourneyStarter;
  publisher: NoticePublisher;
  clock: Clock;
}

export interface IngestResult {
  duplicate: boolean;
  decision?: Decision;
  profile?: UserProfile;
}

export class VersionConflictError extends Error {
  override readonly name = 'VersionConflictError';
  constructor(userRefText: string) {
    super(`Ingest: profile of ${userRefText} kept changing under ${MAX_CONFLICT_RETRIES} attempts; the event will be retried`);
  }
}

/** The key that guards a day bucket against a second delivery of the same event: short, and no raw id stored. */
export function eventKey(eventId: string): string {
  return shortHash('event:' + eventId, 12);
}

export function windowStart(ruleset: Ruleset, now: Date): string {
  return addDays(localDate(now, ruleset.timezone), -(ruleset.maxWindowDays - 1));
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
): Promise<{ decision: Decision; profile: UserProfile }> {
  const { ruleset, store, clock } = services;
  for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
    const now = clock.now();
    const { profile: stored, buckets } = await store.loadUser(userId, windowStart(ruleset, now));
    let profile = stored ?? newProfile(userId, ruleset.baseTier, now);
    let ownChange = false;
    if (event) {
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
    const qualification = await qualify(ruleset, factsAt(ruleset, buckets, profile.attributes, today));
    const decision =
      typeof trigger === 'object'
        ? operatorDecision(ruleset, profile, trigger.lock, now, qualification)
        : decideTier({ ruleset, profile, qualification, now, trigger, ...(event ? { eventId: event.eventId } : {}) });
    // At review the review date itself always moves, so the profile is always written.
    if (!decision.changed && !ownChange && trigger === 'event') return { decision, profile: stored ?? profile };

    const next: UserProfile = { ...decision.profile };
    const reviewAt = await nextReviewDate(ruleset, next, buckets as DayBucket[], now);
    if (reviewAt) next.reviewAt = reviewAt;
    else delete next.reviewAt;
    const version = profile.version + 1;
    const notices = noticesFor(decision, userId);
    if (notices.length > 0) next.pendingNotices = [...(next.pendingNotices ?? []), ...notices];
    if (decision.explanation) {
      const { explanation } = decision;
      const entry: HistoryEntry = { userId, at: explanation.at, version, fromTier: explanation.fromTier, toTier: explanation.toTier, explanation };
      next.pendingHistory = [...(next.pendingHistory ?? []), entry];
    }
    if (decision.changed) {
      next.outboxVersion = version;
      next.outboxRetryAt = addDays(today, 1);
    }
    if (await store.saveProfile(next, profile.version)) return { decision, profile: { ...next, version } };
  }
  throw new VersionConflictError(userRef(userId));
}

function operatorDecision(ruleset: Ruleset, profile: UserProfile, lock: TierLock | undefined, now: Date, qualification: Qualification): Decision {
  if (lock) return lockTier(ruleset, profile, lock, now, qualification);
  return unlockTier(ruleset, profile, now, qualification);
}

/** An operator pins a user's tier (lock) or hands it back to the rules (lock undefined). */
export async function setTierLock(services: TierServices, userId: string, lock: TierLock | undefined): Promise<Decision> {
  const { decision, profile } = await decideAndSave(services, userId, { lock });
  await flushOutbox(services, profile);
  return decision;
}

/**
 * Does what the outbox holds (history, journey stop and start, bus notices), then clears it. Every step is
 * idempotent, so a crash anywhere here is healed by repeating the whole flush on the next event or review.
 */
export async function flushOutbox(services: TierServices, profile: UserProfile): Promise<void> {
  const { pendingJourney, pendingNotices, pendingHistory, outboxVersion } = profile;
  if (outboxVersion === undefined) return;
  for (const entry of pendingHistory ?? []) await services.store.appendHistory(entry);
  if (pendingJourney) {
    for (const name of pendingJourney.stopExecutionNames) await services.journeys.stop(name);
    if (pendingJourney.start) await services.journeys.start(pendingJourney.start, profile.userId);
  }
  if (pendingNotices?.length) await services.publisher.publishNotices(pendingNotices);
  await services.store.clearOutbox(profile);
}

export async function ingestEvent(services: TierServices, event: UserEvent): Promise<IngestResult> {
  const { duplicate } = await services.store.recordEvent(event.userId, eventKey(event.eventId), dayIncrements(services.ruleset, event));
  const { decision, profile } = await decideAndSave(services, event.userId, 'event', event);
  await flushOutbox(services, profile);
  return { duplicate, decision, profile };
}
