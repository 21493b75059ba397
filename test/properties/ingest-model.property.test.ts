/**
 * A model-based property over the whole ingest path on dynalite: the real ingest handler (SQS batches of
 * EventBridge envelopes), the real DynamoDB store, and recording Step Functions and bus stand-ins, under random
 * duplication, reordering, concurrency (batches at once, records of a batch in parallel) and crashes at each write
 * point (recordEvent, saveProfile, appendHistory, journey start, publish, clearOutbox), before or after the write,
 * followed by redelivery of the crashed batch. It must end where a small independent reference model ends when fed
 * the clean, ordered, once-only stream.
 *
 * Heavy days: each case picks how many event keys a day item holds (lightDayEvents 16, 1 or 0), so that days turn
 * heavy after one event or are heavy from the start, and the crash points include the store's own writes inside
 * recordEvent (the light write, W1, W2, the undo, the turn to heavy and the closing of an earlier day; see
 * dynamo-store.ts). With lightDayEvents 0
 * producers also resend events later with the same id and another date (within the window), which must count once:
 * the resends come after the originals, as a producer's do, so the original's date is the one that counts.
 *
 * What is compared, and why:
 * - Final tiers and final facts: always equal to the reference on the clean ordered stream. Promotion happens on
 *   arrival, so this holds only because every fact used here grows with more events: questionnaire answers are
 *   always "pro" (a later "free" answer arriving first would legitimately keep a user lower; event-order.property
 *   covers the facts of such streams).
 * - History: promotion on arrival makes the chain depend on arrival order (A then B may promote twice where B then
 *   A promotes once). With one record at a time and no crash, the history must equal the reference fed the same
 *   delivered order with duplicates removed. Under concurrency or crashes the order in which events became visible
 *   is not observable, so the history must be a valid chain: from the base tier, each entry starting where the
 *   previous ended, only upwards (no review runs here), ending at the final tier.
 * - Notices and executions: one TierChanged notice per tier change in the history, never two. Every journey
 *   execution started belongs to a tier the history entered, none is started twice, and the final tier's journey is
 *   running. Without crashes every tier entered with a journey started one; after a crash a tier change that was
 *   superseded before its outbox was flushed may legitimately never start its (already obsolete) journey.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DynamoTierStore, createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { addDays, localDate } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { OUTBOX_LEASE_MS, windowStart } from '../../functions/core/ingest.js';
import { factsAt } from '../../functions/core/metrics.js';
import { createIngestHandler } from '../../functions/handlers/ingest.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { type FaultRule, SimulatedCrash, withClientFaults, withFaults } from '../helpers/fault-injection.js';
import { ManualClock } from '../helpers/memory-ports.js';
import { propertyRuns } from '../helpers/property-runs.js';
import {
  RecordingBus,
  RecordingDeadLetters,
  RecordingSfn,
  SHARDS,
  envelope,
  ladderWithJourneys as ruleset,
  silentLogger,
  silentMetrics,
  sqsRecord,
} from '../reliability/world.js';

const dynalite = useDynalite();
const NOW = new Date('2026-03-10T10:00:00Z');
const TODAY = localDate(NOW, ruleset.timezone);
const TIERS = ruleset.tiers.map((t) => t.id);
export const CI_CASES = 30;

// ---------------------------------------------------------------------------------------------------------------
// The reference model: the test ladder's rules, written out by hand over the clean event list.

interface ModelFacts {
  days7: number;
  lessons7: number;
  spend30: number;
  plan: string | null;
  daysSinceSignup: number | null;
}

function modelFacts(events: UserEvent[]): ModelFacts {
  const dateOf = (e: UserEvent): string => e.occurredAt.slice(0, 10);
  const within = (e: UserEvent, days: number): boolean => dateOf(e) >= addDays(TODAY, -(days - 1)) && dateOf(e) <= TODAY;
  const signups = events
    .filter((e) => e.type === 'user.signed_up')
    .map(dateOf)
    .sort();
  return {
    days7: new Set(events.filter((e) => within(e, 7)).map(dateOf)).size,
    lessons7: events.filter((e) => e.type === 'content.completed' && within(e, 7)).length,
    spend30: events.filter((e) => e.type === 'order.paid' && within(e, 30)).reduce((sum, e) => sum + Number(e.properties['amount']), 0),
    plan: events.some((e) => e.type === 'questionnaire.answered') ? 'pro' : null,
    daysSinceSignup: signups[0] ? Math.round((Date.parse(TODAY) - Date.parse(signups[0])) / 86_400_000) : null,
  };
}

/** The highest tier whose rule passes (test/helpers/fixtures.ts testRules). */
function modelQualifies(f: ModelFacts): string {
  if (f.spend30 >= 100) return 'core';
  if (f.days7 >= 4) return 'active';
  if (f.days7 >= 2 || (f.daysSinceSignup !== null && f.daysSinceSignup >= 10 && f.plan === 'pro')) return 'member';
  return 'visitor';
}

