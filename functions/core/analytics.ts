/**
 * Production analytics as counters: the tier census, the flows between tiers and each journey's funnel, kept by
 * atomic additions on a few small counter items instead of scans. Pure: this module says what to count and how
 * to read the counts back; the adapters (functions/aws/dynamo-counters.ts) store them.
 *
 * What writes, and why it stays exact:
 * - A tier change (and the journey entry it starts) is counted by the outbox flush, under the change's own id, in
 *   a write that is refused when that id is already on the counter item. The outbox is emptied only after the
 *   counter write, so a crashed or repeated flush either finds the id (and adds nothing) or never counted. The id is
 *   taken off the item once the outbox is cleared, lazily, in the adapter's next write to the same item.
 * - A conversion is counted once per journey entry, under the entry's id, on the entry day's item (the guard stays).
 * - A journey execution's step outcomes (sends, deferrals, exits) travel in the execution's own state (each Task
 *   sees it), and make one tally when the execution ends: by the Task that ends it (an exit, or the step after which
 *   only Waits and the end remain), or, for an execution stopped by a tier change or an erasure, by whoever stopped
 *   it, from the execution data the stop returns. The tally is not written then: it is put on the tally queue, under
 *   the execution's id, and the nightly review drains the queue into batch items of about 1 KB of tallies of every
 *   user (tally-batches.ts), so a night's journeys cost a few writes, and a deferral writes nothing by itself. The
 *   count keeps the first tally drained under an id and drops the others (a retried final Task, a repeated flush,
 *   the final Task racing the stop), and a count that crashes is repeated without counting twice (it finds the ids
 *   stored in the last nights' batch items). The outcomes are counted on the entry's day, like its conversion: a
 *   day's journey counters are the funnel of that day's entries, complete once the nightly count after the
 *   executions' ends has run.
 * - Executions of a definition compiled before the state was passed to Tasks count each send (once, with its send
 *   record), deferral and exit as they happen, as before.
 * - Actions marked `test` (from `strata send-test`) are never counted.
 */
import { localDate } from './dates.js';
import { assertNever } from './errors.js';
import type { UserEvent } from './event.js';
import { hashPercent, shortHash } from './hash.js';
import { isHeldOut } from './journey/decide-journey-step.js';
import type { JourneyDefinition } from './journey/journey-schema.js';
import type { ExitReason, JourneyStepResult } from './journey/journey-task.js';
import { plannedLengthMs } from './journey/planned-length.js';
import { eventMatches } from './metrics.js';
import type { StoppedExecution } from './ports.js';
import type { Ruleset } from './ruleset.js';
import type { PendingJourney, TierNotice, UserProfile } from './state.js';
import { conversionDifference } from './uplift.js';

/** Counter items per date and kind: spreads the writes of a busy day without making reports read much. */
export const COUNTER_SHARDS = 4;

/**
 * The names of the counters on a day's tier item and journey items. Short, because an item's bytes are its write
 * units; `|` cannot occur in tier, journey or step ids (they are kebab/snake case), so the names parse back.
 */
export const COUNTER_NAMES = {
  /** Census change of a tier that day (+1 entered, −1 left). */
  census: (tier: string): string => `t|${tier}`,
  /** Moves from one tier to another; from '' = a user entering the ladder, to '' = a user erased. */
  flow: (from: string, to: string): string => `f|${from}|${to}`,
  /** Journey entries that day, treated and held out. */
  enteredTreated: (journeyId: string): string => `e|${journeyId}`,
  enteredHeldOut: (journeyId: string): string => `h|${journeyId}`,
  /** Conversions of the entries of that day (counted on the entry's day), treated and held out. */
  convertedTreated: (journeyId: string): string => `ct|${journeyId}`,
  convertedHeldOut: (journeyId: string): string => `ch|${journeyId}`,
  /** On a journey's item: step outcomes that day. */
  sent: (stepId: string): string => `s|${stepId}`,
  deferred: (stepId: string): string => `d|${stepId}`,
  exited: (stepId: string, reason: ExitReason): string => `x|${stepId}|${reason}`,
} as const;

