/**
 * A replay split over partitions of the users. Users never share state (an event, a review and a journey step each
 * touch one user), so each partition can be replayed apart, on the clock of the whole history (see replayPrepared),
 * and the partitions' results added up. test/replay/partitions.test.ts checks that the sum equals the whole.
 */
import type { Ruleset } from '../core/ruleset.js';
import type { SimulationResult } from './replay-engine.js';
import { MAX_LISTED_REJECTIONS } from './rejections.js';
import { holdoutComparison, sortFlows } from './replay-summary.js';
import { sortShipDay } from './ship-day.js';
import type { JourneyFunnel, SimulationSummary, TierFlow } from './simulation-summary.js';

/** Which of `count` partitions a user belongs to: a stable hash of the id (FNV-1a), the same in every thread. */
export function partitionOf(userId: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}

/** The instants of every partition's accepted events, merged into one sorted history clock. */
export function mergeHistoryTimes(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all.sort();
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, count] of Object.entries(from)) into[key] = (into[key] ?? 0) + count;
}

function mergeJourney(journeys: JourneyFunnel[]): JourneyFunnel {
  const first = journeys[0]!;
  const sum = (pick: (journey: JourneyFunnel) => number): number => journeys.reduce((total, journey) => total + pick(journey), 0);
  const treated = { users: sum((j) => j.observed.treated.users), converted: sum((j) => j.observed.treated.converted) };
  const heldOut = { users: sum((j) => j.observed.heldOut.users), converted: sum((j) => j.observed.heldOut.converted) };
  return {
    journeyId: first.journeyId,
    tier: first.tier,
    entered: sum((j) => j.entered),
    heldOut: sum((j) => j.heldOut),
    steps: first.steps.map((step, i) => ({
      ...step,
      sent: sum((j) => j.steps[i]!.sent),
      deferred: sum((j) => j.steps[i]!.deferred),
      exited: sum((j) => j.steps[i]!.exited),
    })),
    observed: holdoutComparison(first.observed.horizonDays, treated, heldOut),
  };
}

/** One summary from the summaries of disjoint partitions of the users, replayed on the same clock. */
export function mergeSummaries(ruleset: Ruleset, parts: readonly SimulationSummary[]): SimulationSummary {
  const first = parts[0];
  if (!first) throw new Error('Replay partitions: no partition summaries to merge');
  const sum = (pick: (summary: SimulationSummary) => number): number => parts.reduce((total, part) => total + pick(part), 0);
  const rejections = parts
    .flatMap((part) => part.events.rejections)
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
    .slice(0, MAX_LISTED_REJECTIONS);
  const flows = new Map<string, TierFlow>();
  for (const flow of parts.flatMap((part) => part.flows)) {
    const key = `${flow.from}>${flow.to}`;
    const merged = flows.get(key) ?? { from: flow.from, to: flow.to, count: 0 };
    merged.count += flow.count;
    flows.set(key, merged);
  }
  const days = first.days.map((day, i) => {
    const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((tier) => [tier.id, 0]));
    for (const part of parts) addCounts(tiers, part.days[i]!.tiers);
    return { date: day.date, tiers };
  });
  return {
    rulesetVersion: first.rulesetVersion,
    tiers: first.tiers,
    firstDate: first.firstDate,
    lastDate: first.lastDate,
    users: sum((part) => part.users),
    events: {
      applied: sum((part) => part.events.applied),
      duplicates: sum((part) => part.events.duplicates),
      skippedLines: sum((part) => part.events.skippedLines),
      rejected: sum((part) => part.events.rejected),
      rejections,
    },
    transitions: {
      promotions: sum((part) => part.transitions.promotions),
      demotions: sum((part) => part.transitions.demotions),
      graceStarted: sum((part) => part.transitions.graceStarted),
      graceCleared: sum((part) => part.transitions.graceCleared),
    },
    days,
    finalTiers: days[days.length - 1]!.tiers,
    flows: sortFlows(flows.values()),
    journeys: first.journeys.map((_, i) => mergeJourney(parts.map((part) => part.journeys[i]!))),
  };
}

/** One result from the results of disjoint partitions of the users. */
export function mergeResults(ruleset: Ruleset, parts: readonly SimulationResult[]): SimulationResult {
  const finalTierByUser = new Map<string, string>();
  for (const part of parts) for (const [userId, tier] of part.finalTierByUser) finalTierByUser.set(userId, tier);
  const rejected = parts.flatMap((part) => part.rejected).sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const shipDays = parts.flatMap((part) => part.shipDay ?? []);
  return {
    summary: mergeSummaries(
      ruleset,
      parts.map((part) => part.summary),
    ),
    finalTierByUser,
    rejected,
    ...(parts.some((part) => part.shipDay) ? { shipDay: sortShipDay(shipDays) } : {}),
  };
}
