/**
 * The journey-step core: given one step of a running journey and the user's stored state, decide what happens
 * now. Pure: time, the profile and the day buckets come in as arguments.
 *
 * Every step re-checks the exit guards first (same tier, not converted, not opted out, not held out), because
 * the world may have changed during a wait. A send is never dropped for timing: quiet hours and the frequency
 * cap defer it to the earliest instant at which it may go.
 *
 * The step comes in as its compiled spec (see journey-task.ts), never looked up in a journey definition: what a
 * running execution sends is fixed by the version it started with.
 */
import { addDays, instantMs, isValidTimeZone, localDate } from '../dates.js';
import { assertNever } from '../errors.js';
import { hashPercent, shortHash } from '../hash.js';
import type { DayBucket, JourneyRef, UserProfile } from '../state.js';
import type { SendStep } from './journey-schema.js';
import type { DeferReason, ExitReason, JourneyStepResult, JourneyStepSettings, JourneyStepSpec, TaskStep } from './journey-task.js';
import { inDailyWindow, instantAtLocalTime, localClock, nextLocalTime, parseTimeOfDay } from '../local-time.js';
import { firstSignalSince } from './signals.js';
import { isOptedOut } from '../consent.js';

const DAY_MS = 86_400_000;

export interface JourneyStepInput {
  /** The step as compiled into its Task (journeyStepSpec in compile-journey.ts builds it from a definition). */
  spec: JourneyStepSpec;
  execution: JourneyRef;
  userId: string;
  profile: UserProfile | undefined;
  buckets: readonly DayBucket[];
  now: Date;
  /** The ruleset's zone: day buckets, and so frequency caps, are counted in its local days. */
  rulesetTimeZone: string;
  /** Branch checks only: when the branch's `since` step was sent. */
  sinceSentAt?: string;
}

interface ActionBase {
  /** Stable for one step of one execution, so that delivery channels can drop a redelivered action. */
  actionId: string;
  userId: string;
  journeyId: string;
  tier: string;
  stepId: string;
  executionName: string;
  channel: string;
  at: string;
  /** Set only by `strata send-test`: a trial send to a test user, outside every journey's caps and funnel. */
  test?: true;
}

export type JourneyAction =
  | (ActionBase & { kind: 'content'; templateId: string })
  | (ActionBase & { kind: 'invite'; groupId: string })
  | (ActionBase & { kind: 'offer'; offerId: string; expiresAt: string });

export type JourneyDecision =
  | { outcome: 'exit'; reason: ExitReason }
  | { outcome: 'deferred'; until: string; reason: DeferReason }
  | { outcome: 'sent'; action: JourneyAction }
  | { outcome: 'engaged'; at: string }
  | { outcome: 'not-engaged'; at: string }
  | { outcome: 'wait'; until: string };

/** A step spec that no compiled journey produces: a hand-edited definition or a hand-started Task. */
export class InvalidJourneyStepError extends Error {
  override readonly name = 'InvalidJourneyStepError';
  constructor(spec: Pick<JourneyStepSpec, 'journeyId' | 'stepId'>, problem: string) {
    super(`JourneyStep: ${spec.journeyId}/${spec.stepId}: ${problem}; recompile the journey rather than editing its state machine`);
  }
}

export function journeyActionId(executionName: string, stepId: string): string {
  return 'a' + shortHash(`${executionName}:${stepId}`, 22);
}

/** Each step of a journey asks again for the same user; the hash is a fixed function of the text, so it is kept. */
const holdoutDraws = new Map<string, number>();

export function isHeldOut(userId: string, journey: { id: string; settings: Pick<JourneyStepSettings, 'holdoutPercent'> }): boolean {
  const text = `${userId}:${journey.id}`;
  let draw = holdoutDraws.get(text);
  if (draw === undefined) {
    draw = hashPercent(text);
    if (holdoutDraws.size >= 10_000) holdoutDraws.clear();
    holdoutDraws.set(text, draw);
  }
  return draw < journey.settings.holdoutPercent;
}