/**
 * Counts added once, under `id`: to a day's tier item (a redelivered change finds the id and adds nothing), or, for
 * an execution's tally (`journeyId` set), to that journey's funnel by the nightly count (tally-batches.ts).
 */
export interface TierCountOccurrence {
  id: string;
  /** Local date of the change (of the entry, for a conversion). */
  date: string;
  counts: Record<string, number>;
  /** Conversions keep their guard: a second conversion of the same entry must never count. */
  keepGuard?: boolean;
  /** A journey execution's outcomes: counted on that journey's funnel of `date` rather than the tier item. */
  journeyId?: string;
}

/** An execution's tally: a once-only occurrence counted on its journey's funnel, on its entry date (tally-batches.ts). */
export type ExecutionTally = TierCountOccurrence & { journeyId: string };

/** Counts added to a journey's day item (no guard; see the top of this file). */
export interface JourneyStepCount {
  journeyId: string;
  stepId: string;
  date: string;
  /** Spreads the item writes; stable per step of an execution. */
  shardKey: string;
  counts: Record<string, number>;
}

/** The counter side of the store, as the core services write it. */
export interface AnalyticsCounters {
  /** Adds the occurrence's counts unless its id is already on the item; resolves whether it added them. */
  addOnce(occurrence: TierCountOccurrence): Promise<boolean>;
  /** The occurrence's once-only step is done (its outbox is cleared): its guard may go with the next write. */
  settle(occurrence: TierCountOccurrence): void;
  addJourneyStep(count: JourneyStepCount): Promise<void>;
}

/** The counters of one day, summed over the shards. */
export interface CounterDay {
  date: string;
  counts: Record<string, number>;
}

export interface CensusSnapshot {
  date: string;
  tiers: Record<string, number>;
}

/** What reports and the nightly snapshot read. */
export interface AnalyticsReader {
  /** The tier items' counts per date, from `fromDate` on (every date when absent), oldest first. */
  readTierDays(fromDate?: string): Promise<CounterDay[]>;
  /**
   * A journey's step outcomes per entry date, from `fromDate` on: its tallies counted by the nightly count (drained
   * from `fromDate` on), and its own items (older deployments, definitions that count per step).
   */
  readJourneyDays(journeyId: string, fromDate: string): Promise<CounterDay[]>;
  /** readJourneyDays of several journeys at once, reading the nightly count's batch items once. */
  readJourneysDays(journeyIds: readonly string[], fromDate: string): Promise<Record<string, CounterDay[]>>;
  readCensusSnapshots(fromDate: string): Promise<CensusSnapshot[]>;
  writeCensusSnapshot(snapshot: CensusSnapshot): Promise<void>;
}

export function counterShard(key: string): number {
  return Math.floor(hashPercent('counter:' + key) / (100 / COUNTER_SHARDS)) % COUNTER_SHARDS;
}

const add = (counts: Record<string, number>, name: string, by: number): void => {
  counts[name] = (counts[name] ?? 0) + by;
};

/** The journey a tier runs, if any. */
function journeyOf(ruleset: Ruleset, tier: string): JourneyDefinition | undefined {
  return ruleset.journeys[tier];
}

/**
 * What an outbox's tier changes add to the counters: one occurrence per TierChanged notice that moved the tier
 * (a lock to the same tier moves nothing), and the journey entry on the change that starts it.
 */