/** Promotion on arrival, one event at a time: the tier chain as `from→to`, starting with the profile's creation. */
function modelHistory(events: UserEvent[]): string[] {
  const history: string[] = [];
  let tier: string | undefined;
  events.forEach((_, i) => {
    const qualified = modelQualifies(modelFacts(events.slice(0, i + 1)));
    if (tier === undefined) history.push(`visitor→${qualified}`);
    else if (TIERS.indexOf(qualified) > TIERS.indexOf(tier)) history.push(`${tier}→${qualified}`);
    tier = tier === undefined || TIERS.indexOf(qualified) > TIERS.indexOf(tier) ? qualified : tier;
  });
  return history;
}

// ---------------------------------------------------------------------------------------------------------------
// The generated runs.

const PORT_WRITE_POINTS = ['recordEvent', 'saveProfile', 'appendHistory', 'start', 'publishNotices', 'clearOutbox'] as const;
/** The store's own DynamoDB writes inside recordEvent, told apart by what they write. */
const STORE_WRITE_POINTS = ['lightWrite', 'W1', 'W2', 'undo', 'turnHeavy', 'closeDay'] as const;
const WRITE_POINTS = [...PORT_WRITE_POINTS, ...STORE_WRITE_POINTS] as const;
type WritePoint = (typeof WRITE_POINTS)[number];

interface CommandInput {
  Key?: Record<string, { S?: string }>;
  Item?: Record<string, { S?: string }>;
  UpdateExpression?: string;
  ConditionExpression?: string;
}

function storeWritePoint(command: unknown): WritePoint | undefined {
  const input = (command as { input?: CommandInput }).input ?? {};
  const sortKey = (input.Key ?? input.Item)?.['sk']?.S ?? '';
  if (sortKey.startsWith('SEEN#')) return 'W2';
  if (!sortKey.startsWith('DAY#') || input.UpdateExpression === undefined) return undefined;
  if ((input.ConditionExpression ?? '').startsWith('#p = :token')) return 'undo';
  if (input.UpdateExpression.includes('#p = :token')) return 'W1';
  if (input.UpdateExpression.startsWith('REMOVE #ids')) return 'turnHeavy';
  if (input.UpdateExpression.startsWith('REMOVE #r0')) return 'closeDay';
  if ((input.ConditionExpression ?? '').includes('attribute_not_exists(#hv)')) return 'lightWrite';
  return undefined;
}

const eventSpec = fc.record({
  user: fc.nat(3),
  type: fc.constantFrom('app.opened', 'content.completed', 'order.paid', 'questionnaire.answered', 'user.signed_up'),
  day: fc.integer({ min: 0, max: 12 }),
  minute: fc.integer({ min: 0, max: 599 }),
  amount: fc.integer({ min: 1, max: 80 }),
});

const runSpec = fc.record({
  users: fc.integer({ min: 2, max: 4 }),
  events: fc.array(eventSpec, { minLength: 1, maxLength: 12 }),
  duplicates: fc.array(fc.nat(), { maxLength: 4 }),
  shuffleSeed: fc.option(fc.integer(), { nil: undefined }),
  concurrency: fc.option(fc.record({ batchSize: fc.integer({ min: 1, max: 4 }), parallelBatches: fc.boolean() }), { nil: undefined }),
  crashes: fc.array(
    fc.record({
      point: fc.constantFrom(...WRITE_POINTS),
      call: fc.integer({ min: 1, max: 6 }),
      when: fc.constantFrom('before' as const, 'after' as const),
    }),
    { maxLength: 2 },
  ),
  lightDayEvents: fc.constantFrom(16, 1, 0),
  resends: fc.array(fc.record({ pick: fc.nat(), shiftDays: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0) }), { maxLength: 3 }),
});
type RunSpec = typeof runSpec extends fc.Arbitrary<infer T> ? T : never;

