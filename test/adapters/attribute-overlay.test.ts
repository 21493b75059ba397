/**
 * A heavy user's attribute changes ride in the day write (the attribute overlay, see dynamo-store.ts): on a heavy
 * day, an event that changes only attributes costs W1 and W2 (2 WRU) rather than a third write for the profile, and
 * every reader (the window read, the journey's short read, the review) sees the profile joined with the overlays,
 * exactly as the replay store's profile. The review folds an overlay into the profile and, once its lease is over
 * and the user quiet, clears it.
 */
import { type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { type DynamoTierStore, createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { addDays } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { type TierServices, ingestEvent } from '../../functions/core/ingest.js';
import { runReview } from '../../functions/core/review.js';
import type { TierStore } from '../../functions/core/ports.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { type FaultRule, withClientFaults } from '../helpers/fault-injection.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';
import { overlayRuleset } from '../helpers/overlay-fixtures.js';

const dynalite = useDynalite();

const USER = 'heavy-ana';
const TODAY = '2026-03-20';

/** The tier services of the overlay ruleset on `store`, with journeys and notices recorded. */
function servicesOn(store: TierStore, clock: ManualClock): TierServices {
  return { ruleset: overlayRuleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock };
}

async function setup() {
  const clock = new ManualClock(new Date(`${TODAY}T12:00:00Z`));
  const { store, capacity, tableName } = await dynalite.freshStore({
    shardCount: 4,
    timeZone: overlayRuleset.timezone,
    lightDayEvents: 3,
    now: () => clock.now(),
  });
  const services = (tierStore: TierStore): TierServices => servicesOn(tierStore, clock);
  const replay = new MemoryReplayStore(4);
  return { store, capacity, tableName, clock, live: services(store), replayed: services(replay), replay };
}

/** The same store as setup's, in a process that dies at its first SEEN# guard write (W2), before or after it lands. */
function storeDyingAtGuardWrite(tableName: string, clock: ManualClock, when: 'before' | 'after') {
  const rules: FaultRule[] = [
    {
      operation: 'PutItemCommand',
      call: 1,
      when,
      times: Infinity,
      match: (args) => ((args[0] as { input: { Item?: Record<string, { S?: string }> } }).input.Item?.['sk']?.S ?? '').startsWith('SEEN#'),
    },
  ];
  return createDynamoTierStore({
    client: withClientFaults(dynalite.client, rules) as DynamoDBClient,
    tableName,
    shardCount: 4,
    timeZone: overlayRuleset.timezone,
    lightDayEvents: 3,
    now: () => clock.now(),
  });
}

let minute = 0;
const lesson = (eventId: string, date = TODAY): UserEvent => ({
  eventId,
  userId: USER,
  type: 'lesson.completed',
  occurredAt: new Date(Date.parse(`${date}T08:00:00Z`) + (minute++ % 600) * 60_000).toISOString(),
  properties: {},
});
const answer = (eventId: string, occurredAt: string, properties: Record<string, unknown>): UserEvent => ({
  eventId,
  userId: USER,
  type: 'questionnaire.answered',
  occurredAt,
  properties,
});

async function attributesOf(store: TierStore & Pick<DynamoTierStore, 'loadUserForJourney'>, from: string) {
  return {
    window: (await store.loadUser(USER, from)).profile?.attributes,
    journey: (await store.loadUserForJourney(USER, TODAY)).profile?.attributes,
  };
}

describe('the attribute overlay of a heavy day', () => {
  it('costs 2 WRU for an attribute change on a heavy day, and every reader sees it', async () => {
    const { store, capacity, clock, live, replayed, replay } = await setup();
    const events: UserEvent[] = [];
    for (let i = 0; i < 6; i++) events.push(lesson(`busy-${i}`));
    // The first change on the heavy day writes the profile (and with it the lease); the later ones ride in W1.
    events.push(answer('q1', `${TODAY}T09:00:00Z`, { goal: 'career', level: 1, interests: ['data'] }));
    for (const event of events) await ingestEvent(live, event);
    const costs: number[] = [];
    const changes = [
      answer('q2', `${TODAY}T10:00:00Z`, { goal: 'upskill', interests: ['web'] }),
      answer('q3', `${TODAY}T07:00:00Z`, { goal: 'curious', level: 3, interests: ['ai'] }),
      answer('q4', `${TODAY}T11:00:00Z`, { level: 2 }),
    ];
    for (const event of changes) {
      capacity.clear();
      await ingestEvent(live, event);
      costs.push(capacity.total().write);
      events.push(event);
    }
    expect(costs).toEqual([2, 2, 2]);

    for (const event of events) await ingestEvent(replayed, event);
    const expected = (await replay.loadUser(USER, addDays(TODAY, -6))).profile?.attributes;
    expect(expected?.['goal']?.value).toBe('upskill');
    expect(await attributesOf(store, addDays(TODAY, -6))).toEqual({ window: expected, journey: expected });

    // The review folds the overlay; once the lease is over and the user quiet, it clears it.
    for (let day = 1; day <= 4; day++) {
      clock.set(`${addDays(TODAY, day)}T04:00:00Z`);
      await runReview(live, 4);
    }
    const { profile } = await store.loadUser(USER, addDays(TODAY, -6));
    expect(profile?.attributes).toEqual(expected);
    expect(profile?.overlayFrom).toBeUndefined();
    expect(profile?.overlayUntil).toBeUndefined();
  });

  it('reads the overlays of days before the read when the profile has not folded them yet', async () => {
    const { store, clock, live, replayed, replay, tableName } = await setup();
    const events: UserEvent[] = [];
    for (let i = 0; i < 6; i++) events.push(lesson(`busy-${i}`));
    events.push(answer('q1', `${TODAY}T09:00:00Z`, { goal: 'career' }));
    events.push(answer('q2', `${TODAY}T10:00:00Z`, { goal: 'upskill' }));
    for (const event of events) await ingestEvent(live, event);
    for (const event of events) await ingestEvent(replayed, event);
    const { Items = [] } = await dynalite.client.send(new ScanCommand({ TableName: tableName }));
    expect(Items.some((item) => item['ov'] !== undefined)).toBe(true);
    // Two days on, a journey step reads only from today: the overlay of the 20th still counts.
    clock.set(`${addDays(TODAY, 2)}T01:00:00Z`);
    const expected = (await replay.loadUser(USER, addDays(TODAY, -6))).profile?.attributes;
    expect((await store.loadUserForJourney(USER, addDays(TODAY, 2))).profile?.attributes).toEqual(expected);
  });
});

describe('a copy of an answer that must not count', () => {
  it('a resend with another date that lands on a heavy day puts back the overlay it replaced', async () => {
    const { store, live, replayed, replay, capacity } = await setup();
    const yesterday = addDays(TODAY, -1);
    const original = answer('q-old', `${addDays(TODAY, -2)}T09:00:00Z`, { goal: 'career', level: 1 });
    const events: UserEvent[] = [original];
    for (let i = 0; i < 6; i++) events.push(lesson(`busy-${i}`, yesterday));
    events.push(answer('q1', `${yesterday}T09:00:00Z`, { goal: 'upskill' }));
    events.push(answer('q2', `${yesterday}T10:00:00Z`, { level: 2 }));
    for (const event of events) await ingestEvent(live, event);
    for (const event of events) await ingestEvent(replayed, event);
    // The producer sends the first answer again, dated a day later: it would win on `goal` if it counted.
    capacity.clear();
    const resend = { ...original, occurredAt: `${yesterday}T11:00:00Z` };
    expect((await ingestEvent(live, resend)).duplicate).toBe(true);
    // W1 applied it (no guard: the original's day was light); the settle then took it back out, overlay and all.
    expect(capacity.records.filter((record) => record.operation === 'recordEvent' && record.write > 0)).toHaveLength(2);
    const expected = (await replay.loadUser(USER, addDays(TODAY, -6))).profile?.attributes;
    expect(expected?.['goal']?.value).toBe('upskill');
    expect(await attributesOf(store, addDays(TODAY, -6))).toEqual({ window: expected, journey: expected });
  });
});

describe('an answer whose process died between W1 and W2', () => {
  it('is not read until its redelivery finishes it, and holds overlayFrom back meanwhile', async () => {
    const { store, live, replayed, replay, tableName, clock } = await setup();
    const events: UserEvent[] = [];
    for (let i = 0; i < 6; i++) events.push(lesson(`busy-${i}`));
    events.push(answer('q1', `${TODAY}T09:00:00Z`, { goal: 'career', level: 1 }));
    events.push(answer('q2', `${TODAY}T10:00:00Z`, { goal: 'upskill' }));
    for (const event of events) await ingestEvent(live, event);
    for (const event of events) await ingestEvent(replayed, event);
    const from = addDays(TODAY, -6);
    const before = (await replay.loadUser(USER, from)).profile?.attributes;
    // q3's W1 writes the overlay (this process holds the lease), then the process dies before its guard (W2).
    const q3 = answer('q3', `${TODAY}T11:00:00Z`, { goal: 'curious', level: 3 });
    const dying = storeDyingAtGuardWrite(tableName, clock, 'before');
    await dying.loadUser(USER, from);
    await expect(ingestEvent({ ...live, store: dying }, q3)).rejects.toThrow();
    const { Items = [] } = await dynalite.client.send(new ScanCommand({ TableName: tableName }));
    expect(Items.find((item) => item['sk']?.S === `DAY#${TODAY}`)?.['ov']?.S).toContain('q3');
    // Until then every reader (this process or a cold one) reads the overlay q3 replaced, and a save keeps the day.
    const cold = createDynamoTierStore({
      client: dynalite.client,
      tableName,
      shardCount: 4,
      timeZone: overlayRuleset.timezone,
      now: () => clock.now(),
    });
    clock.set(`${addDays(TODAY, 3)}T01:00:00Z`);
    for (const reader of [store, cold]) {
      const read = await reader.loadUser(USER, from);
      expect(read.profile?.attributes).toEqual(before);
      expect(read.profile?.overlayFrom).toBe(TODAY);
      expect((await reader.loadUserForJourney(USER, addDays(TODAY, 3))).profile?.attributes).toEqual(before);
    }
    // The redelivery adopts the attempt and finishes it: now it counts, as in the replay store.
    await ingestEvent(live, q3);
    await ingestEvent(replayed, q3);
    const after = (await replay.loadUser(USER, from)).profile?.attributes;
    expect(after?.['goal']?.value).toBe('curious');
    for (const reader of [store, cold]) {
      expect((await reader.loadUser(USER, from)).profile?.attributes).toEqual(after);
      expect((await reader.loadUserForJourney(USER, addDays(TODAY, 3))).profile?.attributes).toEqual(after);
    }
  });
});

describe('a resend whose first attempt crashed before its settle', () => {
  const cases = [
    { kind: 'answer', when: 'before' },
    { kind: 'answer', when: 'after' },
    { kind: 'lesson', when: 'before' },
    { kind: 'lesson', when: 'after' },
  ] as const;
  for (const { kind, when } of cases) {
    it(`counts once (${kind}), counters and attributes, when the process died ${when} W2`, async () => {
      const { store, live, replayed, replay, tableName, clock } = await setup();
      const yesterday = addDays(TODAY, -1);
      const original =
        kind === 'answer'
          ? answer('q-old', `${addDays(TODAY, -2)}T09:00:00Z`, { goal: 'career', level: 1 })
          : { ...lesson('l-old', addDays(TODAY, -2)), occurredAt: `${addDays(TODAY, -2)}T09:00:00Z` };
      const events: UserEvent[] = [original];
      for (let i = 0; i < 6; i++) events.push(lesson(`busy-${i}`, yesterday));
      events.push(answer('q1', `${yesterday}T09:00:00Z`, { goal: 'upskill' }));
      for (const event of events) await ingestEvent(live, event);
      for (const event of events) await ingestEvent(replayed, event);
      // The resend's W1 is applied (the original's day was light: no guard), then the process dies at its W2.
      const resend = { ...original, occurredAt: `${yesterday}T11:00:00Z` };
      const dying = storeDyingAtGuardWrite(tableName, clock, when);
      await expect(ingestEvent({ ...live, store: dying }, resend)).rejects.toThrow();
      // SQS redelivers it to another process.
      expect((await ingestEvent(live, resend)).duplicate).toBe(true);
      const from = addDays(TODAY, -6);
      const expected = await replay.loadUser(USER, from);
      const read = await store.loadUser(USER, from);
      expect(read.buckets.map(({ date, counters }) => ({ date, counters }))).toEqual(
        expected.buckets.map(({ date, counters }) => ({ date, counters })),
      );
      expect(read.profile?.attributes).toEqual(expected.profile?.attributes);
    });
  }
});

describe('overlays and the roll-up', () => {
  it('a user heavy with answers every day: folded days roll up without their overlays, and every read stays the replay store profile', async () => {
    const clock = new ManualClock(new Date('2026-05-01T20:00:00Z'));
    const { store, tableName } = await dynalite.freshStore({
      shardCount: 4,
      timeZone: overlayRuleset.timezone,
      lightDayEvents: 3,
      rollUpReadBytes: 1024,
      now: () => clock.now(),
    });
    const replay = new MemoryReplayStore(4);
    const services = (tierStore: TierStore): TierServices => servicesOn(tierStore, clock);
    const goals = ['career', 'upskill', 'curious'];
    const tags = ['ai', 'data', 'design', 'web', 'ops'];
    const DAYS = 30;
    for (let day = 0; day < DAYS; day++) {
      const date = addDays('2026-05-01', day);
      clock.set(`${date}T20:00:00Z`);
      const events: UserEvent[] = [];
      for (let i = 0; i < 6; i++) events.push({ ...lesson(`l${day}-${i}`, date) });
      events.push(
        answer(`a${day}-0`, `${date}T${String(10 + (day % 7)).padStart(2, '0')}:00:00Z`, { goal: goals[day % 3], interests: [tags[day % 5]] }),
      );
      events.push(answer(`a${day}-1`, `${date}T09:30:00Z`, { level: day % 4 }));
      for (const event of events) {
        await ingestEvent(services(store), event);
        await ingestEvent(services(replay), event);
      }
      // The nightly review, early next morning.
      clock.set(`${addDays(date, 1)}T04:00:00Z`);
      await runReview(services(store), 4);
      await runReview(services(replay), 4);
    }
    const from = addDays('2026-05-01', DAYS - 20);
    const expected = await replay.loadUser(USER, from);
    const read = await store.loadUser(USER, from);
    expect(read.profile?.attributes).toEqual(expected.profile?.attributes);
    expect(read.buckets.map(({ date, counters }) => ({ date, counters }))).toEqual(
      expected.buckets.map(({ date, counters }) => ({ date, counters })),
    );
    expect((await store.loadUserForJourney(USER, addDays('2026-05-01', DAYS))).profile?.attributes).toEqual(expected.profile?.attributes);
    const { Items = [] } = await dynalite.client.send(new ScanCommand({ TableName: tableName }));
    const segments = Items.filter((item) => item['sk']?.S?.endsWith('~'));
    expect(segments.length).toBeGreaterThan(0);
    // Rolled-up days keep no overlay (the profile folded it), and neither does the segment; the newest days hold theirs.
    const drained = Items.filter((item) => item['hv']?.N !== undefined);
    expect(drained.length).toBeGreaterThan(0);
    for (const item of [...segments, ...drained]) expect(item['ov']).toBeUndefined();
    expect(Items.some((item) => item['ov'] !== undefined)).toBe(true);
  }, 120_000);
});
