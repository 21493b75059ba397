/**
 * decideTier: the ladder semantics.
 *
 * - Promotion happens as soon as the user qualifies for a higher tier, on an event or at review, and may skip tiers.
 * - Demotion happens only at review: a user who stops qualifying enters the tier's grace period (GraceStarted);
 *   re-qualifying during grace clears it (GraceCleared); when grace expires the user moves down one step or
 *   straight to the qualified tier. After a one-step move the user is judged against the new tier at once, so a
 *   user who still falls short starts that tier's grace the same night.
 * - minTenureDays holds a freshly promoted tier: grace cannot start before the tenure ends.
 * - A locked tier is never changed by rules; when the lock expires the user is judged normally again.
 *
 * Pure: the caller passes the time, the qualification and the stored profile, and writes the result. Asynchronous
 * only because a decision that changes something is explained by json-rules-engine's condition results, which the
 * qualification runs when asked (functions/core/qualify.ts).
 */
import { addDays, localDate } from './dates.js';
import { shortHash } from './hash.js';
import type { Qualification } from './qualify.js';
import { type Ruleset, tierIndex } from './ruleset.js';
import type { DecisionTrigger, Explanation, JourneyRef, TierLock, TierTransition, UserProfile } from './state.js';

// The decision's record is stored state, so it lives in state.ts; it is exported from here too, where it is made.
export type { DecisionTrigger, Explanation, TierTransition, TierTransitionKind } from './state.js';

export interface Decision {
  profile: UserProfile;
  /** Anything in the ladder state changed (tier, grace, lock or the journey outbox). */
  changed: boolean;
  tierChanged: boolean;
  transitions: TierTransition[];
  explanation?: Explanation;
}

export interface DecideInput {
  ruleset: Ruleset;
  profile: UserProfile;
  qualification: Qualification;
  now: Date;
  trigger: DecisionTrigger;
  eventId?: string;
}

/** Deterministic and free of personal data: a hash of who, which tier and since when. */
export function journeyExecutionName(userId: string, tier: string, tierSince: string): string {
  return `${tier}-${shortHash(`${userId}|${tier}|${tierSince}`, 22)}`;
}

export function isLockActive(lock: TierLock | undefined, today: string): lock is TierLock {
  return lock !== undefined && (lock.until === undefined || today < lock.until);
}

export function tenureEndDate(ruleset: Ruleset, profile: UserProfile): string | undefined {
  if (profile.tierEnteredBy !== 'promotion') return undefined;
  const tier = ruleset.tiers[tierIndex(ruleset, profile.tier)];
  if (!tier || tier.minTenureDays === 0) return undefined;
  return addDays(localDate(profile.tierSince, ruleset.timezone), tier.minTenureDays);
}

function withTier(ruleset: Ruleset, profile: UserProfile, tier: string, now: Date, enteredBy: UserProfile['tierEnteredBy']): UserProfile {
  const tierSince = now.toISOString();
  const stopExecutionNames = [
    ...(profile.pendingJourney?.stopExecutionNames ?? []),
    ...(profile.journey ? [profile.journey.executionName] : []),
  ].filter((name, i, all) => all.indexOf(name) === i);
  const start: JourneyRef | undefined = ruleset.journeys[tier]
    ? { executionName: journeyExecutionName(profile.userId, tier, tierSince), tier, startedAt: tierSince }
    : undefined;
  const next: UserProfile = { ...profile, tier, tierSince, tierEnteredBy: enteredBy, pendingJourney: { start, stopExecutionNames } };
  delete next.graceUntil;
  if (start) next.journey = start;
  else delete next.journey;
  return next;
}

export async function decideTier(input: DecideInput): Promise<Decision> {
  const { ruleset, qualification, now, trigger } = input;
  const today = localDate(now, ruleset.timezone);
  const original = input.profile;
  let profile = { ...original };
  const transitions: TierTransition[] = [];

  if (profile.version === 0) {
    // A user seen for the first time enters the ladder where the rules put them, and their journey starts.
    const enteredBy = tierIndex(ruleset, qualification.tier) > 0 ? 'promotion' : 'start';
    profile = withTier(ruleset, profile, qualification.tier, now, enteredBy);
    transitions.push({ kind: 'entered', toTier: profile.tier });
  } else {
    if (profile.lock && !isLockActive(profile.lock, today)) {
      transitions.push({ kind: 'unlocked', fromTier: profile.tier, toTier: profile.tier });
      delete profile.lock;
    }
    if (!isLockActive(profile.lock, today)) profile = applyRules(ruleset, profile, qualification, now, today, trigger, transitions);
  }

  const tierChanged = profile.tier !== original.tier || transitions.some((t) => t.kind === 'entered');
  const changed = transitions.length > 0;
  const decision: Decision = { profile, changed, tierChanged, transitions };
  if (changed) {
    decision.explanation = {
      at: now.toISOString(),
      rulesetVersion: ruleset.version,
      trigger,
      ...(input.eventId ? { eventId: input.eventId } : {}),
      fromTier: original.tier,
      toTier: profile.tier,
      qualifiedTier: qualification.tier,
      transitions,
      facts: qualification.facts,
      rules: await qualification.explain(),
    };
  }
  return decision;
}

