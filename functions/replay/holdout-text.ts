/** The words for a holdout comparison, shared by the command's output and the HTML report. */
import { MIN_GROUP_SIZE } from '../core/uplift.js';
import type { GroupOutcome, HoldoutComparison } from './simulation-summary.js';

const pct = (rate: number | null): string => (rate === null ? '–' : `${(rate * 100).toFixed(1)}%`);
const signed = (points: number): string => `${points >= 0 ? '+' : '−'}${Math.abs(points).toFixed(1)}`;

export function describeGroup(group: GroupOutcome): string {
  return `${group.converted} of ${group.users} (${pct(group.rate)})`;
}

/** The difference with its interval, or why there is none. Never called an uplift: a replay cannot measure one. */
export function describeDifference(observed: HoldoutComparison): string {
  if (observed.heldOut.users === 0) return 'no holdout group';
  if (!observed.difference) return `too few to tell (under ${MIN_GROUP_SIZE} users in a group)`;
  const { points, low, high } = observed.difference;
  return `difference ${signed(points)} pts (95% interval ${signed(low)} to ${signed(high)})`;
}

export const REPLAY_HOLDOUT_CAVEAT =
  'A replayed history does not react to sends: held-out users behave exactly as they did, with or without the journey, so this gap describes the history, not what the journey adds. Measure that with the holdout in production.';
