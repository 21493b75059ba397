/**
 * Differential property of the attribute overlay (dynamo-store.ts): a heavy user's attribute changes ride in the
 * day write, and readers join them into the profile. Whatever the history (attribute answers with any values on
 * heavy and light days, out of order, redelivered, several in flight at once, producer resends with another
 * occurredAt on another day, crashes between W1 and W2, before or after the undo and around the profile write, each
 * followed by a redelivery in a fresh process with a cold cache), the profile that the window read (loadUser) and the
 * journey's short read (loadUserForJourney) return has exactly the attributes of the replay store's profile fed the
 * clean, once-only stream, and the days hold the same counters. Then the nightly review folds the overlays into the
 * stored profile and, once the lease is over, clears it: the attributes stay the same.
 */
import { type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DynamoTierStore, createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { addDays } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { OUTBOX_LEASE_MS, type TierServices, ingestEvent } from '../../functions/core/ingest.js';
import { runReview } from '../../functions/core/review.js';
import type { DayBucket } from '../../functions/core/state.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { type FaultRule, SimulatedCrash, withClientFaults } from '../helpers/fault-injection.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';
import { overlayRuleset as ruleset } from '../helpers/overlay-fixtures.js';
import { propertyRuns } from '../helpers/property-runs.js';

const dynalite = useDynalite();
const TODAY = '2026-03-20';
const NOW = new Date(`${TODAY}T20:00:00Z`);
const SHARDS = 4;

/** The store's writes, told apart by what they write (see dynamo-store.ts). */
const WRITE_POINTS = ['W1', 'W2', 'undo', 'saveProfile'] as const;
type WritePoint = (typeof WRITE_POINTS)[number];
interface CommandInput {
  Key?: Record<string, { S?: string }>;
  Item?: Record<string, { S?: string }>;
  UpdateExpression?: string;
  ConditionExpression?: string;
}
function writePoint(command: unknown): WritePoint | undefined {
  const input = (command as { input?: CommandInput }).input ?? {};
  const sortKey = (input.Key ?? input.Item)?.['sk']?.S ?? '';
  if (sortKey.startsWith('SEEN#') && input.Item) return 'W2';
  if (sortKey === 'PROFILE' && input.Item) return 'saveProfile';
  if (!sortKey.startsWith('DAY#') || input.UpdateExpression === undefined) return undefined;
  if ((input.ConditionExpression ?? '').startsWith('#p = :token')) return 'undo';
  if (input.UpdateExpression.includes('#p = :token')) return 'W1';
  return undefined;
}

const GOALS = ['career', 'upskill', 'curious'];
const TAGS = ['ai', 'data', 'design', 'web'];
const eventSpec = fc.record({
  kind: fc.constantFrom('lesson', 'lesson', 'lesson', 'answer', 'answer', 'signup'),
  // Mostly today and yesterday (the days an overlay may be written on); earlier days are mostly light.
  day: fc.constantFrom(0, 0, 0, 1, 1, 2, 3, 4, 5, 6),
  minute: fc.integer({ min: 0, max: 1_100 }),
  goal: fc.option(fc.constantFrom(...GOALS), { nil: undefined }),
  level: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  interests: fc.option(fc.subarray(TAGS), { nil: undefined }),
});
const caseSpec = fc.record({
  lightDayEvents: fc.constantFrom(3, 3, 0),
  events: fc.array(eventSpec, { minLength: 8, maxLength: 36, size: 'max' }),
  duplicates: fc.array(fc.nat(), { maxLength: 6 }),
  shuffleSeed: fc.option(fc.integer(), { nil: undefined }),
  inFlight: fc.constantFrom(1, 1, 2),
  // Resends mostly of earlier answers (most on light days, whose keys have no guard: the resend is applied, then
  // taken back out, overlay and all), dated today or yesterday, the days that may hold an overlay.
  resends: fc.array(fc.record({ pick: fc.nat(), answer: fc.constantFrom(true, true, false), toDay: fc.constantFrom(0, 1, 2) }), {
    maxLength: 5,
  }),
  crashes: fc.array(
    fc.record({
      point: fc.constantFrom(...WRITE_POINTS),
      call: fc.integer({ min: 1, max: 12 }),
      when: fc.constantFrom('before' as const, 'after' as const),
    }),
    { maxLength: 2 },
  ),
});
type CaseSpec = typeof caseSpec extends fc.Arbitrary<infer T> ? T : never;

let caseNumber = 0;

function eventsOf(spec: CaseSpec, userId: string): UserEvent[] {
  return spec.events.map((e, i): UserEvent => {
    const occurredAt = new Date(Date.parse(`${addDays(TODAY, -e.day)}T00:00:00Z`) + e.minute * 60_000).toISOString();
    const eventId = `c${caseNumber}-e${i}`;
    if (e.kind === 'lesson') return { eventId, userId, type: 'lesson.completed', occurredAt, properties: {} };
    if (e.kind === 'signup') return { eventId, userId, type: 'user.signed_up', occurredAt, properties: {} };
    const properties: Record<string, unknown> = {};
    if (e.goal !== undefined) properties['goal'] = e.goal;
    if (e.level !== undefined) properties['level'] = e.level;
    if (e.interests !== undefined) properties['interests'] = e.interests;
    return { eventId, userId, type: 'questionnaire.answered', occurredAt, properties };
  });
}

function shuffled<T>(items: T[], seed: number | undefined): T[] {
  if (seed === undefined) return items;
  const out = [...items];
  let state = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const countersOf = (buckets: readonly DayBucket[]) =>
  buckets.filter((bucket) => Object.values(bucket.counters).some((n) => n !== 0)).map(({ date, counters }) => ({ date, counters }));

describe('the attribute overlay against the replay store', () => {
  const stats = { cases: 0, overlays: 0, crashed: 0, resent: 0, overlayWrites: 0, restores: 0 };
  /** Counts the overlay writes and the undos that put an overlay back, so that the property is seen to reach them. */
  const countOverlayWrites = (command: unknown): void => {
    const input = (command as { input?: CommandInput }).input ?? {};
    if ((input.UpdateExpression ?? '').includes('#ov = :ov,')) stats.overlayWrites += 1;
    if ((input.ConditionExpression ?? '').includes('#ov = :ovNow')) stats.restores += 1;
  };
  it('reads the replay store profile through every reader, and the review folds and clears it', async () => {
    await fc.assert(
      fc.asyncProperty(caseSpec, async (spec) => {
        caseNumber += 1;
        const userId = `overlay-${caseNumber}`;
        const tableName = await dynalite.freshTable();
        const clock = new ManualClock(NOW);
        const originals = eventsOf(spec, userId);
        const delivered = shuffled([...originals, ...spec.duplicates.map((pick) => originals[pick % originals.length]!)], spec.shuffleSeed);
        // Producer resends: the same id later, with an occurredAt on another day (they come after the originals).
        const answers = originals.filter((event) => event.type === 'questionnaire.answered');
        const earlierAnswers = answers.filter((event) => event.occurredAt < addDays(TODAY, -1));
        const resends = spec.resends.flatMap(({ pick, answer, toDay }) => {
          const from = !answer ? originals : earlierAnswers.length > 0 ? earlierAnswers : answers.length > 0 ? answers : originals;
          const original = from[pick % from.length]!;
          const occurredAt = `${addDays(TODAY, -toDay)}${original.occurredAt.slice(10)}`;
          return occurredAt.slice(0, 10) === original.occurredAt.slice(0, 10) ? [] : [{ ...original, occurredAt }];
        });

        // Each process has its own store (its own cache); a crash kills the process, and SQS redelivers.
        const pending = spec.crashes.map((crash) => ({ ...crash, fired: false }));
        const calls = new Map<WritePoint, number>();
        const process = { dead: false };
        const rules: FaultRule[] = [
          {
            operation: '*',
            call: 1,
            times: Infinity,
            when: 'before',
            match: (args) => {
              if (process.dead) return true;
              countOverlayWrites(args[0]);
              const point = writePoint(args[0]);
              if (!point) return false;
              const call = (calls.get(point) ?? 0) + 1;
              calls.set(point, call);
              const crash = pending.find((c) => !c.fired && c.point === point && c.call === call);
              if (!crash) return false;
              crash.fired = true;
              if (crash.when === 'after') {
                afterNext = true;
                return false;
              }
              return true;
            },
            error: () => ((process.dead = true), new SimulatedCrash('process', 'before', 0)),
          },
          {
            operation: '*',
            call: 1,
            times: Infinity,
            when: 'after',
            match: () => {
              const fire = afterNext;
              afterNext = false;
              return fire;
            },
            error: () => ((process.dead = true), new SimulatedCrash('process', 'after', 0)),
          },
        ];
        let afterNext = false;
        const newProcess = (): TierServices => {
          process.dead = false;
          const client = withClientFaults(dynalite.client, rules) as DynamoDBClient;
          const store = createDynamoTierStore({
            client,
            tableName,
            shardCount: SHARDS,
            timeZone: ruleset.timezone,
            lightDayEvents: spec.lightDayEvents,
            now: () => clock.now(),
          });
          return { ruleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock };
        };
        let services = newProcess();
        let crashed = false;
        const deliver = async (queue: UserEvent[], inFlight: number) => {
          let next = 0;
          const retry: UserEvent[] = [];
          const worker = async () => {
            for (let i = next++; i < queue.length; i = next++) {
              try {
                await ingestEvent(services, queue[i]!);
              } catch (error) {
                if (!process.dead) throw error;
                retry.push(queue[i]!);
              }
            }
          };
          await Promise.all(Array.from({ length: inFlight }, worker));
          if (process.dead) {
            crashed = true;
            // The redelivery comes after the visibility timeout, in a new process.
            clock.set(new Date(clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
            services = newProcess();
          }
          return retry;
        };
        let queue = delivered;
        for (let round = 0; queue.length > 0; round++) {
          if (round > 20) throw new Error('deliveries never settled');
          queue = await deliver(queue, spec.inFlight);
        }
        queue = resends;
        for (let round = 0; queue.length > 0; round++) {
          if (round > 20) throw new Error('resends never settled');
          queue = await deliver(queue, 1);
        }

        // Crashes are planned for the deliveries only: a plan left over does not fire in the readers or the review.
        for (const crash of pending) crash.fired = true;

        // The replay store, fed the clean stream: each event once, in time order.
        const replay = new MemoryReplayStore(SHARDS);
        const replayed: TierServices = {
          ruleset,
          store: replay,
          journeys: new RecordingJourneyStarter(),
          publisher: new RecordingPublisher(),
          clock,
        };
        for (const event of [...originals].sort((a, b) => a.occurredAt.localeCompare(b.occurredAt))) await ingestEvent(replayed, event);
        const from = addDays(TODAY, -10);
        const expected = (await replay.loadUser(userId, from)).profile!;
        const store = services.store as DynamoTierStore;
        // A reader in another process (a cold cache), and the process that wrote.
        const cold = newProcess().store as DynamoTierStore;
        for (const reader of [store, cold]) {
          const read = await reader.loadUser(userId, from);
          expect(read.profile?.attributes, 'loadUser').toEqual(expected.attributes);
          expect(countersOf(read.buckets)).toEqual(countersOf((await replay.loadUser(userId, from)).buckets));
          expect((await reader.loadUserForJourney(userId, TODAY)).profile?.attributes, 'loadUserForJourney').toEqual(expected.attributes);
        }
        const stored = (await cold.loadUser(userId, from)).profile!;
        stats.cases += 1;
        if (stored.overlayFrom !== undefined) stats.overlays += 1;
        if (crashed) stats.crashed += 1;
        if (resends.length > 0) stats.resent += 1;

        // The nightly review, a few nights on: it folds the overlays and, the user quiet, clears the lease.
        for (let night = 1; night <= 4; night++) {
          clock.set(`${addDays(TODAY, night)}T04:00:00Z`);
          await runReview(newProcess(), SHARDS);
          const read = await newProcess().store.loadUser(userId, from);
          expect(read.profile?.attributes, `after night ${night}`).toEqual(expected.attributes);
        }
        const { profile } = await newProcess().store.loadUser(userId, from);
        expect(profile?.overlayFrom).toBeUndefined();
        expect(profile?.overlayUntil).toBeUndefined();
      }),
      { numRuns: propertyRuns(30), endOnFailure: true },
    );
    console.info(
      `attribute overlay: ${stats.cases} cases, ${stats.overlays} with an overlay lease, ${stats.crashed} crashed, ${stats.resent} resent, ` +
        `${stats.overlayWrites} overlay writes, ${stats.restores} undos that put an overlay back`,
    );
    expect(stats.overlayWrites).toBeGreaterThan(0);
    expect(stats.restores).toBeGreaterThan(0);
  }, 900_000);
});

describe('the attribute overlay and the roll-up', () => {
  const daySpec = fc.record({
    lessons: fc.integer({ min: 4, max: 7 }),
    answers: fc.array(
      fc.record({
        minute: fc.integer({ min: 0, max: 1_100 }),
        goal: fc.option(fc.constantFrom(...GOALS), { nil: undefined }),
        level: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        interests: fc.option(fc.subarray(TAGS), { nil: undefined }),
      }),
      { maxLength: 3 },
    ),
    reviewed: fc.boolean(),
  });
  const rollUpCase = fc.record({
    days: fc.array(daySpec, { minLength: 18, maxLength: 26 }),
    /** Roll-up writes before which a crash stops the roll-up (counted over the whole case). */
    crashes: fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 4 }),
  });

  it('rolls folded days up without their overlays, crashes between its writes included, and reads stay the replay store profile', async () => {
    let rolled = 0;
    let crashed = 0;
    await fc.assert(
      fc.asyncProperty(rollUpCase, async ({ days, crashes }) => {
        caseNumber += 1;
        const userId = `rolled-${caseNumber}`;
        const tableName = await dynalite.freshTable();
        const clock = new ManualClock(new Date('2026-05-01T20:00:00Z'));
        let steps = 0;
        const crashAt = new Set(crashes);
        const store = createDynamoTierStore({
          client: dynalite.client,
          tableName,
          shardCount: SHARDS,
          timeZone: ruleset.timezone,
          lightDayEvents: 3,
          rollUpReadBytes: 1024,
          now: () => clock.now(),
          onRollUpStep: () => {
            steps += 1;
            if (!crashAt.has(steps)) return;
            crashed += 1;
            throw new Error(`crash before roll-up write ${steps}`);
          },
        });
        const replay = new MemoryReplayStore(SHARDS);
        const services = (tierStore: TierServices['store']): TierServices => ({
          ruleset,
          store: tierStore,
          journeys: new RecordingJourneyStarter(),
          publisher: new RecordingPublisher(),
          clock,
        });
        const compare = async (from: string, today: string) => {
          const expected = await replay.loadUser(userId, from);
          const read = await store.loadUser(userId, from);
          expect(read.profile?.attributes).toEqual(expected.profile?.attributes);
          expect(countersOf(read.buckets)).toEqual(countersOf(expected.buckets));
          expect((await store.loadUserForJourney(userId, today)).profile?.attributes).toEqual(expected.profile?.attributes);
        };
        for (const [day, spec] of days.entries()) {
          const date = addDays('2026-05-01', day);
          clock.set(`${date}T20:00:00Z`);
          const events: UserEvent[] = [];
          for (let i = 0; i < spec.lessons; i++) {
            events.push({
              eventId: `${userId}-l${day}-${i}`,
              userId,
              type: 'lesson.completed',
              occurredAt: `${date}T0${i}:00:00.000Z`,
              properties: {},
            });
          }
          spec.answers.forEach((answer, i) => {
            const properties: Record<string, unknown> = {};
            if (answer.goal !== undefined) properties['goal'] = answer.goal;
            if (answer.level !== undefined) properties['level'] = answer.level;
            if (answer.interests !== undefined) properties['interests'] = answer.interests;
            const occurredAt = new Date(Date.parse(`${date}T00:00:00Z`) + answer.minute * 60_000).toISOString();
            events.push({ eventId: `${userId}-a${day}-${i}`, userId, type: 'questionnaire.answered', occurredAt, properties });
          });
          for (const event of events) {
            await ingestEvent(services(store), event);
            await ingestEvent(services(replay), event);
          }
          if (spec.reviewed) {
            clock.set(`${addDays(date, 1)}T04:00:00Z`);
            await runReview(services(store), SHARDS);
            await runReview(services(replay), SHARDS);
          }
          await compare(addDays(date, -14), date);
        }
        crashAt.clear();
        const last = addDays('2026-05-01', days.length - 1);
        await compare(addDays(last, -20), last);
        const { Items = [] } = await dynalite.client.send(new ScanCommand({ TableName: tableName }));
        const segments = Items.filter((item) => item['sk']?.S?.endsWith('~'));
        const drained = Items.filter((item) => item['hv']?.N !== undefined);
        if (segments.length > 0) rolled += 1;
        for (const item of [...segments, ...drained]) expect(item['ov']).toBeUndefined();
      }),
      { numRuns: propertyRuns(5), endOnFailure: true },
    );
    console.info(`attribute overlay and roll-up: ${rolled} cases rolled up, ${crashed} roll-ups stopped by a crash`);
    expect(rolled).toBeGreaterThan(0);
  }, 900_000);
});
