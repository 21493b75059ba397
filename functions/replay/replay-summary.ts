/**
 * What a replay did, tallied from the same activity both engines report (tier notices, journey starts, stops and
 * step outcomes), and turned into `summary.json`. Both engines share this code, so that a difference between their
 * summaries can only come from a difference in what they did.
 */
import type { UserEvent } from '../core/event.js';
import type { JourneyStepResult, JourneyTaskInput } from '../core/journey/journey-task.js';
import type { JourneyDefinition } from '../core/journey/journey-schema.js';
import { isSendStep } from '../core/journey/journey-schema.js';
import { isHeldOut } from '../core/journey/decide-journey-step.js';
import { plannedLengthMs } from '../core/journey/planned-length.js';
import { eventMatches } from '../core/metrics.js';
import { conversionDifference } from '../core/uplift.js';
import type { Ruleset } from '../core/ruleset.js';
import type { TierNotice } from '../core/state.js';
import { MAX_LISTED_REJECTIONS, type RejectedEvent } from './rejections.js';
import type {
  DaySnapshot,
  GroupOutcome,
  HoldoutComparison,
  JourneyFunnel,
  JourneyStepFunnel,
  SimulationSummary,
  TierFlow,
} from './simulation-summary.js';

/** What an engine reports while it replays; the full stack reports a superset (dead letters too). */
export type ReplayActivity =
  | { kind: 'notice'; notice: TierNotice }
  | { kind: 'journey-started'; executionName: string; tier: string; userId: string; at: string }
  | { kind: 'journey-stopped'; executionName: string; at: string }
  | { kind: 'journey-step'; task: JourneyTaskInput; result: JourneyStepResult; at: string };

export interface ExecutionRecord {
  executionName: string;
  userId: string;
  tier: string;
  startedAt: string;
  endedAt?: string;
  heldOut: boolean;
}

/** Orders a history as both engines replay it: by time, then event id, then position in the file. */
export function compareEventOrder(a: { at: number; eventId: string; line: number }, b: { at: number; eventId: string; line: number }): number {
  return a.at - b.at || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0) || a.line - b.line;
}

export class ActivityTally {
  readonly tierByUser = new Map<string, string>();
  readonly transitions = { promotions: 0, demotions: 0, graceStarted: 0, graceCleared: 0 };
  readonly flows = new Map<string, TierFlow>();
  readonly executions = new Map<string, ExecutionRecord>();
  readonly steps = new Map<string, JourneyStepFunnel>();
  /** Each user's tier changes, in the order they happened: when a user left a journey's tier. */
  readonly tierChangesByUser = new Map<string, Array<{ at: number; fromTier?: string; toTier: string }>>();
  private readonly seenNotices = new Set<string>();

  /** Each journey's steps by tier and step id, looked up on every step outcome. */
  private readonly stepsByTier = new Map<string, Map<string, JourneyDefinition['steps'][number]>>();

  constructor(private readonly journeys: Record<string, JourneyDefinition>) {}

  private stepOf(tier: string, stepId: string): JourneyDefinition['steps'][number] | undefined {
    let steps = this.stepsByTier.get(tier);
    if (!steps) {
      steps = new Map();
      // The first step of an id, as a search from the start would find it.
      for (const step of (Object.hasOwn(this.journeys, tier) ? this.journeys[tier]?.steps : undefined) ?? [])
        if (!steps.has(step.id)) steps.set(step.id, step);
      this.stepsByTier.set(tier, steps);
    }
    return steps.get(stepId);
  }

