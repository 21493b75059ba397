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
import { createVirtualClock } from './clock.js';
import { instantAtLocalTime } from '../core/local-time.js';
import { startLocalStack } from './local-stack.js';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';
import { localEnvelope } from './local-bus.js';
import type { ReplayOptions, SimulationResult } from '../replay/replay-engine.js';
import { windowStart } from '../core/ingest.js';
import { screenEvents } from '../replay/rejections.js';
import { type ShipDayChange, judgeAtDeploy, sortShipDay } from '../replay/ship-day.js';
import { ActivityTally, buildSummary, compareEventOrder } from '../replay/replay-summary.js';
import type { DaySnapshot } from '../replay/simulation-summary.js';

const HOUR_MS = 3_600_000;
const REVIEW_MINUTE_OF_DAY = 2 * 60;

export type { SimulationResult };

/** The same options as the in-memory engine: the two engines answer the same question. */
export type SimulationOptions = ReplayOptions;

function toEnvelope(event: UserEvent): EventBridgeEnvelope {
  return localEnvelope({ source: 'simulate.history', detailType: event.type, detail: { ...event }, time: new Date(event.occurredAt) });
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const { ruleset } = options;
  const { accepted, rejected } = screenEvents(ruleset, options.events, options.lines);
  const events = accepted
    .map((event, line) => ({ event, at: Date.parse(event.occurredAt), eventId: event.eventId, line }))
    .sort(compareEventOrder)
    .map(({ event }) => event);
  if (events.length === 0) throw new Error('Simulate: no events to replay');
  const zone = ruleset.timezone;
  const firstDate = localDate(events[0]!.occurredAt, zone);
  const lastDate = addDays(localDate(events[events.length - 1]!.occurredAt, zone), options.extraDays ?? 0);
  const clock = createVirtualClock(instantAtLocalTime(firstDate, 0, zone));
  const tally = new ActivityTally(ruleset.journeys);
  const stack = await startLocalStack({
    ruleset,
    clock,
    onActivity: (activity) => {
      if (activity.kind !== 'dead-letter' && activity.kind !== 'action' && activity.kind !== 'forgotten' && activity.kind !== 'roll-up-stopped')
        tally.record(activity);
    },
    ingestConcurrency: 4,
    batchWindowMs: 0,
  });
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
      const tiers = tally.tierCounts(ruleset);
      days.push({ date, tiers });
    }
    await clock.advanceTo(instantAtLocalTime(addDays(lastDate, 1), 0, zone));
    const endAt = clock.now().toISOString();
    const eventsByUser = new Map<string, UserEvent[]>();
    for (const event of events) eventsByUser.set(event.userId, [...(eventsByUser.get(event.userId) ?? []), event]);
    const summary = buildSummary({
      ruleset,
      tally,
      eventsByUser,
      firstDate,
      lastDate,
      days,
      counters: stack.counters,
      skippedLines: options.skippedLines ?? 0,
      rejected,
      endAt,
    });
    const shipDay: ShipDayChange[] = [];
    if (options.shipDayRuleset) {
      for (const userId of eventsByUser.keys()) {
        const { profile, buckets } = await stack.store.loadUser(userId, windowStart(options.shipDayRuleset, clock.now()));
        const change = profile ? await judgeAtDeploy(options.shipDayRuleset, profile, buckets, clock.now()) : undefined;
        if (change) shipDay.push(change);
      }
    }
    return { summary, finalTierByUser: tally.tierByUser, rejected, ...(options.shipDayRuleset ? { shipDay: sortShipDay(shipDay) } : {}) };
  } finally {
    await stack.close();
  }
}