export function tierChangeOccurrences(
  ruleset: Ruleset,
  userId: string,
  notices: readonly TierNotice[],
  pendingJourney: PendingJourney | undefined,
): TierCountOccurrence[] {
  const moves = notices.filter((notice) => notice.detailType === 'TierChanged' && notice.fromTier !== notice.toTier);
  const start = pendingJourney?.start;
  const lastMoveToStart = start ? moves.map((notice) => notice.toTier).lastIndexOf(start.tier) : -1;
  const occurrences = moves.map((notice, i): TierCountOccurrence => {
    const counts: Record<string, number> = {};
    if (notice.fromTier !== undefined) add(counts, COUNTER_NAMES.census(notice.fromTier), -1);
    add(counts, COUNTER_NAMES.census(notice.toTier), 1);
    add(counts, COUNTER_NAMES.flow(notice.fromTier ?? '', notice.toTier), 1);
    if (start && i === lastMoveToStart) addEntry(ruleset, userId, start.tier, counts);
    return { id: 'n' + notice.noticeId, date: localDate(new Date(notice.at), ruleset.timezone), counts };
  });
  if (start && lastMoveToStart < 0) {
    // A start with no tier move beside it (an outbox merged from an older profile): its entry still counts once.
    const counts: Record<string, number> = {};
    addEntry(ruleset, userId, start.tier, counts);
    if (Object.keys(counts).length > 0)
      occurrences.push({ id: 'j' + shortHash(start.executionName, 16), date: localDate(new Date(start.startedAt), ruleset.timezone), counts });
  }
  return occurrences;
}

function addEntry(ruleset: Ruleset, userId: string, tier: string, counts: Record<string, number>): void {
  const journey = journeyOf(ruleset, tier);
  if (!journey) return;
  add(counts, isHeldOut(userId, journey) ? COUNTER_NAMES.enteredHeldOut(journey.id) : COUNTER_NAMES.enteredTreated(journey.id), 1);
}

/** An erased user leaves the census: their tier loses one (under an id of the profile version, so a rerun adds nothing). */
export function erasureOccurrence(ruleset: Ruleset, profile: UserProfile, now: Date): TierCountOccurrence {
  const counts: Record<string, number> = {};
  add(counts, COUNTER_NAMES.census(profile.tier), -1);
  add(counts, COUNTER_NAMES.flow(profile.tier, ''), 1);
  return { id: 'x' + shortHash(`${profile.userId}|${profile.version}|forget`, 16), date: localDate(now, ruleset.timezone), counts };
}

/**
 * The conversion an event is, for the journey the user was in when it happened, observed over the replay's
 * honest-holdout horizon: from the journey's entry until the user leaves the tier (then the profile holds another
 * journey), the journey's planned length ends, or now. Treated and held-out users alike: a held-out user's
 * execution ends at its first step, but their profile keeps the journey's entry.
 */
export function conversionOccurrence(ruleset: Ruleset, profile: UserProfile | undefined, event: UserEvent): TierCountOccurrence | undefined {
  const entry = profile?.journey;
  if (!profile || !entry || entry.tier !== profile.tier) return undefined;
  const journey = journeyOf(ruleset, entry.tier);
  const conversion = journey?.settings.exitOn?.conversion;
  if (!journey || !conversion) return undefined;
  if (!eventMatches({ eventTypes: [conversion.type], ...(conversion.where ? { where: conversion.where } : {}) }, event)) return undefined;
  const at = Date.parse(event.occurredAt);
  const startedAt = Date.parse(entry.startedAt);
  if (!(at >= startedAt && at <= startedAt + plannedLengthMs(journey))) return undefined;
  const heldOut = isHeldOut(profile.userId, journey);
  return {
    id: 'c' + shortHash(entry.executionName, 16),
    date: localDate(new Date(entry.startedAt), ruleset.timezone),
    counts: { [heldOut ? COUNTER_NAMES.convertedHeldOut(journey.id) : COUNTER_NAMES.convertedTreated(journey.id)]: 1 },
    keepGuard: true,
  };
}

/** A step's result as the execution state keeps it (at `$.results.<stepId>`): only what the tally reads. */
export interface KeptStepResult {
  outcome: string;
  reason?: string;
  /** How many times the step was deferred before this result (or, for a deferral, including it). */
  deferrals?: number;
}

/**
 * What one journey execution adds, from the step results its state holds: per step, a send, its deferrals, and an
 * exit by reason. A step stopped while deferred keeps its deferrals. Branch checks and local-time waits add
 * nothing (the funnel lists sends). Queued under the execution's id, and counted on its entry day's funnel.
 */