  record(activity: ReplayActivity): void {
    switch (activity.kind) {
      case 'notice': {
        const notice = activity.notice;
        if (this.seenNotices.has(notice.noticeId)) return;
        this.seenNotices.add(notice.noticeId);
        if (notice.detailType === 'TierChanged') {
          this.tierByUser.set(notice.userId, notice.toTier);
          const changes = this.tierChangesByUser.get(notice.userId) ?? [];
          changes.push({ at: Date.parse(notice.at), ...(notice.fromTier !== undefined ? { fromTier: notice.fromTier } : {}), toTier: notice.toTier });
          this.tierChangesByUser.set(notice.userId, changes);
          const from = notice.kind === 'entered' ? null : (notice.fromTier ?? null);
          const key = `${from}>${notice.toTier}`;
          const flow = this.flows.get(key) ?? { from, to: notice.toTier, count: 0 };
          flow.count += 1;
          this.flows.set(key, flow);
        }
        if (notice.kind === 'promoted') this.transitions.promotions += 1;
        else if (notice.kind === 'demoted') this.transitions.demotions += 1;
        else if (notice.kind === 'grace-started') this.transitions.graceStarted += 1;
        else if (notice.kind === 'grace-cleared') this.transitions.graceCleared += 1;
        return;
      }
      case 'journey-started':
        this.executions.set(activity.executionName, {
          executionName: activity.executionName,
          userId: activity.userId,
          tier: activity.tier,
          startedAt: activity.at,
          heldOut: false,
        });
        return;
      case 'journey-stopped': {
        const execution = this.executions.get(activity.executionName);
        if (execution && !execution.endedAt) execution.endedAt = activity.at;
        return;
      }
      case 'journey-step': {
        const { task, result } = activity;
        const step = this.stepOf(task.tier, task.stepId);
        if (!step || !(isSendStep(step) || step.type === 'branch')) return;
        const key = `${task.tier}/${task.stepId}`;
        const funnel = this.steps.get(key) ?? { stepId: task.stepId, kind: step.type, sent: 0, deferred: 0, exited: 0 };
        if (result.outcome === 'sent' || result.outcome === 'engaged' || result.outcome === 'not-engaged') funnel.sent += 1;
        else if (result.outcome === 'deferred') funnel.deferred += 1;
        else if (result.outcome === 'exit') {
          funnel.exited += 1;
          const execution = this.executions.get(task.executionName);
          if (execution) {
            execution.endedAt ??= activity.at;
            if (result.reason === 'held-out') execution.heldOut = true;
          }
        }
        this.steps.set(key, funnel);
        return;
      }
    }
  }

  /** Users in each tier now, every tier listed. */
  tierCounts(ruleset: Ruleset): Record<string, number> {
    const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((t) => [t.id, 0]));
    for (const tier of this.tierByUser.values()) tiers[tier] = (tiers[tier] ?? 0) + 1;
    return tiers;
  }
}

/**
 * Treated and held-out users observed over the same horizon: from each entry into the journey until the user
 * leaves the tier, the journey's planned length ends, or the replay ends, whichever comes first. (The execution's
 * own end is no horizon: a held-out user's execution ends at its first step.)
 */
function observeHoldout(
  _ruleset: Ruleset,
  journey: JourneyDefinition,
  tally: ActivityTally,
  executions: ExecutionRecord[],
  eventsByUser: ReadonlyMap<string, readonly UserEvent[]>,
  endAt: number,
): HoldoutComparison {
  const horizonMs = plannedLengthMs(journey);
  const conversion = journey.settings.exitOn?.conversion;
  const filter = conversion ? { eventTypes: [conversion.type], ...(conversion.where ? { where: conversion.where } : {}) } : undefined;
  const entriesByUser = new Map<string, number[]>();
  for (const execution of executions) {
    const entries = entriesByUser.get(execution.userId);
    if (entries) entries.push(Date.parse(execution.startedAt));
    else entriesByUser.set(execution.userId, [Date.parse(execution.startedAt)]);
  }
  const groups = { treated: { users: 0, converted: 0 }, heldOut: { users: 0, converted: 0 } };
  for (const [userId, entries] of entriesByUser) {
    const group = groups[isHeldOut(userId, journey) ? 'heldOut' : 'treated'];
    group.users += 1;
    if (!filter) continue;
    const changes = tally.tierChangesByUser.get(userId) ?? [];
    const conversions = (eventsByUser.get(userId) ?? []).filter((event) => eventMatches(filter, event)).map((event) => Date.parse(event.occurredAt));
    const converted = entries.some((start) => {
      const leftTier = changes.find((change) => change.fromTier === journey.tier && change.at >= start)?.at ?? Infinity;
      const until = Math.min(start + horizonMs, leftTier, endAt);
      return conversions.some((at) => at >= start && at <= until);
    });
    if (converted) group.converted += 1;
  }
  return holdoutComparison(Number.isFinite(horizonMs) ? horizonMs / 86_400_000 : null, groups.treated, groups.heldOut);
}