export function decideJourneyStep(input: JourneyStepInput): JourneyDecision {
  const { spec, now } = input;
  const exit = exitReason(input);
  if (exit) return { outcome: 'exit', reason: exit };

  const step = spec.step;
  switch (step.type) {
    case 'content':
    case 'invite':
    case 'offer': {
      const earliest = earliestSendTime(input);
      if (earliest) return { outcome: 'deferred', until: earliest.until.toISOString(), reason: earliest.reason };
      return { outcome: 'sent', action: journeyAction(input, step) };
    }
    case 'branch':
      return decideBranch(input, step);
    case 'wait':
      return { outcome: 'wait', until: nextLocalTime(now, parseTimeOfDay(step.untilLocalTime), userTimeZone(input)).toISOString() };
    default:
      return assertNever(step, 'journey step');
  }
}

/** The decision as the state machine stores it: the action itself goes to the bus, not into the execution state. */
export function toStepResult(decision: JourneyDecision): JourneyStepResult {
  switch (decision.outcome) {
    case 'sent':
      return { outcome: 'sent', at: decision.action.at, actionId: decision.action.actionId };
    case 'exit':
    case 'deferred':
    case 'engaged':
    case 'not-engaged':
    case 'wait':
      return decision;
    default:
      return assertNever(decision, 'journey decision');
  }
}

function exitReason(input: JourneyStepInput): ExitReason | undefined {
  const { profile, execution, spec, buckets, userId } = input;
  if (!profile) return 'unknown-user';
  if (profile.tier !== execution.tier) return 'tier-changed';
  const conversion = spec.settings.conversionSignal;
  if (conversion && firstSignalSince(buckets, conversion, epochSecondsOf(execution.startedAt)) !== undefined) return 'converted';
  // A send checks its own channel; a branch or wait only stops once every channel is closed.
  if (isOptedOut(profile, 'channel' in spec.step ? spec.step.channel : undefined)) return 'opted-out';
  if (isHeldOut(userId, { id: spec.journeyId, settings: spec.settings })) return 'held-out';
  return undefined;
}

function epochSecondsOf(instant: string): number {
  return Math.floor(instantMs(instant) / 1000);
}

/** The user's IANA zone from their profile, else the journey's quiet-hours zone, else the ruleset's. */
export function userTimeZone(input: Pick<JourneyStepInput, 'spec' | 'profile' | 'rulesetTimeZone'>): string {
  const quiet = input.spec.settings.quietHours;
  const value = input.profile?.attributes[quiet?.timezoneAttribute ?? 'timezone']?.value;
  if (typeof value === 'string' && isValidTimeZone(value)) return value;
  return quiet?.timezone ?? input.rulesetTimeZone;
}

/**
 * The earliest instant at or after now at which a send may go, or undefined if it may go now. Quiet hours and
 * the cap are applied in turn until neither holds, so the send is deferred once, to a time that is really free
 * (a cap that frees at local midnight would otherwise land in quiet hours and defer a second time).
 */
function earliestSendTime(input: JourneyStepInput): { until: Date; reason: DeferReason } | undefined {
  let at = input.now;
  let reason: DeferReason | undefined;
  for (let round = 0; round < 4; round++) {
    const quietEnd = quietHoursEnd(input, at);
    if (quietEnd) {
      reason ??= 'quiet-hours';
      at = quietEnd;
      continue;
    }
    const capFree = frequencyCapFrees(input, at);
    if (capFree) {
      reason ??= 'frequency-cap';
      at = capFree;
      continue;
    }
    break;
  }
  return reason ? { until: at, reason } : undefined;
}

function quietHoursEnd(input: JourneyStepInput, at: Date): Date | undefined {
  const quiet = input.spec.settings.quietHours;
  if (!quiet) return undefined;
  const zone = userTimeZone(input);
  const start = parseTimeOfDay(quiet.start);
  const end = parseTimeOfDay(quiet.end);
  if (!inDailyWindow(localClock(at, zone).minutes, start, end)) return undefined;
  return nextLocalTime(at, end, zone);
}