export function executionTally(
  ruleset: Pick<Ruleset, 'timezone'>,
  execution: { journeyId: string; executionName: string; startedAt: string },
  results: Readonly<Record<string, KeptStepResult>>,
): ExecutionTally | undefined {
  const counts: Record<string, number> = {};
  for (const [stepId, result] of Object.entries(results)) {
    if (result.outcome === 'sent') add(counts, COUNTER_NAMES.sent(stepId), 1);
    if (result.outcome === 'exit') add(counts, COUNTER_NAMES.exited(stepId, (result.reason ?? 'unknown') as ExitReason), 1);
    // Deferrals count with the step's send or exit, or as the step stood when the execution stopped; a branch check's,
    // once it is answered (engaged or not), count nothing: the funnel lists sends.
    const deferrals = result.outcome === 'sent' || result.outcome === 'exit' || result.outcome === 'deferred' ? (result.deferrals ?? 0) : 0;
    if (deferrals > 0) add(counts, COUNTER_NAMES.deferred(stepId), deferrals);
  }
  if (Object.keys(counts).length === 0) return undefined;
  return {
    id: 'j' + shortHash(execution.executionName, 16),
    date: localDate(new Date(execution.startedAt), ruleset.timezone),
    counts,
    journeyId: execution.journeyId,
  };
}

/** The tally of an execution stopped by a tier change, from the data the stop returned. */
export function stoppedExecutionTally(ruleset: Ruleset, executionName: string, stopped: StoppedExecution): ExecutionTally | undefined {
  const journey = journeyOf(ruleset, stopped.tier);
  if (!journey) return undefined;
  return executionTally(ruleset, { journeyId: journey.id, executionName, startedAt: stopped.startedAt }, keptStepResults(stopped.data));
}

/** The step results an execution's data holds (`$.results`), read defensively: it comes from outside the core. */
export function keptStepResults(data: unknown): Record<string, KeptStepResult> {
  const results = (data as { results?: unknown } | null | undefined)?.results;
  if (results === null || typeof results !== 'object' || Array.isArray(results)) return {};
  const kept: Record<string, KeptStepResult> = {};
  for (const [stepId, value] of Object.entries(results as Record<string, unknown>)) {
    const result = value as { outcome?: unknown; reason?: unknown; deferrals?: unknown } | null;
    if (typeof result?.outcome !== 'string') continue;
    kept[stepId] = {
      outcome: result.outcome,
      ...(typeof result.reason === 'string' ? { reason: result.reason } : {}),
      ...(typeof result.deferrals === 'number' && Number.isInteger(result.deferrals) && result.deferrals > 0 ? { deferrals: result.deferrals } : {}),
    };
  }
  return kept;
}

/**
 * What a journey step's outcome adds, for executions of a definition that does not pass its state to Tasks
 * (compiled before executionTally): undefined for outcomes that are not sends, deferrals or exits.
 */
export function journeyStepCount(
  step: { journeyId: string; stepId: string; executionName: string },
  result: JourneyStepResult,
  date: string,
): JourneyStepCount | undefined {
  let counts: Record<string, number>;
  switch (result.outcome) {
    case 'sent':
      counts = { [COUNTER_NAMES.sent(step.stepId)]: 1 };
      break;
    case 'deferred':
      counts = { [COUNTER_NAMES.deferred(step.stepId)]: 1 };
      break;
    case 'exit':
      counts = { [COUNTER_NAMES.exited(step.stepId, result.reason)]: 1 };
      break;
    case 'engaged':
    case 'not-engaged':
    case 'wait':
      return undefined;
    default:
      return assertNever(result, 'journey step outcome');
  }
  return { journeyId: step.journeyId, stepId: step.stepId, date, shardKey: `${step.executionName}:${step.stepId}`, counts };
}

// ---- Reading the counts back ----------------------------------------------------------------------------------

/** Parses a counter name into its kind and parts; undefined for names this version does not know. */
export function parseCounterName(name: string): { kind: string; parts: string[] } | undefined {
  const [kind, ...parts] = name.split('|');
  if (kind === undefined || parts.length === 0) return undefined;
  return { kind, parts };
}

