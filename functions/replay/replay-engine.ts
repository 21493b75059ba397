/**
 * The in-memory replay engine behind `strata simulate`: the same core services as production (ingestEvent, the
 * nightly review's reviewUser, runJourneyStep and so decideJourneyStep) on in-memory ports, with the compiled
 * journey ASL interpreted state by state, driven by a discrete-event scheduler instead of a stack and a clock.
 *
 * It reproduces the full-stack replay (functions/local/simulation.ts, the fidelity reference) instant for instant:
 * - the same timeline: the history is cut into one-hour slices of the ruleset's local days, each slice's events are
 *   delivered at the slice's end, and the nightly review runs at 02:00 local, reviewing the dates since its
 *   checkpoint;
 * - at any instant, journey wake-ups (waits, deferrals, branch timeouts) that are due come first, then the
 *   deliveries and the review in timeline order; a user's events of one slice are applied one by one, each followed
 *   by whatever journey steps it causes, as the full stack settles between waves.
 * Users never share state (a review only reads the users due), so the engine replays one user at a time, start to
 * end, and keeps only that user's state in memory.
 */
import { addDays, instantMs, localDate } from '../core/dates.js';
import type { UserEvent } from '../core/event.js';
import { type TierServices, eventKey, ingestEvent, windowStart } from '../core/ingest.js';
import { applyConsentEvent } from '../core/consent.js';
import { type DayIncrement, applyEventToAttributes, dayIncrements } from '../core/metrics.js';
import type { UserProfile } from '../core/state.js';
import { compileJourney } from '../core/journey/compile-journey.js';
import type { JourneyStepResult, JourneyTaskInput } from '../core/journey/journey-task.js';
import { runJourneyStep } from '../core/journey/run-journey-step.js';
import { instantAtLocalTime } from '../core/local-time.js';
import type { JourneyStarter, NoticePublisher } from '../core/ports.js';
import { datesToReview, reviewUser } from '../core/review.js';
import type { Ruleset } from '../core/ruleset.js';
import { type CompiledJourneyMachine, type MachineExecution, JourneyMachineError, journeyMachine } from './journey-machine.js';
import { MemoryReplayStore } from './memory-store.js';
import { leavesFactsAsTheyWere, presenceOnlyCounters } from './quiet-events.js';
import { type RejectedEvent, screenEvents } from './rejections.js';
import { ActivityTally, buildSummary, compareEventOrder } from './replay-summary.js';
import { MinHeap } from './scheduler.js';
import { type ShipDayChange, judgeAtDeploy, sortShipDay } from './ship-day.js';
import type { DaySnapshot, SimulationSummary } from './simulation-summary.js';

const HOUR_MS = 3_600_000;
const REVIEW_MINUTE_OF_DAY = 2 * 60;
/** As many shards as the embedded stack's review index; the shard only orders users within a night. */
const REVIEW_SHARDS = 4;

export interface ReplayOptions {
  ruleset: Ruleset;
  events: UserEvent[];
  skippedLines?: number;
  /** Each event's line in the history file, for reporting the ones ingest refuses. */
  lines?: number[];
  /** Keep running nightly reviews this many days past the last event, so that grace periods play out. */
  extraDays?: number;
  onProgress?: (done: number, total: number) => void;
  /** A candidate ruleset to judge every user by once, as the baseline leaves them at the end (the ship-day effect). */
  shipDayRuleset?: Ruleset;
  /** False: no journey runs (a decision's start and stop are dropped), as `strata import` judges a history. Default true. */
  journeys?: boolean;
  /** Called with each user's stored state once their replay is over, before it is dropped (`strata import` writes it). */
  onUserDone?: (userId: string, store: MemoryReplayStore) => Promise<void>;
  /**
   * Decide the tier after every event, even where functions/replay/quiet-events.ts proves the decision changes
   * nothing. Slower; for the tests that show skipping gives the same result.
   */
  decideEveryEvent?: boolean;
}

