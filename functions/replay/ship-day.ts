/**
 * On the day a rule change ships: every existing user, as the baseline left them at the end of the history, is
 * judged once by the candidate rules (as the first review after the deploy would). Who is promoted at once, who
 * enters grace, and who is dropped straight away.
 */
import { decideTier } from '../core/decide.js';
import { localDate } from '../core/dates.js';
import { factsAt } from '../core/metrics.js';
import { qualify } from '../core/qualify.js';
import type { Ruleset } from '../core/ruleset.js';
import type { DayBucket, UserProfile } from '../core/state.js';

export interface ShipDayChange {
  userId: string;
  kind: 'promoted' | 'grace-started' | 'demoted' | 'tier-removed';
  from: string;
  to: string;
  /** For grace-started: the local date grace would end. */
  graceUntil?: string;
}

export async function judgeAtDeploy(
  candidate: Ruleset,
  profile: UserProfile,
  buckets: readonly DayBucket[],
  now: Date,
): Promise<ShipDayChange | undefined> {
  if (!candidate.tiers.some((tier) => tier.id === profile.tier)) {
    // The candidate has no such tier: the user's standing is undefined until the rules place them again.
    return { userId: profile.userId, kind: 'tier-removed', from: profile.tier, to: candidate.baseTier };
  }
  const today = localDate(now, candidate.timezone);
  const qualification = await qualify(candidate, factsAt(candidate, buckets, profile.attributes, today));
  const decision = await decideTier({ ruleset: candidate, profile, qualification, now, trigger: 'review' });
  for (const transition of decision.transitions) {
    switch (transition.kind) {
      case 'promoted':
      case 'demoted':
        return { userId: profile.userId, kind: transition.kind, from: transition.fromTier ?? profile.tier, to: transition.toTier };
      case 'grace-started':
        return {
          userId: profile.userId,
          kind: 'grace-started',
          from: profile.tier,
          to: transition.toTier,
          ...(transition.graceUntil !== undefined ? { graceUntil: transition.graceUntil } : {}),
        };
      default:
        continue;
    }
  }
  return undefined;
}

/** In user-id order, so that both engines and every run list them alike. */
export function sortShipDay(changes: ShipDayChange[]): ShipDayChange[] {
  return [...changes].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
}
