/**
 * `strata simulate`: a deterministic backtest of a ruleset over an event history, on a virtual clock, through the
 * same ingest and review services and the same DynamoDB store (on an in-memory dynalite) as production.
 *
 * Days are replayed in order: at 02:00 local time the nightly review runs, then that day's events are ingested at
 * their own times. Users are independent, so a day's events are ingested per user in order, users in parallel.
 */
import { addDays, localDate } from '../core/dates.js';
import type { UserEvent } from '../core/event.js';
import { type TierServices, ingestEvent } from '../core/ingest.js';
import type { JourneyStarter, NoticePublisher } from '../core/ports.js';
import { runReview } from '../core/review.js';
import type { Ruleset } from '../core/ruleset.js';
import type { JourneyRef, TierNotice } from '../core/state.js';
import { createDynamoTierStore } from '../aws/dynamo-store.js';
import { startDynalite } from './dynalite.js';
import { instantAtLocalTime } from '../core/journey/local-time.js';

export const SIMULATION_SHARDS = 4;
const USER_CONCURRENCY = 8;
const REVIEW_MINUTE_OF_DAY = 2 * 60;

export interface DaySnapshot {
  date: string;
  tiers: Record<string, number>;
}

export interface SimulationSummary {
  rulesetVersion: string;
  firstDate: string;
  lastDate: string;
  users: number;
  eventsApplied: number;
  duplicateEvents: number;
  skippedLines: number;
  promotions: number;
  demotions: number;
  graceStarted: number;
  graceCleared: number;
  journeysStarted: Record<string, number>;
  finalTiers: Record<string, number>;
  /** Each user's tier at the end, for comparing two rulesets. */
  finalTierByUser: Record<string, string>;
  days: DaySnapshot[];
}

export interface SimulationOptions {
  ruleset: Ruleset;
  events: UserEvent[];
  skippedLines?: number;
  /** Keep running nightly reviews this many days past the last event (grace periods play out). */
  extraDays?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Records what the ladder did, from the same notices the bus would carry. */
class NoticeTally implements NoticePublisher {
  readonly tierByUser = new Map<string, string>();
  readonly counts = { promotions: 0, demotions: 0, graceStarted: 0, graceCleared: 0 };
  private readonly seen = new Set<string>();

  async publishNotices(notices: TierNotice[]): Promise<void> {
    for (const notice of notices) {
      if (this.seen.has(notice.noticeId)) continue;
      this.seen.add(notice.noticeId);
      if (notice.detailType === 'TierChanged') this.tierByUser.set(notice.userId, notice.toTier);
      if (notice.kind === 'promoted') this.counts.promotions += 1;
      else if (notice.kind === 'demoted') this.counts.demotions += 1;
      else if (notice.kind === 'grace-started') this.counts.graceStarted += 1;
      else if (notice.kind === 'grace-cleared') this.counts.graceCleared += 1;
    }
  }
}

/** Counts journey starts per tier; the journeys themselves are exercised by `strata dev` and the journey tests. */
class JourneyTally implements JourneyStarter {
  readonly started = new Map<string, JourneyRef>();
  async start(journey: JourneyRef): Promise<'started' | 'already-exists'> {
    if (this.started.has(journey.executionName)) return 'already-exists';
    this.started.set(journey.executionName, journey);
    return 'started';
  }
  async stop(): Promise<void> {}
}

async function inParallel<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationSummary> {
  const { ruleset } = options;
  const events = [...options.events].sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt) || (a.eventId < b.eventId ? -1 : 1));
  if (events.length === 0) throw new Error('Simulate: no events to replay');
  const zone = ruleset.timezone;
  const firstDate = localDate(events[0]!.occurredAt, zone);
  const lastDate = addDays(localDate(events[events.length - 1]!.occurredAt, zone), options.extraDays ?? 0);

  const dynalite = await startDynalite();
  try {
    let now = new Date(events[0]!.occurredAt);
    const notices = new NoticeTally();
    const journeys = new JourneyTally();
    const store = createDynamoTierStore({ client: dynalite.client, tableName: dynalite.tableName, shardCount: SIMULATION_SHARDS, timeZone: zone });
    const services: TierServices = { ruleset, store, journeys, publisher: notices, clock: { now: () => now } };
    // Each user's events see their own time; the services read the clock, so give each user a view of it.
    const servicesAt = (instant: Date): TierServices => ({ ...services, clock: { now: () => instant } });

    const byDate = new Map<string, UserEvent[]>();
    for (const event of events) {
      const date = localDate(event.occurredAt, zone);
      byDate.set(date, [...(byDate.get(date) ?? []), event]);
    }
    const users = new Set(events.map((e) => e.userId));
    const days: DaySnapshot[] = [];
    let applied = 0;
    let duplicates = 0;
    await store.setReviewCheckpoint(addDays(firstDate, -1));

    for (let date = firstDate; date <= lastDate; date = addDays(date, 1)) {
      now = instantAtLocalTime(date, REVIEW_MINUTE_OF_DAY, zone);
      await runReview(services, SIMULATION_SHARDS);
      const todays = byDate.get(date) ?? [];
      const perUser = new Map<string, UserEvent[]>();
      for (const event of todays) perUser.set(event.userId, [...(perUser.get(event.userId) ?? []), event]);
      await inParallel([...perUser.values()], USER_CONCURRENCY, async (userEvents) => {
        for (const event of userEvents) {
          const result = await ingestEvent(servicesAt(new Date(event.occurredAt)), event);
          applied += 1;
          if (result.duplicate) duplicates += 1;
        }
      });
      options.onProgress?.(applied, events.length);
      const tiers: Record<string, number> = Object.fromEntries(ruleset.tiers.map((t) => [t.id, 0]));
      for (const tier of notices.tierByUser.values()) tiers[tier] = (tiers[tier] ?? 0) + 1;
      days.push({ date, tiers });
    }

    const journeysStarted: Record<string, number> = {};
    for (const journey of journeys.started.values()) journeysStarted[journey.tier] = (journeysStarted[journey.tier] ?? 0) + 1;
    return {
      rulesetVersion: ruleset.version,
      firstDate,
      lastDate,
      users: users.size,
      eventsApplied: applied - duplicates,
      duplicateEvents: duplicates,
      skippedLines: options.skippedLines ?? 0,
      ...notices.counts,
      journeysStarted,
      finalTiers: days[days.length - 1]!.tiers,
      finalTierByUser: Object.fromEntries([...notices.tierByUser.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
      days,
    };
  } finally {
    await dynalite.close();
  }
}
