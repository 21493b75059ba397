/**
 * The ingest and review services over the DynamoDB store on dynalite: the reliability contract (duplicates, a
 * crash at each write point, missed nights) and the capacity an event costs.
 */
import { describe, expect, it } from 'vitest';
import type { DynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { addDays } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { OUTBOX_LEASE_MS, type TierServices, ingestEvent } from '../../functions/core/ingest.js';
import type { JourneyStarter } from '../../functions/core/ports.js';
import { reviewShard, runReview } from '../../functions/core/review.js';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import type { JourneyRef } from '../../functions/core/state.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';

const dynalite = useDynalite();
const SHARDS = 4;

const welcomeJourney = (tier: string) => ({
  id: `${tier}-welcome`,
  tier,
  name: `${tier} welcome`,
  start: 'welcome',
  settings: {},
  steps: [
    { type: 'content', id: 'welcome', templateId: `${tier}-welcome-pack`, channel: 'email', next: 'done' },
    { type: 'exit', id: 'done' },
  ],
});

/** Member: two lessons in 7 days. Core: 100 spent in 30 days. The 30-day window makes loadUser read a month. */
const ruleset = loadRulesetOrThrow({
  'rules/tiers.json': JSON.stringify({
    timezone: 'UTC',
    tiers: [
      { id: 'visitor', name: 'Visitor', graceDays: 0, minTenureDays: 0, downgrade: 'one-step' },
      { id: 'member', name: 'Member', graceDays: 2, minTenureDays: 0, downgrade: 'one-step', journey: 'journeys/member.json' },
      { id: 'core', name: 'Core', graceDays: 2, minTenureDays: 0, downgrade: 'to-qualified', journey: 'journeys/core.json' },
    ],
    metrics: {
      lessons7: { kind: 'count', windowDays: 7, eventTypes: ['lesson.completed'] },
      activeDays30: { kind: 'distinct-days', windowDays: 30 },
      spend30: { kind: 'sum', windowDays: 30, eventTypes: ['order.paid'], property: 'amount' },
    },
    attributes: {
      goal: { type: 'string', event: 'questionnaire.answered', property: 'goal' },
    },
  }),
  'rules/member.json': JSON.stringify({
    conditions: { all: [{ fact: 'lessons7', operator: 'greaterThanInclusive', value: 2 }] },
    event: { type: 'qualifies', params: { tier: 'member' } },
  }),
  'rules/core.json': JSON.stringify({
    conditions: { all: [{ fact: 'spend30', operator: 'greaterThanInclusive', value: 100 }] },
    event: { type: 'qualifies', params: { tier: 'core' } },
  }),
  'journeys/member.json': JSON.stringify(welcomeJourney('member')),
  'journeys/core.json': JSON.stringify(welcomeJourney('core')),
});

let eventSequence = 0;
function userEvent(userId: string, type: string, occurredAt: string, properties: Record<string, unknown> = {}): UserEvent {
  eventSequence += 1;
  return { eventId: `evt-${eventSequence}`, userId, type, occurredAt, properties };
}
const lesson = (userId: string, occurredAt: string) => userEvent(userId, 'lesson.completed', occurredAt);

/** A starter that can be made to crash before its next StartExecution, as a Lambda timeout would. */
class CrashableStarter implements JourneyStarter {
  readonly recording = new RecordingJourneyStarter();
  crashBeforeNextStart = false;
  async start(journey: JourneyRef): Promise<'started' | 'already-exists'> {
    if (this.crashBeforeNextStart) {
      this.crashBeforeNextStart = false;
      throw new Error('simulated crash before StartExecution');
    }
    return this.recording.start(journey);
  }
  stop(executionName: string): Promise<void> {
    return this.recording.stop(executionName);
  }
  get startedExecutions(): string[] {
    return [...this.recording.started.keys()];
  }
}

/** The store with a crash armed before its next saveProfile: the day write has happened, the profile write not. */
function withCrashBeforeNextProfileWrite(store: DynamoTierStore): { store: DynamoTierStore; arm(): void } {
  let armed = false;
  return {
    store: {
      ...store,
      async saveProfile(profile, expectedVersion) {
        if (armed) {
          armed = false;
          throw new Error('simulated crash before the profile write');
        }
        return store.saveProfile(profile, expectedVersion);
      },
    },
    arm: () => {
      armed = true;
    },
  };
}

async function setup(now = '2026-03-10T09:00:00.000Z') {
  const { store, capacity } = await dynalite.freshStore({ shardCount: SHARDS, timeZone: ruleset.timezone });
  const crash = withCrashBeforeNextProfileWrite(store);
  const journeys = new CrashableStarter();
  const publisher = new RecordingPublisher();
  const clock = new ManualClock(new Date(now));
  const services: TierServices = { ruleset, store: crash.store, journeys, publisher, clock };
  return { store, capacity, crash, journeys, publisher, clock, services };
}

/** Everything the user has in the table that a duplicate could change. */
async function snapshot(store: DynamoTierStore, userId: string) {
  const { profile, buckets } = await store.loadUser(userId, '2026-01-01');
  return { profile, buckets, history: await store.listHistory(userId, 10) };
}

describe('ingest over DynamoDB', () => {
  it('a redelivered event changes nothing', async () => {
    const { store, services, journeys, publisher } = await setup();
    const first = lesson('ana', '2026-03-10T08:00:00Z');
    const second = lesson('ana', '2026-03-10T08:30:00Z');
    await ingestEvent(services, first);
    await ingestEvent(services, second);
    const before = await snapshot(store, 'ana');
    const noticesBefore = publisher.notices.size;

    const again = await ingestEvent(services, second);
    await ingestEvent(services, first);

    expect(again.duplicate).toBe(true);
    expect(await snapshot(store, 'ana')).toEqual(before);
    expect(before.profile).toMatchObject({ tier: 'member', version: 2 });
    expect(before.buckets.map((b) => b.counters)).toEqual([{ [ruleset.metrics[0]!.countCounter]: 2, [ruleset.metrics[1]!.countCounter]: 2 }]);
    expect(journeys.startedExecutions).toHaveLength(1);
    expect(publisher.notices.size).toBe(noticesBefore);
  });

  it('a crash between the day write and the profile write heals on redelivery, with one journey start', async () => {
    const { store, services, journeys, crash } = await setup();
    await ingestEvent(services, lesson('ben', '2026-03-10T08:00:00Z'));
    const promoting = lesson('ben', '2026-03-10T08:30:00Z');

    crash.arm();
    await expect(ingestEvent(services, promoting)).rejects.toThrow('simulated crash before the profile write');
    const crashed = await store.loadUser('ben', '2026-03-01');
    expect(crashed.profile?.tier).toBe('visitor');
    expect(Object.values(crashed.buckets[0]!.counters)).toEqual([2, 2]);

    const redelivered = await ingestEvent(services, promoting);

    expect(redelivered.duplicate).toBe(true);
    expect(redelivered.profile).toMatchObject({ tier: 'member' });
    expect(journeys.startedExecutions).toEqual([redelivered.profile?.journey?.executionName]);
    const healed = await snapshot(store, 'ben');
    expect(healed.profile?.outboxVersion).toBeUndefined();
    expect(healed.history.map((h) => h.toTier)).toEqual(['member', 'visitor']);
  });

  it('a failed journey start after the profile write does not fail the event; the redelivery after the lease heals it, with one journey start', async () => {
    const { store, services, journeys, clock } = await setup();
    await ingestEvent(services, lesson('cai', '2026-03-10T08:00:00Z'));
    const promoting = lesson('cai', '2026-03-10T08:30:00Z');

    journeys.crashBeforeNextStart = true;
    // The event is applied and the profile saved: failing the SQS record would dead-letter it (defect 8).
    const failedFlush = await ingestEvent(services, promoting);
    expect((failedFlush.outboxError as Error).message).toBe('simulated crash before StartExecution');
    const crashed = await store.loadUser('cai', '2026-03-01');
    expect(crashed.profile).toMatchObject({ tier: 'member', outboxRetryAt: '2026-03-11' });
    expect(journeys.startedExecutions).toEqual([]);

    // Within the lease nobody else flushes; after it, the next delivery takes the outbox over.
    await ingestEvent(services, promoting);
    expect(journeys.startedExecutions).toEqual([]);
    clock.set(new Date(clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
    await ingestEvent(services, promoting);

    expect(journeys.startedExecutions).toEqual([crashed.profile?.pendingJourney?.start?.executionName]);
    const healed = await store.loadUser('cai', '2026-03-01');
    expect(healed.profile?.outboxVersion).toBeUndefined();
    expect(healed.profile?.pendingJourney).toBeUndefined();
    // Listed again under its review date, not under the retry night.
    expect((await store.listDueForReview('2026-03-11', reviewShard('cai', SHARDS))).userIds).toEqual([]);
    expect((await store.listDueForReview(healed.profile!.reviewAt!, reviewShard('cai', SHARDS))).userIds).toEqual(['cai']);
  });

  it("a crash between the profile write and the journey start heals at the next night's review with no new event", async () => {
    const { store, services, journeys, clock } = await setup();
    await store.setReviewCheckpoint('2026-03-10');
    await ingestEvent(services, lesson('dan', '2026-03-10T08:00:00Z'));
    journeys.crashBeforeNextStart = true;
    expect((await ingestEvent(services, lesson('dan', '2026-03-10T08:30:00Z'))).outboxError).toBeInstanceOf(Error);
    const crashed = await store.loadUser('dan', '2026-03-01');

    clock.set('2026-03-11T01:00:00.000Z');
    const stats = await runReview(services, SHARDS);

    expect(stats).toMatchObject({ dates: ['2026-03-11'], usersDue: 1, usersChanged: 0 });
    expect(journeys.startedExecutions).toEqual([crashed.profile?.pendingJourney?.start?.executionName]);
    expect((await store.loadUser('dan', '2026-03-01')).profile?.outboxVersion).toBeUndefined();
    expect(await store.getReviewCheckpoint()).toBe('2026-03-11');
    // The next run has nothing left to do.
    expect(await runReview(services, SHARDS)).toMatchObject({ dates: [], usersDue: 0 });
    expect(journeys.startedExecutions).toHaveLength(1);
  });
});

describe('the outbox lease and failing flushes', () => {
  it('an event that arrives while another flushes the outbox leaves it alone: one start, notices published once (defect 9)', async () => {
    const { services } = await setup();
    await ingestEvent(services, lesson('eva', '2026-03-10T08:00:00Z'));
    const recording = new RecordingJourneyStarter();
    let startCalls = 0;
    let publishCalls = 0;
    let releaseFirstStart!: () => void;
    const firstStartReleased = new Promise<void>((resolve) => (releaseFirstStart = resolve));
    let firstStartEntered!: () => void;
    const firstStartReached = new Promise<void>((resolve) => (firstStartEntered = resolve));
    services.journeys = {
      async start(journey) {
        startCalls += 1;
        if (startCalls === 1) {
          firstStartEntered();
          await firstStartReleased;
        }
        return recording.start(journey);
      },
      stop: (name) => recording.stop(name),
    };
    services.publisher = { publishNotices: async () => void (publishCalls += 1) };

    const promoting = ingestEvent(services, lesson('eva', '2026-03-10T08:30:00Z'));
    await firstStartReached;
    // The promotion's flush is inside StartExecution; an event with no change arrives now.
    const during = await ingestEvent(services, userEvent('eva', 'page.viewed', '2026-03-10T08:40:00Z'));
    releaseFirstStart();
    const promoted = await promoting;

    expect(during.decision?.changed).toBe(false);
    expect(promoted.profile?.tier).toBe('member');
    expect(startCalls).toBe(1);
    expect(publishCalls).toBe(1);
    expect((await services.store.loadUser('eva', '2026-03-01')).profile?.outboxVersion).toBeUndefined();
  });

  it('a tier change made during a flush is flushed by the lease holder at once, without repeating what it did', async () => {
    const { services, store } = await setup();
    await ingestEvent(services, lesson('fay', '2026-03-10T08:00:00Z'));
    const published: string[] = [];
    const recording = new RecordingJourneyStarter();
    let startCalls = 0;
    let releaseFirstStart!: () => void;
    const firstStartReleased = new Promise<void>((resolve) => (releaseFirstStart = resolve));
    let firstStartEntered!: () => void;
    const firstStartReached = new Promise<void>((resolve) => (firstStartEntered = resolve));
    services.journeys = {
      async start(journey) {
        startCalls += 1;
        if (startCalls === 1) {
          firstStartEntered();
          await firstStartReleased;
        }
        return recording.start(journey);
      },
      stop: (name) => recording.stop(name),
    };
    services.publisher = { publishNotices: async (notices) => void published.push(...notices.map((n) => `${n.detailType}:${n.toTier}`)) };

    const toMember = ingestEvent(services, lesson('fay', '2026-03-10T08:30:00Z'));
    await firstStartReached;
    // While the member journey is being started, a payment promotes to core: it joins the outbox, under the lease.
    const toCore = await ingestEvent(services, userEvent('fay', 'order.paid', '2026-03-10T08:40:00Z', { amount: 120 }));
    expect(toCore.profile?.tier).toBe('core');
    expect(startCalls).toBe(1);
    releaseFirstStart();
    await toMember;

    expect([...recording.started.values()].map((journey) => journey.tier)).toEqual(['member', 'core']);
    expect(startCalls).toBe(2);
    expect(recording.stopped).toEqual([[...recording.started.keys()][0]]);
    expect(published.filter((notice) => notice.startsWith('TierChanged'))).toEqual(['TierChanged:member', 'TierChanged:core']);
    expect((await store.loadUser('fay', '2026-03-01')).profile?.outboxVersion).toBeUndefined();
  });

  it('a flush that fails for one user does not stop the review of the others in the shard (defect 8)', async () => {
    const { store, services, journeys, clock } = await setup();
    await store.setReviewCheckpoint('2026-03-10');
    const users = ['gil', 'hal', 'ivy', 'jon'].filter((userId) => reviewShard(userId, SHARDS) === reviewShard('gil', SHARDS));
    const others = ['kim', 'lea', 'max', 'ned', 'ola', 'pia', 'quy', 'rex'].filter(
      (userId) => reviewShard(userId, SHARDS) === reviewShard('gil', SHARDS),
    );
    const sameShard = [...users, ...others].slice(0, 2);
    expect(sameShard).toHaveLength(2);
    for (const userId of sameShard) {
      await ingestEvent(services, lesson(userId, '2026-03-10T08:00:00Z'));
      await ingestEvent(services, lesson(userId, '2026-03-10T08:30:00Z'));
    }
    // Both members are due when their lessons leave the 7-day window; the bus refuses the first GraceStarted.
    clock.set('2026-03-17T01:00:00.000Z');
    let failed = false;
    const publisher = services.publisher;
    services.publisher = {
      async publishNotices(notices) {
        if (!failed) {
          failed = true;
          throw new Error('EventBridge unavailable');
        }
        return publisher.publishNotices(notices);
      },
    };
    const stats = await runReview(services, SHARDS);

    expect(failed).toBe(true);
    expect(journeys.startedExecutions).toHaveLength(2);
    expect(stats.usersDue).toBe(2);
    expect(stats.transitions).toEqual({ 'grace-started': 2 });
    expect(await store.getReviewCheckpoint()).toBe('2026-03-17');
  });
});

describe('the nightly review over DynamoDB', () => {
  it('reads only the users due, and catches up two missed nights', async () => {
    const { store, services, clock, publisher } = await setup();
    let indexItemsRead = 0;
    services.store = {
      ...store,
      async listDueForReview(date, shard, cursor) {
        const page = await store.listDueForReview(date, shard, cursor);
        indexItemsRead += page.userIds.length;
        return page;
      },
    };
    // Members whose two lessons leave the 7-day window on the 17th, the 18th and the 20th; and visitors, who are
    // at the base tier with nothing pending and so are not in the index at all.
    const groups = { due17: ['a1', 'a2', 'a3'], due18: ['b1', 'b2'], due20: ['c1', 'c2'], visitors: ['v1', 'v2', 'v3', 'v4'] };
    const promote = async (userIds: string[], day: string) => {
      clock.set(`${day}T09:00:00.000Z`);
      for (const userId of userIds) {
        await ingestEvent(services, lesson(userId, `${day}T08:00:00Z`));
        await ingestEvent(services, lesson(userId, `${day}T08:30:00Z`));
      }
    };
    await promote(groups.due17, '2026-03-10');
    await promote(groups.due18, '2026-03-11');
    await promote(groups.due20, '2026-03-13');
    for (const userId of groups.visitors) await ingestEvent(services, lesson(userId, '2026-03-13T08:00:00Z'));
    for (const userId of groups.due17) expect((await store.loadUser(userId, '2026-03-01')).profile?.reviewAt).toBe('2026-03-17');

    // The job last completed the 16th; it did not run on the 17th, and now it is the 18th.
    await store.setReviewCheckpoint('2026-03-16');
    clock.set('2026-03-18T01:00:00.000Z');
    const noticesBefore = publisher.notices.size;
    const stats = await runReview(services, SHARDS);

    const due = [...groups.due17, ...groups.due18];
    expect(stats.dates).toEqual(['2026-03-17', '2026-03-18']);
    expect(stats.usersDue).toBe(due.length);
    expect(indexItemsRead).toBe(due.length);
    expect(stats.transitions).toEqual({ 'grace-started': due.length });
    expect(publisher.notices.size - noticesBefore).toBe(due.length);
    for (const userId of due)
      expect((await store.loadUser(userId, '2026-03-01')).profile).toMatchObject({
        tier: 'member',
        graceUntil: '2026-03-20',
        reviewAt: '2026-03-20',
      });
    for (const userId of groups.due20) expect((await store.loadUser(userId, '2026-03-01')).profile?.graceUntil).toBeUndefined();
    expect(await store.getReviewCheckpoint()).toBe('2026-03-18');
  });
});

describe('capacity per event, as DynamoDB reports it (deterministic on dynalite)', () => {
  /** A UUID-sized user id, like most producers send, since it is in every key. */
  const EVE = '5f0c2a8e-3b1d-4c7a-9e2f-8d6b4a1c0e37';

  /**
   * A month-old member: three events a day (two lessons and a page view) for the last 20 days, and a
   * questionnaire answer on the profile.
   */
  async function memberWithTwentyDaysOfHistory() {
    const context = await setup('2026-03-20T12:00:00.000Z');
    const { services } = context;
    await ingestEvent(services, userEvent(EVE, 'questionnaire.answered', '2026-03-01T08:00:00Z', { goal: 'career-change' }));
    for (let day = 19; day >= 0; day--) {
      const date = addDays('2026-03-20', -day);
      await ingestEvent(services, lesson(EVE, `${date}T07:00:00Z`));
      await ingestEvent(services, lesson(EVE, `${date}T07:30:00Z`));
      await ingestEvent(services, userEvent(EVE, 'page.viewed', `${date}T08:00:00Z`));
    }
    const { profile, buckets } = await context.store.loadUser(EVE, '2026-02-19');
    expect(profile?.tier).toBe('member');
    expect(buckets).toHaveLength(20);
    context.capacity.clear();
    return context;
  }

  it('an event that changes no tier costs 1 write unit and 1 read unit (targets: ≤ 1 and ≤ 2)', async () => {
    const { services, capacity } = await memberWithTwentyDaysOfHistory();

    const result = await ingestEvent(services, lesson(EVE, '2026-03-20T11:00:00Z'));

    expect(result.decision?.changed).toBe(false);
    expect(capacity.records.map((r) => r.operation)).toEqual(['recordEvent', 'loadUser']);
    const total = capacity.total();
    expect(total).toEqual({
      read: 1,
      write: 1,
      byOperation: { recordEvent: { read: 0, write: 1 }, loadUser: { read: 1, write: 0 } },
    });
    expect(total.write).toBeLessThanOrEqual(1);
    expect(total.read).toBeLessThanOrEqual(2);
  });

  it('a redelivered event costs the same read and no reported write', async () => {
    const { services, capacity } = await memberWithTwentyDaysOfHistory();
    const event = lesson(EVE, '2026-03-20T11:00:00Z');
    await ingestEvent(services, event);
    capacity.clear();

    expect((await ingestEvent(services, event)).duplicate).toBe(true);
    // DynamoDB charges a failed conditional write but reports no ConsumedCapacity for it. It returns the item that
    // failed the condition with the error; dynalite does not, so the store reads it back: one more read unit, on
    // the duplicate path only.
    expect(capacity.total()).toMatchObject({ read: 2, write: 0 });
  });

  it('an event that changes the tier also writes the history entry, the profile and the cleared outbox: 4 write units (target ≤ 4)', async () => {
    const { services, capacity, journeys } = await memberWithTwentyDaysOfHistory();

    const result = await ingestEvent(services, userEvent(EVE, 'order.paid', '2026-03-20T11:00:00Z', { amount: 120 }));

    expect(result.decision?.tierChanged).toBe(true);
    expect(result.profile?.tier).toBe('core');
    expect(journeys.startedExecutions).toEqual([expect.stringMatching(/^member-/), result.profile?.journey?.executionName]);
    // The history entry (with the explanation, compressed) is written first, so the profile's outbox stays small:
    // under 1 KB when written and when cleared (an update is charged for the larger of the old and new item).
    expect(capacity.records.map((r) => r.operation)).toEqual(['recordEvent', 'loadUser', 'appendHistory', 'saveProfile', 'clearOutbox']);
    expect(capacity.total()).toEqual({
      read: 1,
      write: 4,
      byOperation: {
        recordEvent: { read: 0, write: 1 },
        loadUser: { read: 1, write: 0 },
        appendHistory: { read: 0, write: 1 },
        saveProfile: { read: 0, write: 1 },
        clearOutbox: { read: 0, write: 1 },
      },
    });
    const [entry] = await services.store.listHistory(EVE, 1);
    expect(entry).toMatchObject({ fromTier: 'member', toTier: 'core', explanation: { toTier: 'core' } });
  });
});