let caseNumber = 0;

function eventsOf(spec: RunSpec): UserEvent[] {
  caseNumber += 1;
  const events = spec.events.map((e, i): UserEvent => {
    const occurredAt = new Date(Date.parse(`${addDays(TODAY, -e.day)}T00:00:00Z`) + e.minute * 60_000).toISOString();
    const properties: Record<string, unknown> =
      e.type === 'order.paid' ? { amount: e.amount } : e.type === 'questionnaire.answered' ? { plan: 'pro', interests: ['data'] } : {};
    return { eventId: `case${caseNumber}-e${i}`, userId: `case${caseNumber}-user${e.user % spec.users}`, type: e.type, occurredAt, properties };
  });
  // The clean stream is ordered by time, as a producer would have sent it.
  return events.sort((a, b) => a.occurredAt.localeCompare(b.occurredAt) || a.eventId.localeCompare(b.eventId));
}

function deliveryOrder(spec: RunSpec, events: UserEvent[]): UserEvent[] {
  const delivered = [...events, ...spec.duplicates.map((pick) => events[pick % events.length]!)];
  if (spec.shuffleSeed === undefined) return delivered;
  let state = spec.shuffleSeed >>> 0;
  for (let i = delivered.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [delivered[i], delivered[j]] = [delivered[j]!, delivered[i]!];
  }
  return delivered;
}

/**
 * Delivers everything through the ingest handler until SQS would have nothing left. Each batch runs in its own
 * "process": once a planned crash fires, every later port call of that process fails too, and SQS redelivers the
 * whole batch (the invocation never answered). Crash plans count calls across the whole run and fire once.
 */
/** Producer resends: the same event id later, with another date in the window (only where days are all heavy). */
function resendsOf(spec: RunSpec, events: UserEvent[]): UserEvent[] {
  if (spec.lightDayEvents !== 0) return [];
  return spec.resends.flatMap(({ pick, shiftDays }) => {
    const original = events[pick % events.length]!;
    const occurredAt = new Date(Date.parse(original.occurredAt) + shiftDays * 86_400_000);
    const date = localDate(occurredAt, ruleset.timezone);
    if (date > TODAY || date < addDays(TODAY, -12)) return [];
    return [{ ...original, occurredAt: occurredAt.toISOString() }];
  });
}

interface Ports {
  store: DynamoTierStore;
  sfn: RecordingSfn;
  bus: RecordingBus;
  clock: ManualClock;
  /** A store on the same table through a given client: each batch is a process of its own, with its own cache. */
  storeFor(client: DynamoDBClient): DynamoTierStore;
}

