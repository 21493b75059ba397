/** What changes when a candidate ruleset replaces the baseline, on the same history. */
import type { SimulationResult } from './replay-engine.js';
import type { RulesetComparison } from './simulation-summary.js';

/** How the final tiers of `candidate` differ from `baseline`, user by user. */
export function compareRulesets(baseline: SimulationResult, candidate: SimulationResult): RulesetComparison {
  const order = new Map(candidate.summary.tiers.map((t, i) => [t.id, i]));
  const moves = new Map<string, { from: string; to: string; count: number }>();
  let up = 0;
  let down = 0;
  for (const [userId, before] of baseline.finalTierByUser) {
    const after = candidate.finalTierByUser.get(userId) ?? before;
    if (after === before) continue;
    const key = `${before}>${after}`;
    const move = moves.get(key) ?? { from: before, to: after, count: 0 };
    move.count += 1;
    moves.set(key, move);
    if ((order.get(after) ?? 0) > (order.get(before) ?? 0)) up += 1;
    else down += 1;
  }
  return {
    rulesetVersion: candidate.summary.rulesetVersion,
    finalTiers: candidate.summary.finalTiers,
    usersMoved: up + down,
    moves: [...moves.values()].sort((a, b) => b.count - a.count),
    up,
    down,
  };
}