export interface SimulationResult {
  summary: SimulationSummary;
  /** Each user's tier at the end, for comparing rulesets. */
  finalTierByUser: Map<string, string>;
  /** Events ingest refuses under this ruleset (a summed property that is not a number, say), in file order. */
  rejected: RejectedEvent[];
  /** With shipDayRuleset: what judging each user by it at the end would do, by user id. */
  shipDay?: ShipDayChange[];
}

/** One point of the shared timeline: a slice's delivery or a night's review, at its instant on the replay clock. */
interface TimelineTick {
  at: number;
  /** Index of the local day whose loop it belongs to, for the end-of-day tier counts. */
  day: number;
  /** Set on review ticks: the dates the review covers. */
  reviewDates?: string[];
}

interface Timeline {
  dates: string[];
  ticks: TimelineTick[];
  /** The delivery ticks, in order, and the end of the slice each delivers: an event goes to the first slice ending after it. */
  deliveryTicks: number[];
  deliverySliceEnds: Float64Array;
  endAt: number;
}

/**
 * The full stack's clock walk, done once for everyone: when slices are delivered and reviews run. It is built from
 * every accepted event of the history (`historyTimes`, sorted), so that a partition of the users replays on the same
 * clock as the whole history.
 */
function buildTimeline(ruleset: Ruleset, historyTimes: Float64Array, extraDays: number): Timeline {
  const zone = ruleset.timezone;
  const firstDate = localDate(new Date(historyTimes[0]!), zone);
  const lastDate = addDays(localDate(new Date(historyTimes[historyTimes.length - 1]!), zone), extraDays);
  const dates: string[] = [];
  const ticks: TimelineTick[] = [];
  const deliveryTicks: number[] = [];
  const sliceEnds: number[] = [];
  let now = instantAtLocalTime(firstDate, 0, zone).getTime();
  let checkpoint = addDays(firstDate, -1);
  let next = 0;
  for (let date = firstDate; date <= lastDate; date = addDays(date, 1)) {
    const day = dates.length;
    dates.push(date);
    const dayStart = instantAtLocalTime(date, 0, zone).getTime();
    for (let hour = 0; hour < 24; hour++) {
      const sliceEnd = dayStart + (hour + 1) * HOUR_MS;
      if (hour === REVIEW_MINUTE_OF_DAY / 60) {
        now = Math.max(now, instantAtLocalTime(date, REVIEW_MINUTE_OF_DAY, zone).getTime());
        const reviewDates = datesToReview(checkpoint, localDate(new Date(now), zone));
        if (reviewDates.length > 0) checkpoint = reviewDates[reviewDates.length - 1]!;
        ticks.push({ at: now, day, reviewDates });
      }
      if (next >= historyTimes.length || historyTimes[next]! >= sliceEnd) continue;
      now = Math.max(now, sliceEnd);
      deliveryTicks.push(ticks.length);
      sliceEnds.push(sliceEnd);
      ticks.push({ at: now, day });
      while (next < historyTimes.length && historyTimes[next]! < sliceEnd) next++;
    }
  }
  const endAt = Math.max(now, instantAtLocalTime(addDays(lastDate, 1), 0, zone).getTime());
  return { dates, ticks, deliveryTicks, deliverySliceEnds: Float64Array.from(sliceEnds), endAt };
}

/** The tick that delivers an event at `at`: the first delivery slice that ends after it. */
function deliveryTickOf(timeline: Timeline, at: number): number {
  const ends = timeline.deliverySliceEnds;
  let low = 0;
  let high = ends.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (ends[middle]! > at) high = middle;
    else low = middle + 1;
  }
  return timeline.deliveryTicks[low]!;
}

/** A history screened and put in replay order, ready for runReplay. */
export interface PreparedHistory {
  /** Accepted events in replay order, with their instants. */
  events: UserEvent[];
  times: Float64Array;
  rejected: RejectedEvent[];
}