async function deliverAll(spec: RunSpec, delivered: UserEvent[], ports: Ports, firstMessage = 0) {
  const callCounts = new Map<WritePoint, number>();
  const pending = spec.crashes.map((crash) => ({ ...crash, fired: false }));
  const records = delivered.map((e, i) => sqsRecord(`msg-${firstMessage + i}`, envelope(e, `eb-${firstMessage + i}`)));
  const batchSize = spec.concurrency?.batchSize ?? 1;
  let queue: SQSRecord[][] = [];
  for (let i = 0; i < records.length; i += batchSize) queue.push(records.slice(i, i + batchSize));
  let crashesFired = 0;

  const runBatch = async (records: SQSRecord[]): Promise<SQSRecord[]> => {
    const process = { dead: false };
    let plannedAfter = false;
    // Rule order matters: the first rule decides (and counts) the call; the second reads that decision.
    const rules: FaultRule[] = [
      {
        operation: '*',
        call: 1,
        times: Infinity,
        when: 'before',
        match: (_args, operation) => {
          plannedAfter = false;
          if (process.dead) return true;
          if (!(WRITE_POINTS as readonly string[]).includes(operation)) return false;
          const call = (callCounts.get(operation as WritePoint) ?? 0) + 1;
          callCounts.set(operation as WritePoint, call);
          const crash = pending.find((c) => !c.fired && c.point === operation && c.call === call);
          if (!crash) return false;
          crash.fired = true;
          crashesFired += 1;
          plannedAfter = crash.when === 'after';
          return crash.when === 'before';
        },
        error: () => ((process.dead = true), new SimulatedCrash('process', 'before', 0)),
      },
      {
        operation: '*',
        call: 1,
        times: Infinity,
        when: 'after',
        match: () => plannedAfter,
        error: () => ((process.dead = true), new SimulatedCrash('process', 'after', 0)),
      },
    ];
    // The same rules one level down, on the store's DynamoDB client, with each command named by its write point.
    const clientRules: FaultRule[] = rules.map((rule) => ({
      ...rule,
      match: (args: unknown[]) => {
        const point = storeWritePoint(args[0]);
        return rule.match!(args, point ?? 'read');
      },
    }));
    const store = ports.storeFor(withClientFaults(dynalite.client, clientRules));
    const handler = createIngestHandler({
      services: {
        ruleset,
        store: withFaults(store, rules as FaultRule<keyof DynamoTierStore & string>[]),
        journeys: withFaults(ports.sfn, rules as FaultRule<keyof RecordingSfn & string>[]),
        publisher: withFaults(ports.bus, rules as FaultRule<keyof RecordingBus & string>[]),
        clock: ports.clock,
      },
      deadLetters: new RecordingDeadLetters(),
      logger: silentLogger(),
      metrics: silentMetrics(),
    });
    const response = await handler({ Records: records });
    if (process.dead) return records;
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    return records.filter((r) => failed.has(r.messageId));
  };

  for (let round = 0; queue.length > 0; round++) {
    if (round > 50) throw new Error('deliveries never settled');
    const current = queue;
    queue = [];
    // A redelivery comes after the visibility timeout, which outlasts the outbox lease of a process that died.
    if (round > 0) ports.clock.set(new Date(ports.clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
    const retries = spec.concurrency?.parallelBatches ? await Promise.all(current.map(runBatch)) : await sequentially(current, runBatch);
    for (const redelivered of retries) if (redelivered.length > 0) queue.push(redelivered);
  }
  return { crashesFired };
}

async function sequentially<T, R>(items: T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (const item of items) results.push(await run(item));
  return results;
}

describe('ingest model', () => {
  let tableName: string;
  beforeAll(async () => {
    // One table for every case: each case has its own user ids, so cases never see each other.
    tableName = await dynalite.freshTable();
  });
  const stats = { cases: 0, crashed: 0, concurrent: 0, shuffled: 0, heavy: 0, resent: 0 };
  afterAll(() => {
    console.info(
      `ingest model: ${stats.cases} cases, ${stats.crashed} with a crash, ${stats.concurrent} concurrent, ${stats.shuffled} reordered, ` +
        `${stats.heavy} with heavy days, ${stats.resent} with resends on other days`,
    );
  });

  it('ends where the reference model ends on the clean ordered stream, under duplicates, reordering, concurrency and crashes', async () => {
    await fc.assert(
      fc.asyncProperty(runSpec, async (spec) => {
        const events = eventsOf(spec);
        const delivered = deliveryOrder(spec, events);
        const clock = new ManualClock(NOW);
        // The store's clock is the run's (guard expiry, which days may hold an attribute overlay). Each batch is a
        // process with a cold cache, so answers here mostly take the profile write; attribute-overlay.property covers
        // the overlay itself.
        const storeFor = (client: DynamoDBClient) =>
          createDynamoTierStore({
            client,
            tableName,
            shardCount: SHARDS,
            timeZone: ruleset.timezone,
            lightDayEvents: spec.lightDayEvents,
            now: () => clock.now(),
          });
        const store = storeFor(dynalite.client);
        const sfn = new RecordingSfn();
        const bus = new RecordingBus();
        const ports = { store, sfn, bus, clock, storeFor };
        const { crashesFired: crashesBeforeResends } = await deliverAll(spec, delivered, ports);
        const resends = resendsOf(spec, events);
        const { crashesFired: crashesInResends } = await deliverAll({ ...spec, crashes: [] }, resends, ports, delivered.length);
        const crashesFired = crashesBeforeResends + crashesInResends;
        if (resends.length > 0) stats.resent += 1;
        if (spec.lightDayEvents < 16) stats.heavy += 1;
        stats.cases += 1;
        if (crashesFired > 0) stats.crashed += 1;
        if (spec.concurrency && (spec.concurrency.batchSize > 1 || spec.concurrency.parallelBatches)) stats.concurrent += 1;
        if (spec.shuffleSeed !== undefined) stats.shuffled += 1;
        const oneAtATime =
          crashesFired === 0 && (spec.concurrency === undefined || (spec.concurrency.batchSize === 1 && !spec.concurrency.parallelBatches));

        for (const userId of new Set(events.map((e) => e.userId))) {
          const own = events.filter((e) => e.userId === userId);
          const expectedFacts = modelFacts(own);
          const { profile, buckets } = await store.loadUser(userId, windowStart(ruleset, NOW));
          const facts = factsAt(ruleset, buckets, profile?.attributes ?? {}, TODAY);
          expect(
            {
              days7: facts['days7'],
              lessons7: facts['lessons7'],
              spend30: facts['spend30'],
              plan: facts['plan'],
              daysSinceSignup: facts['daysSinceSignup'],
            },
            userId,
          ).toEqual(expectedFacts);
          expect(profile?.tier, userId).toBe(modelQualifies(expectedFacts));

          const history = (await store.listHistory(userId, 100)).reverse().map((h) => `${h.fromTier}→${h.toTier}`);
          if (oneAtATime) {
            const seen = new Set<string>();
            const deliveredOnce = delivered.filter((e) => e.userId === userId && !seen.has(e.eventId) && seen.add(e.eventId));
            expect(history, userId).toEqual(modelHistory(deliveredOnce));
          }
          // A chain from the base tier, only upwards, ending at the final tier.
          const steps = history.map((h) => h.split('→') as [string, string]);
          expect(steps[0]?.[0], userId).toBe(ruleset.baseTier);
          steps.forEach(([from, to], i) => {
            if (i > 0) expect(from, userId).toBe(steps[i - 1]![1]);
            if (i > 0) expect(TIERS.indexOf(to), userId).toBeGreaterThan(TIERS.indexOf(from));
          });
          expect(steps.at(-1)?.[1], userId).toBe(profile?.tier);
          // Every history entry is a profile write; attribute-only writes (a questionnaire answer) add none.
          expect(history.length, userId).toBeLessThanOrEqual(profile!.version);
          expect(profile?.outboxVersion, userId).toBeUndefined();

          // Notices: exactly the tier changes of the history.
          const entered = steps.map(([from, to], i) => `${i === 0 ? 'new' : from}→${to}`);
          expect(bus.tierChangesOf(userId), userId).toEqual([...entered].sort());

          // Executions: names are unique per (user, tier, tierSince), so a second start of one change is refused by
          // name; what must hold is that no tier change started two and the final tier's journey is the running one.
          const started = sfn.executionsOf(userId);
          const enteredWithJourney = steps.map(([, to]) => to).filter((tier) => ruleset.journeys[tier]);
          expect(new Set(started).size, userId).toBe(started.length);
          for (const tier of started) expect(enteredWithJourney, userId).toContain(tier);
          if (ruleset.journeys[profile!.tier]) {
            expect(profile?.journey?.executionName, userId).toBeDefined();
            expect(sfn.started.has(profile!.journey!.executionName), userId).toBe(true);
            expect(sfn.stopped.has(profile!.journey!.executionName), userId).toBe(false);
          }
          if (crashesFired === 0) expect([...started].sort(), userId).toEqual([...enteredWithJourney].sort());
          for (const name of sfn.started.keys()) {
            if (sfn.started.get(name)!.userId === userId && name !== profile?.journey?.executionName)
              expect(sfn.stopped.has(name), `${userId} ${name} stopped`).toBe(true);
          }
        }
      }),
      { numRuns: propertyRuns(CI_CASES) },
    );
  });
});
