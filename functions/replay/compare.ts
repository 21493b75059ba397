/** What changes when a candidate ruleset replaces the baseline, on the same history. */
import type { SimulationResult } from './replay-engine.js';
import type { ComparedSide, JourneyNumbers, RulesetComparison, ShipDayMove, SimulationSummary } from './simulation-summary.js';

function journeyNumbers(summary: SimulationSummary, tier: string): JourneyNumbers | null {
  const journey = summary.journeys.find((j) => j.tier === tier);
  if (!journey) return null;
  return {
    journeyId: journey.journeyId,
    entered: journey.entered,
    sent: Object.fromEntries(journey.steps.map((step) => [step.stepId, step.sent])),
    converted: journey.observed.treated.converted + journey.observed.heldOut.converted,
  };
}

/** Tier ids of both ladders: the baseline's in order, then any the candidate adds. */
function allTiers(a: Array<{ id: string }>, b: Array<{ id: string }>): string[] {
  return [...new Set([...a.map((t) => t.id), ...b.map((t) => t.id)])];
}

/**
 * How the candidate differs from the baseline on the same history: who ends where (by user id), what each journey
 * does, and what deploying it over the baseline's end state would do at once. `candidate.shipDay` must come from
 * replaying the baseline with `shipDayRuleset` set to the candidate.
 */
export function compareRulesets(
  baseline: SimulationResult,
  candidate: SimulationResult,
  sides: { baseline: ComparedSide; candidate: ComparedSide },
): RulesetComparison {
  const ladder = allTiers(baseline.summary.tiers, candidate.summary.tiers);
  const order = new Map(candidate.summary.tiers.map((t, i) => [t.id, i]));
  const baselineOrder = new Map(baseline.summary.tiers.map((t, i) => [t.id, i]));
  const rank = (tier: string): number => order.get(tier) ?? baselineOrder.get(tier) ?? 0;
  const moves = new Map<string, { from: string; to: string; count: number }>();
  const users: RulesetComparison['users'] = [];
  let up = 0;
  let down = 0;
  for (const [userId, before] of baseline.finalTierByUser) {
    const after = candidate.finalTierByUser.get(userId) ?? before;
    if (after === before) continue;
    users.push({ userId, from: before, to: after });
    const key = `${before}>${after}`;
    const move = moves.get(key) ?? { from: before, to: after, count: 0 };
    move.count += 1;
    moves.set(key, move);
    if (rank(after) > rank(before)) up += 1;
    else down += 1;
  }
  users.sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  const finalTiers = Object.fromEntries(ladder.map((tier) => [tier, candidate.summary.finalTiers[tier] ?? 0]));
  const shipDayUsers = baseline.shipDay ?? [];
  const countKind = (kind: ShipDayMove['kind']): number => shipDayUsers.filter((change) => change.kind === kind).length;
  return {
    baseline: sides.baseline,
    candidate: sides.candidate,
    rulesetVersion: candidate.summary.rulesetVersion,
    tiers: candidate.summary.tiers,
    finalTiers,
    usersMoved: up + down,
    moves: [...moves.values()].sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to)),
    up,
    down,
    users,
    journeys: ladder
      .map((tier) => ({ tier, before: journeyNumbers(baseline.summary, tier), after: journeyNumbers(candidate.summary, tier) }))
      .filter((j) => j.before || j.after),
    shipDay: {
      promoted: countKind('promoted'),
      graceStarted: countKind('grace-started'),
      demoted: countKind('demoted'),
      tierRemoved: countKind('tier-removed'),
      users: shipDayUsers,
    },
  };
}

/** The moves as CSV (userId,from,to), quoting any field that needs it. */
export function movesCsv(users: RulesetComparison['users']): string {
  const field = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
  return ['userId,from,to', ...users.map((u) => [u.userId, u.from, u.to].map(field).join(','))].join('\n') + '\n';
}
