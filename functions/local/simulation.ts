/**
 * `strata simulate`: a deterministic backtest of a ruleset over an event history, on a virtual clock, through the
 * embedded stack: the same ingest, review and journey-step handlers, the same DynamoDB store (on an in-memory
 * dynalite) and the same compiled journeys as production.
 *
 * Time moves in one-hour slices. At 02:00 local each day the nightly review runs. Within a slice each user's
 * events are delivered in waves (every user's first event, then every user's second...) and the stack settles
 * between waves, so a user's events are applied in order and every run gives the same result.
 */
import { addDays, localDate } from '../core/dates.js';
import type { UserEvent } from '../core/event.js';
import type { JourneyDefinition } from '../core/journey/journey-schema.js';
import { isSendStep } from '../core/journey/journey-schema.js';
import { eventMatches } from '../core/metrics.js';
import type { Ruleset } from '../core/ruleset.js';
import { createVirtualClock } from './clock.js';
import { instantAtLocalTime } from '../core/local-time.js';
import { type StackActivity, startLocalStack } from './local-stack.js';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';
import { localEnvelope } from './local-bus.js';
import type { DaySnapshot, JourneyFunnel, JourneyStepFunnel, RulesetComparison, SimulationSummary, TierFlow } from './simulation-summary.js';

const HOUR_MS = 3_600_000;
const REVIEW_MINUTE_OF_DAY = 2 * 60;

export interface SimulationOptions {
  ruleset: Ruleset;
  events: UserEvent[];
  skippedLines?: number;
  /** Keep running nightly reviews this many days past the last event, so that grace periods play out. */
  extraDays?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SimulationResult {
  summary: SimulationSummary;
  /** Each user's tier at the end, for comparing rulesets. */
  finalTierByUser: Map<string, string>;
}

interface ExecutionRecord {
  executionName: string;
  userId: string;
  tier: string;
  startedAt: string;
  endedAt?: string;
  heldOut: boolean;
}

/** Tallies what the stack did, from the same notices, actions and journey outcomes the bus would carry. */
class ActivityTally {
  readonly tierByUser = new Map<string, string>();
  readonly transitions = { promotions: 0, demotions: 0, graceStarted: 0, graceCleared: 0 };
  readonly flows = new Map<string, TierFlow>();
  readonly executions = new Map<string, ExecutionRecord>();
  readonly steps = new Map<string, JourneyStepFunnel>();
  private readonly seenNotices = new Set<string>();

  constructor(private readonly journeys: Record<string, JourneyDefinition>) {}