/** Users per tier from every census change ever counted: exact, since each change was added once. */
export function censusFromDays(ruleset: Ruleset, days: readonly CounterDay[]): Record<string, number> {
  const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((tier) => [tier.id, 0]));
  for (const day of days) {
    for (const [name, value] of Object.entries(day.counts)) {
      const parsed = parseCounterName(name);
      if (parsed?.kind === 't') tiers[parsed.parts[0]!] = (tiers[parsed.parts[0]!] ?? 0) + value;
    }
  }
  return tiers;
}

/** Users per tier at the end of each date, from the census changes (oldest first). */
export function censusByDate(ruleset: Ruleset, days: readonly CounterDay[]): CensusSnapshot[] {
  const running: Record<string, number> = Object.fromEntries(ruleset.tiers.map((tier) => [tier.id, 0]));
  return [...days]
    .sort((a, b) => (a.date < b.date ? -1 : 1))
    .map((day) => {
      for (const [name, value] of Object.entries(day.counts)) {
        const parsed = parseCounterName(name);
        if (parsed?.kind === 't') running[parsed.parts[0]!] = (running[parsed.parts[0]!] ?? 0) + value;
      }
      return { date: day.date, tiers: { ...running } };
    });
}

export interface ReportFlow {
  /** null for users entering the ladder. */
  from: string | null;
  /** null for users erased. */
  to: string | null;
  count: number;
}

export interface ReportStep {
  stepId: string;
  kind: 'content' | 'invite' | 'offer';
  sent: number;
  deferred: number;
  exited: number;
  exits: Record<string, number>;
}

export interface ReportGroup {
  users: number;
  converted: number;
  rate: number | null;
}

export interface ReportJourney {
  journeyId: string;
  tier: string;
  entered: number;
  treated: number;
  heldOut: number;
  steps: ReportStep[];
  /** Exits by reason over all steps. */
  exits: Record<string, number>;
  observed: {
    horizonDays: number | null;
    treated: ReportGroup;
    heldOut: ReportGroup;
    difference: { points: number; low: number; high: number } | null;
  };
}

/** `strata report --json`: the period's counters, read back and summed. */
export interface ProductionReport {
  rulesetVersion: string;
  tiers: Array<{ id: string; name: string }>;
  /** The first and last date of the period (local dates in the ruleset's zone). */
  firstDate: string;
  lastDate: string;
  /** Users in each tier now, from the census counters. */
  census: Record<string, number>;
  /** Users in each tier at the end of each date of the period: the nightly snapshots, or the counters where none. */
  overTime: CensusSnapshot[];
  flows: ReportFlow[];
  journeys: ReportJourney[];
  /**
   * Journey executions that ended (or were stopped) and wait in the tally queue for the nightly count: their steps
   * are not in the funnels yet. Absent when the queue could not be asked.
   */
  talliesWaiting?: number;
}

export interface ReportInput {
  ruleset: Ruleset;
  /** Every tier day ever counted (the census needs them all). */
  tierDays: readonly CounterDay[];
  journeyDays: Readonly<Record<string, readonly CounterDay[]>>;
  snapshots: readonly CensusSnapshot[];
  firstDate: string;
  lastDate: string;
}

export function buildProductionReport(input: ReportInput): ProductionReport {
  const { ruleset, firstDate, lastDate } = input;
  const inPeriod = (day: { date: string }): boolean => day.date >= firstDate && day.date <= lastDate;
  const periodTierDays = input.tierDays.filter(inPeriod);
  const totals: Record<string, number> = {};
  for (const day of periodTierDays) for (const [name, value] of Object.entries(day.counts)) add(totals, name, value);

  const flows: ReportFlow[] = [];
  for (const [name, count] of Object.entries(totals)) {
    const parsed = parseCounterName(name);
    if (parsed?.kind !== 'f' || count === 0) continue;
    const [from = '', to = ''] = parsed.parts;
    flows.push({ from: from === '' ? null : from, to: to === '' ? null : to, count });
  }
  flows.sort((a, b) => b.count - a.count);

  const snapshotsByDate = new Map(input.snapshots.filter(inPeriod).map((snapshot) => [snapshot.date, snapshot]));
  const overTime = censusByDate(ruleset, input.tierDays)
    .filter(inPeriod)
    .map((computed) => snapshotsByDate.get(computed.date) ?? computed);
  for (const snapshot of snapshotsByDate.values()) if (!overTime.some((day) => day.date === snapshot.date)) overTime.push(snapshot);
  overTime.sort((a, b) => (a.date < b.date ? -1 : 1));

  const journeys = ruleset.tiers.flatMap((tier): ReportJourney[] => {
    const journey = journeyOf(ruleset, tier.id);
    return journey ? [journeyReport(journey, totals, (input.journeyDays[journey.id] ?? []).filter(inPeriod))] : [];
  });
  return {
    rulesetVersion: ruleset.version,
    tiers: ruleset.tiers.map((tier) => ({ id: tier.id, name: tier.name })),
    firstDate,
    lastDate,
    census: censusFromDays(ruleset, input.tierDays),
    overTime,
    flows,
    journeys,
  };
}