/** Each group's rate and the difference's 95% interval, in points, from the groups' counts. */
export function holdoutComparison(
  horizonDays: number | null,
  treated: { users: number; converted: number },
  heldOut: { users: number; converted: number },
): HoldoutComparison {
  const outcome = ({ users, converted }: { users: number; converted: number }): GroupOutcome => ({
    users,
    converted,
    rate: users > 0 ? converted / users : null,
  });
  const difference = conversionDifference(
    { successes: treated.converted, trials: treated.users },
    { successes: heldOut.converted, trials: heldOut.users },
  );
  return {
    horizonDays,
    treated: outcome(treated),
    heldOut: outcome(heldOut),
    difference: difference ? { points: difference.difference * 100, low: difference.low * 100, high: difference.high * 100 } : null,
  };
}

/** Tier flows as summary.json lists them: the biggest first. */
export function sortFlows(flows: Iterable<TierFlow>): TierFlow[] {
  return [...flows].sort((a, b) => b.count - a.count || String(a.from).localeCompare(String(b.from)) || a.to.localeCompare(b.to));
}

function journeyFunnels(
  ruleset: Ruleset,
  tally: ActivityTally,
  eventsByUser: ReadonlyMap<string, readonly UserEvent[]>,
  endAt: string,
): JourneyFunnel[] {
  return ruleset.tiers.flatMap((tier): JourneyFunnel[] => {
    const journey = ruleset.journeys[tier.id];
    if (!journey) return [];
    const executions = [...tally.executions.values()].filter((e) => e.tier === tier.id);
    const steps = journey.steps
      .filter((step) => isSendStep(step) || step.type === 'branch')
      .map(
        (step) =>
          tally.steps.get(`${tier.id}/${step.id}`) ?? {
            stepId: step.id,
            kind: step.type as JourneyStepFunnel['kind'],
            sent: 0,
            deferred: 0,
            exited: 0,
          },
      );
    return [
      {
        journeyId: journey.id,
        tier: tier.id,
        entered: executions.length,
        heldOut: executions.filter((e) => e.heldOut).length,
        steps,
        observed: observeHoldout(ruleset, journey, tally, executions, eventsByUser, Date.parse(endAt)),
      },
    ];
  });
}

export interface SummaryInput {
  ruleset: Ruleset;
  tally: ActivityTally;
  eventsByUser: ReadonlyMap<string, readonly UserEvent[]>;
  firstDate: string;
  lastDate: string;
  days: DaySnapshot[];
  counters: { eventsRecorded: number; duplicates: number };
  skippedLines: number;
  rejected: readonly RejectedEvent[];
  /** The instant the replay ended. */
  endAt: string;
}

export function buildSummary(input: SummaryInput): SimulationSummary {
  const { ruleset, tally, days } = input;
  return {
    rulesetVersion: ruleset.version,
    tiers: ruleset.tiers.map((t) => ({ id: t.id, name: t.name })),
    firstDate: input.firstDate,
    lastDate: input.lastDate,
    users: input.eventsByUser.size,
    events: {
      applied: input.counters.eventsRecorded,
      duplicates: input.counters.duplicates,
      skippedLines: input.skippedLines,
      rejected: input.rejected.length,
      rejections: input.rejected.slice(0, MAX_LISTED_REJECTIONS),
    },
    transitions: { ...tally.transitions },
    days,
    finalTiers: days[days.length - 1]!.tiers,
    flows: sortFlows(tally.flows.values()),
    journeys: journeyFunnels(ruleset, tally, input.eventsByUser, input.endAt),
  };
}