/** Screens a history under a ruleset (what ingest refuses is set aside) and sorts the rest into replay order. */
export function prepareHistory(ruleset: Ruleset, events: readonly UserEvent[], lines?: readonly number[]): PreparedHistory {
  const { accepted, rejected } = screenEvents(ruleset, events, lines);
  const order = accepted.map((event, line) => ({ event, at: instantMs(event.occurredAt), eventId: event.eventId, line }));
  order.sort(compareEventOrder);
  // A plain loop: Float64Array.from with a mapping function walks the list through the iterator protocol.
  const times = new Float64Array(order.length);
  for (let i = 0; i < order.length; i++) times[i] = order[i]!.at;
  return { events: order.map((o) => o.event), times, rejected };
}

interface WakeUp {
  at: number;
  order: number;
  execution: MachineExecution;
}

export async function runReplay(options: ReplayOptions): Promise<SimulationResult> {
  const prepared = prepareHistory(options.ruleset, options.events, options.lines);
  if (prepared.events.length === 0) throw new Error('Replay: no events to replay');
  return replayPrepared(options, prepared, prepared.times);
}

/**
 * Replays a prepared history. `historyTimes` are the instants of every accepted event of the whole history, sorted;
 * they are the prepared history's own unless it holds one partition of the users (functions/replay/partitions.ts),
 * whose summary then counts its own users on the whole history's clock.
 */