function journeyReport(journey: JourneyDefinition, tierTotals: Record<string, number>, days: readonly CounterDay[]): ReportJourney {
  const totals: Record<string, number> = {};
  for (const day of days) for (const [name, value] of Object.entries(day.counts)) add(totals, name, value);
  const exits: Record<string, number> = {};
  // Every step's exits count, but the funnel lists the send steps: branch checks are not counted (they are no sends).
  const steps = journey.steps.flatMap((step): ReportStep[] => {
    if (step.type === 'wait' || step.type === 'exit') return [];
    const stepExits: Record<string, number> = {};
    for (const [name, value] of Object.entries(totals)) {
      const parsed = parseCounterName(name);
      if (parsed?.kind === 'x' && parsed.parts[0] === step.id) {
        const reason = parsed.parts[1] ?? 'unknown';
        stepExits[reason] = (stepExits[reason] ?? 0) + value;
        exits[reason] = (exits[reason] ?? 0) + value;
      }
    }
    if (step.type === 'branch') return [];
    return [
      {
        stepId: step.id,
        kind: step.type,
        sent: totals[COUNTER_NAMES.sent(step.id)] ?? 0,
        deferred: totals[COUNTER_NAMES.deferred(step.id)] ?? 0,
        exited: Object.values(stepExits).reduce((sum, value) => sum + value, 0),
        exits: stepExits,
      },
    ];
  });
  const treatedUsers = tierTotals[COUNTER_NAMES.enteredTreated(journey.id)] ?? 0;
  const heldOutUsers = tierTotals[COUNTER_NAMES.enteredHeldOut(journey.id)] ?? 0;
  const treated = group(treatedUsers, tierTotals[COUNTER_NAMES.convertedTreated(journey.id)] ?? 0);
  const heldOut = group(heldOutUsers, tierTotals[COUNTER_NAMES.convertedHeldOut(journey.id)] ?? 0);
  const difference = conversionDifference(
    { successes: treated.converted, trials: treated.users },
    { successes: heldOut.converted, trials: heldOut.users },
  );
  const horizonMs = plannedLengthMs(journey);
  return {
    journeyId: journey.id,
    tier: journey.tier,
    entered: treatedUsers + heldOutUsers,
    treated: treatedUsers,
    heldOut: heldOutUsers,
    steps,
    exits,
    observed: {
      horizonDays: Number.isFinite(horizonMs) ? horizonMs / 86_400_000 : null,
      treated,
      heldOut,
      difference: difference ? { points: difference.difference * 100, low: difference.low * 100, high: difference.high * 100 } : null,
    },
  };
}

function group(users: number, converted: number): ReportGroup {
  return { users, converted, rate: users > 0 ? converted / users : null };
}

/** The nightly snapshot: users per tier from every census change, stored under the review's date. */
export async function snapshotCensus(ruleset: Ruleset, reader: AnalyticsReader, date: string): Promise<CensusSnapshot> {
  const snapshot: CensusSnapshot = { date, tiers: censusFromDays(ruleset, await reader.readTierDays()) };
  await reader.writeCensusSnapshot(snapshot);
  return snapshot;
}