/** When `at` is over the cap: the start of the first local day whose window holds fewer sends than the cap. */
function frequencyCapFrees(input: JourneyStepInput, at: Date): Date | undefined {
  const cap = input.spec.settings.frequencyCap;
  if (!cap) return undefined;
  const zone = input.rulesetTimeZone;
  const today = localDate(at, zone);
  if (sendsInWindowEnding(input.buckets, cap.days, today, today) < cap.maxSends) return undefined;
  for (let ahead = 1; ahead <= cap.days; ahead++) {
    const day = addDays(today, ahead);
    if (sendsInWindowEnding(input.buckets, cap.days, day, today) < cap.maxSends) return instantAtLocalTime(day, 0, zone);
  }
  return instantAtLocalTime(addDays(today, cap.days), 0, zone);
}

/** Sends in the cap's window of `days` days ending on `day`; days after `today` hold no sends yet as far as a decision knows. */
function sendsInWindowEnding(buckets: readonly DayBucket[], days: number, day: string, today: string): number {
  const first = addDays(day, -(days - 1));
  let sum = 0;
  for (const bucket of buckets) if (bucket.date >= first && bucket.date <= day && bucket.date <= today) sum += bucket.sends ?? 0;
  return sum;
}

function decideBranch(input: JourneyStepInput, step: Extract<TaskStep, { type: 'branch' }>): JourneyDecision {
  const now = input.now;
  // The compiled branch always passes the send time of its `since` step, which the validator makes sure was sent.
  if (input.sinceSentAt === undefined) throw new InvalidJourneyStepError(input.spec, 'a branch step needs sinceSentAt');
  const sentAt = instantMs(input.sinceSentAt);
  if (firstSignalSince(input.buckets, step.engagementSignal, Math.floor(sentAt / 1000)) !== undefined) {
    return { outcome: 'engaged', at: now.toISOString() };
  }
  const deadline = sentAt + step.timeoutDays * DAY_MS;
  if (now.getTime() < deadline) {
    return { outcome: 'deferred', until: new Date(deadline).toISOString(), reason: 'awaiting-engagement' };
  }
  return { outcome: 'not-engaged', at: now.toISOString() };
}

/** The action a send step publishes; also what `strata send-test` sends, marked as a test. */
export function journeyAction(
  input: Pick<JourneyStepInput, 'spec' | 'execution' | 'userId' | 'now'>,
  step: Extract<TaskStep, { type: SendStep['type'] }>,
): JourneyAction {
  const { spec, execution, userId, now } = input;
  const base: ActionBase = {
    actionId: journeyActionId(execution.executionName, spec.stepId),
    userId,
    journeyId: spec.journeyId,
    tier: spec.tier,
    stepId: spec.stepId,
    executionName: execution.executionName,
    channel: step.channel,
    at: now.toISOString(),
  };
  switch (step.type) {
    case 'content':
      return { ...base, kind: 'content', templateId: step.templateId };
    case 'invite':
      return { ...base, kind: 'invite', groupId: step.groupId };
    case 'offer':
      return { ...base, kind: 'offer', offerId: step.offerId, expiresAt: new Date(now.getTime() + step.expiryDays * DAY_MS).toISOString() };
    default:
      return assertNever(step, 'send step');
  }
}

/** The first local date whose bucket the decision for this step can read. */
export function journeyLookbackDate(input: Pick<JourneyStepInput, 'spec' | 'execution' | 'now' | 'rulesetTimeZone' | 'sinceSentAt'>): string {
  const zone = input.rulesetTimeZone;
  const candidates = [localDate(input.execution.startedAt, zone)];
  const cap = input.spec.settings.frequencyCap;
  if (cap) candidates.push(addDays(localDate(input.now, zone), -(cap.days - 1)));
  if (input.sinceSentAt) candidates.push(localDate(input.sinceSentAt, zone));
  return candidates.reduce((a, b) => (a < b ? a : b));
}