export async function replayPrepared(
  options: Omit<ReplayOptions, 'events' | 'lines'>,
  prepared: PreparedHistory,
  historyTimes: Float64Array,
): Promise<SimulationResult> {
  const { ruleset } = options;
  const { rejected } = prepared;
  const timeline = buildTimeline(ruleset, historyTimes, options.extraDays ?? 0);
  const reviewTicks = timeline.ticks.flatMap((tick, index) => (tick.reviewDates ? [index] : []));
  const total = prepared.events.length;

  // Each user's deliveries, in replay order, with the tick that delivers them.
  const eventsByUser = new Map<string, UserEvent[]>();
  const ticksByUser = new Map<string, number[]>();
  prepared.events.forEach((event, i) => {
    let events = eventsByUser.get(event.userId);
    if (!events) {
      events = [];
      eventsByUser.set(event.userId, events);
      ticksByUser.set(event.userId, []);
    }
    events.push(event);
    ticksByUser.get(event.userId)!.push(deliveryTickOf(timeline, prepared.times[i]!));
  });

  const tally = new ActivityTally(ruleset.journeys);
  // Tier history is read only by whoever reads a user's store when their replay is over (`strata import`).
  const store = new MemoryReplayStore(REVIEW_SHARDS, { keepHistory: options.onUserDone !== undefined });
  const counters = { eventsRecorded: 0, duplicates: 0 };
  const tierDays = timeline.dates.map(() => new Map<string, number>());
  let now = timeline.ticks[0]?.at ?? timeline.endAt;
  const clock = { now: () => new Date(now) };

  // Journey executions of the user being replayed, run by the interpreted ASL.
  const executionNames = new Set<string>();
  const runnable: MachineExecution[] = [];
  const wakeUps = new MinHeap<WakeUp>((a, b) => a.at - b.at || a.order - b.order);
  let wakeOrder = 0;
  const journeyPorts = {
    store,
    clock,
    publisher: { publishJourneyAction: async () => undefined },
  };
  const runTask = async (parameters: unknown): Promise<JourneyStepResult> => {
    const task = journeyTaskInput(parameters);
    const result = await runJourneyStep(journeyPorts, { task, rulesetTimeZone: ruleset.timezone });
    tally.record({ kind: 'journey-step', task, result, at: new Date(now).toISOString() });
    return result;
  };
  const machines = new Map<string, CompiledJourneyMachine>(
    Object.entries(ruleset.journeys).map(([tier, journey]) => [
      tier,
      journeyMachine(compileJourney(journey), { runTask: (_execution, call) => runTask(call.parameters) }),
    ]),
  );
  const running = new Map<string, MachineExecution>();
  const journeys: JourneyStarter = {
    async start(ref, userId) {
      if (executionNames.has(ref.executionName)) return 'already-exists';
      const machine = machines.get(ref.tier);
      if (!machine) throw new Error(`Replay: no journey state machine for tier "${ref.tier}" (have: ${[...machines.keys()].join(', ')})`);
      executionNames.add(ref.executionName);
      runnable.push(machine.start(ref.executionName, ref.tier, { userId }, now));
      tally.record({ kind: 'journey-started', executionName: ref.executionName, tier: ref.tier, userId, at: new Date(now).toISOString() });
      return 'started';
    },
    async stop(executionName) {
      const execution = running.get(executionName);
      if (execution && execution.status === 'RUNNING') execution.status = 'ABORTED';
      tally.record({ kind: 'journey-stopped', executionName, at: new Date(now).toISOString() });
    },
  };
  const publisher: NoticePublisher = {
    async publishNotices(notices) {
      for (const notice of notices) tally.record({ kind: 'notice', notice });
    },
  };
  const noJourneys: JourneyStarter = { start: async () => 'started', stop: async () => undefined };
  const services: TierServices = { ruleset, store, journeys: options.journeys === false ? noJourneys : journeys, publisher, clock };

  /** Runs the executions just started, and one just woken, until each ends or waits for the clock. */
  const settle = async (): Promise<void> => {
    while (runnable.length > 0) {
      const execution = runnable.shift()!;
      running.set(execution.name, execution);
      await advance(execution);
    }
  };
  const advance = async (execution: MachineExecution): Promise<void> => {
    const wakeAt = await machines.get(execution.tier)!.advance(execution, now);
    if (wakeAt !== undefined) wakeUps.push({ at: wakeAt, order: wakeOrder++, execution });
  };

  const presenceOnly = presenceOnlyCounters(ruleset);
  /** The user's last event decision, while it is one that a quiet event would only repeat. */
  let quietDecision: { profile: UserProfile; today: string } | undefined;
  /** The event's increment if the event is quiet for this profile, so that recording it is all ingest would do. */
  const quietIncrement = (profile: UserProfile, event: UserEvent): DayIncrement | undefined => {
    if (applyEventToAttributes(ruleset, profile, event) !== undefined || applyConsentEvent(profile, event) !== undefined) return undefined;
    if (store.knowsEventKey(event.userId, eventKey(event.eventId))) return undefined;
    const increment = dayIncrements(ruleset, event);
    return leavesFactsAsTheyWere(increment, presenceOnly, (date, counter) => store.counterOn(event.userId, date, counter)) ? increment : undefined;
  };

  const shipDay: ShipDayChange[] = [];
  let done = 0;
  for (const [userId, events] of eventsByUser) {
    const ticks = ticksByUser.get(userId)!;
    let nextEvent = 0;
    let nextReview = 0;
    let countedThroughDay = -1;
    const countDaysBefore = (day: number): void => {
      const tier = tally.tierByUser.get(userId);
      for (; countedThroughDay < day - 1; countedThroughDay++) {
        if (tier !== undefined) tierDays[countedThroughDay + 1]!.set(tier, (tierDays[countedThroughDay + 1]!.get(tier) ?? 0) + 1);
      }
    };
    // Reviews before the user's first event find no profile.
    while (nextReview < reviewTicks.length && reviewTicks[nextReview]! < ticks[0]!) nextReview++;
    for (;;) {
      const deliveryTick = nextEvent < events.length ? ticks[nextEvent]! : Infinity;
      const reviewTick = nextReview < reviewTicks.length ? reviewTicks[nextReview]! : Infinity;
      const tickIndex = Math.min(deliveryTick, reviewTick);
      const tick = timeline.ticks[tickIndex];
      const wake = wakeUps.peek();
      if (wake && wake.at <= (tick?.at ?? timeline.endAt)) {
        wakeUps.pop();
        if (wake.execution.status !== 'RUNNING') continue;
        now = wake.at;
        await advance(wake.execution);
        continue;
      }
      if (!tick) break;
      now = tick.at;
      countDaysBefore(tick.day);
      if (tickIndex === deliveryTick) {
        const today = localDate(new Date(now), ruleset.timezone);
        for (; nextEvent < events.length && ticks[nextEvent] === tickIndex; nextEvent++) {
          const event = events[nextEvent]!;
          const stored = store.profileOf(userId);
          if (quietDecision !== undefined && quietDecision.profile === stored && quietDecision.today === today) {
            const increment = quietIncrement(stored, event);
            if (increment) {
              // Only the record; the decision would repeat the previous one (functions/replay/quiet-events.ts).
              const { duplicate } = await store.recordEvent(userId, eventKey(event.eventId), increment);
              if (duplicate) counters.duplicates += 1;
              else counters.eventsRecorded += 1;
              continue;
            }
          }
          const { duplicate, decision, profile } = await ingestEvent(services, event);
          if (duplicate) counters.duplicates += 1;
          else counters.eventsRecorded += 1;
          quietDecision =
            !options.decideEveryEvent &&
            decision?.changed === false &&
            profile !== undefined &&
            profile === store.profileOf(userId) &&
            profile.outboxVersion === undefined
              ? { profile, today }
              : undefined;
          if (runnable.length > 0) await settle();
        }
      } else {
        nextReview++;
        for (const date of tick.reviewDates!) {
          if (store.isDueForReview(userId, date)) {
            await reviewUser(services, userId);
            if (runnable.length > 0) await settle();
          }
        }
      }
    }
    countDaysBefore(timeline.dates.length);
    const profile = store.profileOf(userId);
    if (options.shipDayRuleset && profile) {
      now = timeline.endAt;
      const { buckets } = await store.loadUser(userId, windowStart(options.shipDayRuleset, clock.now()));
      const change = await judgeAtDeploy(options.shipDayRuleset, profile, buckets, clock.now());
      if (change) shipDay.push(change);
    }
    await options.onUserDone?.(userId, store);
    store.forget(userId);
    quietDecision = undefined;
    executionNames.clear();
    running.clear();
    wakeUps.clear();
    done += events.length;
    options.onProgress?.(done, total);
  }

  const days: DaySnapshot[] = timeline.dates.map((date, i) => {
    const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((t) => [t.id, 0]));
    for (const [tier, count] of tierDays[i]!) tiers[tier] = (tiers[tier] ?? 0) + count;
    return { date, tiers };
  });
  const summary = buildSummary({
    ruleset,
    tally,
    eventsByUser,
    firstDate: timeline.dates[0]!,
    lastDate: timeline.dates[timeline.dates.length - 1]!,
    days,
    counters,
    skippedLines: options.skippedLines ?? 0,
    rejected,
    endAt: new Date(timeline.endAt).toISOString(),
  });
  return { summary, finalTierByUser: tally.tierByUser, rejected, ...(options.shipDayRuleset ? { shipDay: sortShipDay(shipDay) } : {}) };
}

const TASK_FIELDS = ['journeyId', 'journeyVersion', 'tier', 'stepId', 'userId', 'executionName', 'startedAt'] as const;

/**
 * The Task's Parameters as the journey-step function reads them. The compiled definition always passes a complete
 * step (the handler validates it with the full schema; here the hot path checks what a hand-edited definition
 * would most likely get wrong), and anything else fails the Task as the handler's validation would.
 */
function journeyTaskInput(parameters: unknown): JourneyTaskInput {
  const fields = (parameters ?? {}) as Record<string, unknown>;
  const missing = TASK_FIELDS.filter((field) => typeof fields[field] !== 'string' || fields[field] === '');
  if (typeof fields['step'] !== 'object' || fields['step'] === null) missing.push('step' as never);
  if (typeof fields['settings'] !== 'object' || fields['settings'] === null) missing.push('settings' as never);
  if (missing.length > 0) throw new JourneyMachineError(`a journey Task passed no ${missing.join(', ')}; compile the journey again`);
  return fields as unknown as JourneyTaskInput;
}