function applyRules(
  ruleset: Ruleset,
  profile: UserProfile,
  qualification: Qualification,
  now: Date,
  today: string,
  trigger: DecisionTrigger,
  transitions: TierTransition[],
): UserProfile {
  const current = tierIndex(ruleset, profile.tier);
  const qualified = tierIndex(ruleset, qualification.tier);
  if (current < 0) {
    // The tier was removed from the ladder: place the user where the rules put them now.
    transitions.push({ kind: 'demoted', fromTier: profile.tier, toTier: qualification.tier });
    return withTier(ruleset, profile, qualification.tier, now, 'demotion');
  }
  if (qualified > current) {
    transitions.push({ kind: 'promoted', fromTier: profile.tier, toTier: qualification.tier });
    return withTier(ruleset, profile, qualification.tier, now, 'promotion');
  }
  if (qualified === current) {
    if (profile.graceUntil === undefined) return profile;
    const cleared = { ...profile };
    delete cleared.graceUntil;
    transitions.push({ kind: 'grace-cleared', fromTier: profile.tier, toTier: profile.tier });
    return cleared;
  }
  return trigger === 'review' ? reviewShortfall(ruleset, profile, qualified, now, today, transitions) : profile;
}

/** At review, for a user who qualifies below their tier: hold for tenure, start grace, or move down. */
function reviewShortfall(
  ruleset: Ruleset,
  start: UserProfile,
  qualified: number,
  now: Date,
  today: string,
  transitions: TierTransition[],
): UserProfile {
  let profile = start;
  const tenureEnd = tenureEndDate(ruleset, profile);
  if (tenureEnd !== undefined && today < tenureEnd) return profile;
  // Each pass either starts a grace period (and stops) or moves down at least one tier, so this ends.
  for (;;) {
    const current = tierIndex(ruleset, profile.tier);
    if (current <= qualified) return profile;
    const tier = ruleset.tiers[current]!;
    if (profile.graceUntil === undefined && tier.graceDays > 0) {
      profile = { ...profile, graceUntil: addDays(today, tier.graceDays) };
      transitions.push({ kind: 'grace-started', fromTier: tier.id, toTier: tier.id, graceUntil: profile.graceUntil });
      return profile;
    }
    if (profile.graceUntil !== undefined && today < profile.graceUntil) return profile;
    const target = tier.downgrade === 'one-step' ? current - 1 : qualified;
    const fromTier = profile.tier;
    profile = withTier(ruleset, profile, ruleset.tiers[target]!.id, now, 'demotion');
    transitions.push({ kind: 'demoted', fromTier, toTier: profile.tier });
  }
}

/** An operator removes a lock: the rules decide again at once, as at a review (grace, not an instant drop). */
export async function unlockTier(ruleset: Ruleset, original: UserProfile, now: Date, qualification: Qualification): Promise<Decision> {
  if (!original.lock) return { profile: original, changed: false, tierChanged: false, transitions: [] };
  const unlocked = { ...original };
  delete unlocked.lock;
  const decision = await decideTier({ ruleset, profile: unlocked, qualification, now, trigger: 'review' });
  const transitions: TierTransition[] = [{ kind: 'unlocked', fromTier: original.tier, toTier: original.tier }, ...decision.transitions];
  return {
    ...decision,
    changed: true,
    transitions,
    explanation: {
      at: now.toISOString(),
      rulesetVersion: ruleset.version,
      trigger: 'operator',
      fromTier: original.tier,
      toTier: decision.profile.tier,
      qualifiedTier: qualification.tier,
      transitions,
      facts: qualification.facts,
      rules: await qualification.explain(),
      note: 'unlocked by an operator',
    },
  };
}

/** An operator pins a user to a tier, optionally until a date; rules leave a locked tier alone. */
export async function lockTier(ruleset: Ruleset, original: UserProfile, lock: TierLock, now: Date, qualification: Qualification): Promise<Decision> {
  let profile: UserProfile = { ...original, lock };
  const transitions: TierTransition[] = [{ kind: 'locked', fromTier: original.tier, toTier: lock.tier }];
  if (lock.tier !== original.tier) profile = withTier(ruleset, profile, lock.tier, now, 'lock');
  delete profile.graceUntil;
  const explanation: Explanation = {
    at: now.toISOString(),
    rulesetVersion: ruleset.version,
    trigger: 'operator',
    fromTier: original.tier,
    toTier: lock.tier,
    qualifiedTier: qualification.tier,
    transitions,
    facts: qualification.facts,
    rules: await qualification.explain(),
    note: `locked: ${lock.reason}`,
  };
  return { profile, changed: true, tierChanged: profile.tier !== original.tier, transitions, explanation };
}