  record(activity: StackActivity): void {
    switch (activity.kind) {
      case 'notice': {
        const notice = activity.notice;
        if (this.seenNotices.has(notice.noticeId)) return;
        this.seenNotices.add(notice.noticeId);
        if (notice.detailType === 'TierChanged') {
          this.tierByUser.set(notice.userId, notice.toTier);
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
        this.executions.set(activity.executionName, { executionName: activity.executionName, userId: activity.userId, tier: activity.tier, startedAt: activity.at, heldOut: false });
        return;
      case 'journey-stopped': {
        const execution = this.executions.get(activity.executionName);
        if (execution && !execution.endedAt) execution.endedAt = activity.at;
        return;
      }
      case 'journey-step': {
        const { task, result } = activity;
        const journey = this.journeys[task.tier];
        const step = journey?.steps.find((s) => s.id === task.stepId);
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
      case 'action':
      case 'dead-letter':
        return;
    }
  }
}

function toEnvelope(event: UserEvent): EventBridgeEnvelope {
  return localEnvelope({ source: 'simulate.history', detailType: event.type, detail: { ...event }, time: new Date(event.occurredAt) });
}

function journeyFunnels(ruleset: Ruleset, tally: ActivityTally, events: UserEvent[], endAt: string): JourneyFunnel[] {
  const eventsByUser = new Map<string, UserEvent[]>();
  for (const event of events) eventsByUser.set(event.userId, [...(eventsByUser.get(event.userId) ?? []), event]);
  return ruleset.tiers.flatMap((tier): JourneyFunnel[] => {
    const journey = ruleset.journeys[tier.id];
    if (!journey) return [];
    const executions = [...tally.executions.values()].filter((e) => e.tier === tier.id);
    const conversion = journey.settings.exitOn?.conversion;
    const converted = { treated: 0, holdout: 0 };
    if (conversion) {
      const filter = { eventTypes: [conversion.type], ...(conversion.where ? { where: conversion.where } : {}) };
      for (const execution of executions) {
        const until = execution.endedAt ?? endAt;
        const didConvert = (eventsByUser.get(execution.userId) ?? []).some(
          (event) => event.occurredAt >= execution.startedAt && event.occurredAt <= until && eventMatches(filter, event),
        );
        if (didConvert) converted[execution.heldOut ? 'holdout' : 'treated'] += 1;
      }
    }
    const steps = journey.steps
      .filter((step) => isSendStep(step) || step.type === 'branch')
      .map((step) => tally.steps.get(`${tier.id}/${step.id}`) ?? { stepId: step.id, kind: step.type as JourneyStepFunnel['kind'], sent: 0, deferred: 0, exited: 0 });
    return [{ journeyId: journey.id, tier: tier.id, entered: executions.length, heldOut: executions.filter((e) => e.heldOut).length, steps, converted }];
  });
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const { ruleset } = options;
  const events = [...options.events].sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt) || (a.eventId < b.eventId ? -1 : 1));
  if (events.length === 0) throw new Error('Simulate: no events to replay');
  const zone = ruleset.timezone;
  const firstDate = localDate(events[0]!.occurredAt, zone);
  const lastDate = addDays(localDate(events[events.length - 1]!.occurredAt, zone), options.extraDays ?? 0);
  const clock = createVirtualClock(instantAtLocalTime(firstDate, 0, zone));
  const tally = new ActivityTally(ruleset.journeys);
  const stack = await startLocalStack({ ruleset, clock, onActivity: (activity) => tally.record(activity), ingestConcurrency: 4, batchWindowMs: 0 });
  clock.settleWith(() => stack.settle());
  try {
    await stack.store.setReviewCheckpoint(addDays(firstDate, -1));
    const days: DaySnapshot[] = [];
    let delivered = 0;
    let next = 0;
    for (let date = firstDate; date <= lastDate; date = addDays(date, 1)) {
      const dayStart = instantAtLocalTime(date, 0, zone).getTime();
      for (let hour = 0; hour < 24; hour++) {
        const sliceEnd = dayStart + (hour + 1) * HOUR_MS;
        if (hour === REVIEW_MINUTE_OF_DAY / 60) {
          await clock.advanceTo(instantAtLocalTime(date, REVIEW_MINUTE_OF_DAY, zone));
          await stack.runNightlyReview();
          await stack.settle();
        }
        const slice: UserEvent[] = [];
        while (next < events.length && Date.parse(events[next]!.occurredAt) < sliceEnd) slice.push(events[next++]!);
        if (slice.length === 0) continue;
        await clock.advanceTo(new Date(sliceEnd));
        const byUser = new Map<string, UserEvent[]>();
        for (const event of slice) byUser.set(event.userId, [...(byUser.get(event.userId) ?? []), event]);
        for (let wave = 0; ; wave++) {
          const waveEvents = [...byUser.values()].map((list) => list[wave]).filter((e): e is UserEvent => e !== undefined);
          if (waveEvents.length === 0) break;
          await stack.bus.put(waveEvents.map(toEnvelope));
          await stack.settle();
        }
        delivered += slice.length;
        options.onProgress?.(delivered, events.length);
      }
      const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((t) => [t.id, 0]));
      for (const tier of tally.tierByUser.values()) tiers[tier] = (tiers[tier] ?? 0) + 1;
      days.push({ date, tiers });
    }
    await clock.advanceTo(instantAtLocalTime(addDays(lastDate, 1), 0, zone));
    const endAt = clock.now().toISOString();
    const summary: SimulationSummary = {
      rulesetVersion: ruleset.version,
      tiers: ruleset.tiers.map((t) => ({ id: t.id, name: t.name })),
      firstDate,
      lastDate,
      users: new Set(events.map((e) => e.userId)).size,
      events: { applied: stack.counters.eventsRecorded, duplicates: stack.counters.duplicates, skippedLines: options.skippedLines ?? 0 },
      transitions: { ...tally.transitions },
      days,
      finalTiers: days[days.length - 1]!.tiers,
      flows: [...tally.flows.values()].sort((a, b) => b.count - a.count || String(a.from).localeCompare(String(b.from)) || a.to.localeCompare(b.to)),
      journeys: journeyFunnels(ruleset, tally, events, endAt),
    };
    return { summary, finalTierByUser: tally.tierByUser };
  } finally {
    await stack.close();
  }
}

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
