import { type DynamoDBClient, GetItemCommand, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { type DynamoTierStore, REVIEW_PAGE_SIZE, StoreError, createDynamoTierStore, isTransientError } from '../../functions/aws/dynamo-store.js';
import { PROFILE_KEY, TABLE_KEYS, dayKey, userKey } from '../../functions/aws/table-schema.js';
import { userRef } from '../../functions/core/hash.js';
import type { DayIncrement } from '../../functions/core/metrics.js';
import { reviewShard } from '../../functions/core/review.js';
import type { HistoryEntry, UserProfile } from '../../functions/core/state.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();

const increment = (overrides: Partial<DayIncrement> = {}): DayIncrement => ({
  date: '2026-03-10',
  counters: { n_visits: 1 },
  signals: [],
  ...overrides,
});

const profileOf = (userId: string, overrides: Partial<UserProfile> = {}): UserProfile => ({
  userId,
  tier: 'member',
  tierSince: '2026-03-01T08:00:00.000Z',
  tierEnteredBy: 'promotion',
  version: 0,
  attributes: {},
  ...overrides,
});

async function rawItem(tableName: string, pk: string, sk: string) {
  const { Item } = await dynalite.client.send(
    new GetItemCommand({ TableName: tableName, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }),
  );
  return Item;
}

async function allDue(store: DynamoTierStore, date: string, shard: number): Promise<{ userIds: string[]; pages: number }> {
  const userIds: string[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await store.listDueForReview(date, shard, cursor);
    pages += 1;
    userIds.push(...page.userIds);
    cursor = page.cursor;
  } while (cursor);
  return { userIds, pages };
}

describe('recordEvent', () => {
  it('applies an event once: a duplicate reports duplicate and changes nothing', async () => {
    const { store } = await dynalite.freshStore();
    const event = increment({ counters: { n_visits: 1, s_amount: 19.9 }, signals: ['opened@1773100800'] });

    expect(await store.recordEvent('alice', 'k1', event)).toEqual({ duplicate: false });
    expect(await store.recordEvent('alice', 'k1', event)).toEqual({ duplicate: true });
    expect(await store.recordEvent('alice', 'k1', increment({ counters: { n_visits: 5 } }))).toEqual({ duplicate: true });

    const { buckets } = await store.loadUser('alice', '2026-03-01');
    expect(buckets).toEqual([{ date: '2026-03-10', counters: { n_visits: 1, s_amount: 19.9 }, signals: ['opened@1773100800'] }]);
  });

  // A light day holding all 60 keys; a heavy day under the same load is in heavy-days.test.ts.
  it('sums at least 50 concurrent events for one user exactly, and applies each concurrent duplicate once', async () => {
    const { store } = await dynalite.freshStore({ lightDayEvents: 100 });
    const amounts = Array.from({ length: 60 }, (_, i) => 0.1 + i * 1.01);
    const deliveries = amounts.flatMap((amount, i) => {
      const event = increment({ counters: { n_orders: 1, s_amount: amount }, signals: [`paid@${1773100800 + i}`] });
      // Every fifth event is delivered twice at the same time.
      return i % 5 === 0
        ? [store.recordEvent('bob', `k${i}`, event), store.recordEvent('bob', `k${i}`, event)]
        : [store.recordEvent('bob', `k${i}`, event)];
    });
    const results = await Promise.all(deliveries);

    expect(results.filter((r) => !r.duplicate)).toHaveLength(60);
    expect(results.filter((r) => r.duplicate)).toHaveLength(12);
    const { buckets } = await store.loadUser('bob', '2026-03-10');
    expect(buckets).toHaveLength(1);
    expect(buckets[0]!.counters['n_orders']).toBe(60);
    // DynamoDB adds decimals exactly, unlike the float sum below, so compare in cents.
    expect(Math.round(buckets[0]!.counters['s_amount']! * 100)).toBe(Math.round(amounts.reduce((a, b) => a + b, 0) * 100));
    expect(buckets[0]!.signals).toHaveLength(60);
  });

  it('stores the counters under their short names, the event keys as a set and a TTL of the retention after local midnight', async () => {
    const { store, tableName } = await dynalite.freshStore({ timeZone: 'Asia/Shanghai', retentionDays: 400 });
    await store.recordEvent('carol', 'k1', increment({ date: '2026-01-10', counters: { n_ab12cd34: 1 } }));
    const item = await rawItem(tableName, userKey('carol'), dayKey('2026-01-10'));
    expect(item).toEqual({
      pk: { S: 'USER#carol' },
      sk: { S: 'DAY#2026-01-10' },
      // A generated counter id (`n_` and 8 hash characters) is stored as its 8 characters.
      ab12cd34: { N: '1' },
      ids: { SS: ['k1'] },
      // 2026-01-10 + 400 days = 2027-02-14, from midnight in Shanghai.
      expiresAt: { N: String(Date.parse('2027-02-14T00:00:00+08:00') / 1000) },
    });
  });

  it('expires at local midnight across a daylight-saving change', async () => {
    const { store, tableName } = await dynalite.freshStore({ timeZone: 'America/New_York', retentionDays: 30 });
    // 2026-02-20 is winter time (-05:00); 30 days later, 2026-03-22, is summer time (-04:00).
    await store.recordEvent('dave', 'k1', increment({ date: '2026-02-20' }));
    const item = await rawItem(tableName, userKey('dave'), dayKey('2026-02-20'));
    expect(item?.[TABLE_KEYS.timeToLiveAttribute]).toEqual({ N: String(Date.parse('2026-03-22T00:00:00-04:00') / 1000) });
  });
});

describe('loadUser', () => {
  it("reads the window's day items and the profile in one query, never older days or history", async () => {
    const { store, capacity } = await dynalite.freshStore();
    for (const date of ['2026-02-27', '2026-03-01', '2026-03-05', '2026-03-20']) {
      await store.recordEvent('erin', `k-${date}`, increment({ date, counters: { n_visits: 2 } }));
    }
    await store.recordSend('erin', '2026-03-05', 'send-1');
    await store.saveProfile(profileOf('erin'), 0);
    await store.appendHistory({
      userId: 'erin',
      at: '2026-03-01T08:00:00.000Z',
      version: 1,
      fromTier: 'visitor',
      toTier: 'member',
      explanation: {} as HistoryEntry['explanation'],
    });
    capacity.clear();

    const { profile, buckets } = await store.loadUser('erin', '2026-03-01');

    expect(capacity.records.map((r) => r.operation)).toEqual(['loadUser']);
    expect(buckets).toEqual([
      { date: '2026-03-01', counters: { n_visits: 2 } },
      { date: '2026-03-05', counters: { n_visits: 2 }, sends: 1 },
      // A future-dated event is in its own day's bucket; the core decides when it counts.
      { date: '2026-03-20', counters: { n_visits: 2 } },
    ]);
    expect(profile).toEqual({ ...profileOf('erin'), version: 1 });
  });

  it('returns no profile and no buckets for an unknown user', async () => {
    const { store } = await dynalite.freshStore();
    expect(await store.loadUser('nobody', '2026-01-01')).toEqual({ buckets: [], copies: { lightKeys: {}, heavyDates: [] } });
  });
});

describe('saveProfile', () => {
  it('writes version expectedVersion + 1 and refuses a stale version or a second first write', async () => {
    const { store } = await dynalite.freshStore();
    expect(await store.saveProfile(profileOf('frank'), 0)).toBe(true);
    expect(await store.saveProfile(profileOf('frank', { tier: 'core' }), 0)).toBe(false);

    const [first, second] = await Promise.all([
      store.saveProfile(profileOf('frank', { tier: 'active', version: 1 }), 1),
      store.saveProfile(profileOf('frank', { tier: 'core', version: 1 }), 1),
    ]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    const winner = first ? 'active' : 'core';

    const { profile } = await store.loadUser('frank', '2026-01-01');
    expect(profile).toMatchObject({ tier: winner, version: 2 });
    expect(await store.saveProfile(profileOf('frank', { tier: 'visitor' }), 1)).toBe(false);
    expect((await store.loadUser('frank', '2026-01-01')).profile?.tier).toBe(winner);
  });

  it('round-trips every nested part of the profile', async () => {
    const { store } = await dynalite.freshStore();
    const profile = profileOf('grace', {
      graceUntil: '2026-03-20',
      lock: { tier: 'core', until: '2026-04-01', reason: 'partner' },
      reviewAt: '2026-03-20',
      attributes: {
        goal: { value: 'career-change', at: '2026-03-01T08:00:00Z', eventId: 'e1' },
        interests: { value: ['ai', 'pm'], at: '2026-03-01T08:00:00Z', eventId: 'e1' },
        daysSinceSignup: { value: null, at: '2026-02-01T08:00:00Z', eventId: 'e0' },
        paid: { value: true, at: '2026-03-01T08:00:00Z', eventId: 'e2' },
      },
      optedOutAt: '2026-03-02T08:00:00Z',
      journey: { executionName: 'member-abc', tier: 'member', startedAt: '2026-03-01T08:00:00.000Z' },
      pendingJourney: { start: { executionName: 'member-abc', tier: 'member', startedAt: '2026-03-01T08:00:00.000Z' }, stopExecutionNames: [] },
      pendingNotices: [
        {
          noticeId: 'n1',
          detailType: 'TierChanged',
          userRef: userRef('grace'),
          userId: 'grace',
          kind: 'promoted',
          fromTier: 'visitor',
          toTier: 'member',
          at: '2026-03-01T08:00:00.000Z',
          rulesetVersion: 'abc',
        },
      ],
      outboxVersion: 1,
      outboxRetryAt: '2026-03-02',
    });
    await store.saveProfile(profile, 0);
    expect((await store.loadUser('grace', '2026-03-01')).profile).toEqual({ ...profile, version: 1 });
  });
});

describe('the review index', () => {
  it('lists a profile under its review date and shard only, and never one without a review date', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 4 });
    await store.saveProfile(profileOf('hana', { reviewAt: '2026-03-20' }), 0);
    await store.saveProfile(profileOf('ivan'), 0);
    const shard = reviewShard('hana', 4);

    expect(await store.listDueForReview('2026-03-20', shard)).toEqual({ userIds: ['hana'] });
    for (const other of [0, 1, 2, 3].filter((s) => s !== shard)) expect((await store.listDueForReview('2026-03-20', other)).userIds).toEqual([]);
    expect((await store.listDueForReview('2026-03-21', shard)).userIds).toEqual([]);
    expect((await store.listDueForReview('2026-03-19', reviewShard('ivan', 4))).userIds).toEqual([]);
  });

  it('moves a profile to the review date on the next write and drops it when the date goes away', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 1 });
    await store.saveProfile(profileOf('jun', { reviewAt: '2026-03-20' }), 0);
    await store.saveProfile(profileOf('jun', { reviewAt: '2026-03-25' }), 1);
    expect((await store.listDueForReview('2026-03-20', 0)).userIds).toEqual([]);
    expect((await store.listDueForReview('2026-03-25', 0)).userIds).toEqual(['jun']);
    await store.saveProfile(profileOf('jun'), 2);
    expect((await store.listDueForReview('2026-03-25', 0)).userIds).toEqual([]);
  });

  it('pages 1,200 users of one shard 500 at a time', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 1 });
    const userIds = Array.from({ length: 1200 }, (_, i) => `user-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < userIds.length; i += 100) {
      await Promise.all(userIds.slice(i, i + 100).map((id) => store.saveProfile(profileOf(id, { reviewAt: '2026-03-20' }), 0)));
    }
    const pageSizes: number[] = [];
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listDueForReview('2026-03-20', 0, cursor);
      pageSizes.push(page.userIds.length);
      seen.push(...page.userIds);
      cursor = page.cursor;
    } while (cursor);

    expect(REVIEW_PAGE_SIZE).toBe(500);
    expect(pageSizes).toEqual([500, 500, 200]);
    expect(seen.sort()).toEqual(userIds);
  }, 120_000);

  it('refuses a cursor it did not issue for that partition', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 1 });
    await expect(store.listDueForReview('2026-03-20', 0, 'not-a-cursor')).rejects.toBeInstanceOf(StoreError);
    const foreign = Buffer.from(JSON.stringify({ reviewPk: { S: 'REVIEW#2026-03-21#0' }, pk: { S: 'USER#x' }, sk: { S: 'PROFILE' } })).toString(
      'base64url',
    );
    await expect(store.listDueForReview('2026-03-20', 0, foreign)).rejects.toThrow(/does not belong to REVIEW#2026-03-20#0/);
  });

  it('lists a waiting outbox under its retry night, and clearOutbox moves it back to the review date', async () => {
    const { store, tableName } = await dynalite.freshStore({ shardCount: 1 });
    const withOutbox = profileOf('kai', {
      reviewAt: '2026-03-20',
      pendingJourney: {
        start: { executionName: 'member-x', tier: 'member', startedAt: '2026-03-01T08:00:00.000Z' },
        stopExecutionNames: ['visitor-y'],
      },
      pendingNotices: [],
      outboxVersion: 1,
      outboxRetryAt: '2026-03-02',
    });
    await store.saveProfile(withOutbox, 0);
    expect((await allDue(store, '2026-03-02', 0)).userIds).toEqual(['kai']);

    await store.clearOutbox({ ...withOutbox, version: 1 });

    expect((await allDue(store, '2026-03-02', 0)).userIds).toEqual([]);
    expect((await allDue(store, '2026-03-20', 0)).userIds).toEqual(['kai']);
    const item = await rawItem(tableName, userKey('kai'), PROFILE_KEY);
    expect(Object.keys(item ?? {}).sort()).toEqual([
      'attributes',
      'outboxClears',
      'pk',
      'reviewAt',
      'reviewPk',
      'sk',
      'tier',
      'tierEnteredBy',
      'tierSince',
      'version',
    ]);
  });

  it('clearOutbox takes a user with no review date out of the index', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 1 });
    const withOutbox = profileOf('lea', { outboxVersion: 1, outboxRetryAt: '2026-03-02', pendingNotices: [] });
    await store.saveProfile(withOutbox, 0);
    await store.clearOutbox({ ...withOutbox, version: 1 });
    expect((await allDue(store, '2026-03-02', 0)).userIds).toEqual([]);
    // The clear counts itself, so that a writer that read the outbox before it cannot write it back.
    expect((await store.loadUser('lea', '2026-03-01')).profile).toEqual({ ...profileOf('lea'), version: 1, outboxClears: 1 });
  });

  it('clearOutbox does nothing when a newer decision has added to the outbox', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 1 });
    const older = profileOf('max', { reviewAt: '2026-03-20', outboxVersion: 1, outboxRetryAt: '2026-03-02', pendingNotices: [] });
    await store.saveProfile(older, 0);
    const newer = { ...older, tier: 'core', outboxVersion: 2, outboxRetryAt: '2026-03-03' };
    await store.saveProfile(newer, 1);

    await store.clearOutbox({ ...older, version: 1 });

    expect((await store.loadUser('max', '2026-03-01')).profile).toEqual({ ...newer, version: 2 });
    expect((await allDue(store, '2026-03-03', 0)).userIds).toEqual(['max']);
  });

  it('clearOutbox does nothing when a later write moved the review date, so the index never goes stale', async () => {
    const { store } = await dynalite.freshStore({ shardCount: 1 });
    const older = profileOf('noa', { reviewAt: '2026-03-20', outboxVersion: 1, outboxRetryAt: '2026-03-02', pendingNotices: [] });
    await store.saveProfile(older, 0);
    // An attribute change re-decides without adding to the outbox, and carries it forward with a new review date.
    const later = { ...older, reviewAt: '2026-03-10' };
    await store.saveProfile(later, 1);

    await store.clearOutbox({ ...older, version: 1 });
    expect((await store.loadUser('noa', '2026-03-01')).profile).toEqual({ ...later, version: 2 });

    await store.clearOutbox({ ...later, version: 2 });
    expect((await allDue(store, '2026-03-10', 0)).userIds).toEqual(['noa']);
    expect((await store.loadUser('noa', '2026-03-01')).profile?.outboxVersion).toBeUndefined();
  });
});

describe('the review checkpoint', () => {
  it('starts empty and only moves forward', async () => {
    const { store } = await dynalite.freshStore();
    expect(await store.getReviewCheckpoint()).toBeUndefined();
    await store.setReviewCheckpoint('2026-03-05');
    await store.setReviewCheckpoint('2026-03-03');
    expect(await store.getReviewCheckpoint()).toBe('2026-03-05');
    await store.setReviewCheckpoint('2026-03-06');
    expect(await store.getReviewCheckpoint()).toBe('2026-03-06');
  });
});

describe('history', () => {
  const entry = (version: number): HistoryEntry => ({
    userId: 'olga',
    at: `2026-03-0${version}T08:00:00.000Z`,
    version,
    fromTier: 'visitor',
    toTier: 'member',
    explanation: {
      at: `2026-03-0${version}T08:00:00.000Z`,
      rulesetVersion: 'abc123',
      trigger: 'event',
      eventId: `e${version}`,
      fromTier: 'visitor',
      toTier: 'member',
      qualifiedTier: 'member',
      transitions: [{ kind: 'promoted', fromTier: 'visitor', toTier: 'member' }],
      facts: { visits7: 3, goal: null, interests: ['ai'] },
      rules: [
        {
          tier: 'member',
          rule: 'regular',
          passed: true,
          conditions: { all: [{ fact: 'visits7', operator: 'greaterThanInclusive', value: 2, factValue: 3, result: true }], result: true },
        },
      ],
    },
  });

  it('keeps one copy of an entry written twice and lists newest first', async () => {
    const { store } = await dynalite.freshStore();
    for (const version of [1, 2, 2, 3]) await store.appendHistory(entry(version));
    expect(await store.listHistory('olga', 10)).toEqual([entry(3), entry(2), entry(1)]);
    expect(await store.listHistory('olga', 2)).toEqual([entry(3), entry(2)]);
    expect(await store.listHistory('olga', 0)).toEqual([]);
  });
});

describe('the journey side', () => {
  it('records a send once per send id, on the day item, apart from the metric counters', async () => {
    const { store } = await dynalite.freshStore();
    await store.recordEvent('pia', 'k1', increment({ date: '2026-03-10' }));
    expect(await store.recordSend('pia', '2026-03-10', 'exec-1/welcome')).toBe(true);
    expect(await store.recordSend('pia', '2026-03-10', 'exec-1/welcome')).toBe(false);
    expect(await store.recordSend('pia', '2026-03-10', 'exec-1/offer')).toBe(true);
    await store.saveProfile(profileOf('pia'), 0);

    expect(await store.loadUserForJourney('pia', '2026-03-01')).toEqual({
      profile: { ...profileOf('pia'), version: 1 },
      buckets: [{ date: '2026-03-10', counters: { n_visits: 1 }, sends: 2 }],
    });
  });
});

describe('errors', () => {
  it('wraps a failure that retrying cannot fix in a StoreError naming the operation, never the user id', async () => {
    const store = createDynamoTierStore({ client: dynalite.client, tableName: 'no-such-table', shardCount: 1 });
    const failure = await store.recordEvent('quinn@example.com', 'k1', increment()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).operation).toBe('recordEvent');
    expect((failure as StoreError).message).toContain('DynamoStore: recordEvent: failed for ' + userRef('quinn@example.com'));
    expect((failure as StoreError).message).not.toContain('quinn');
    expect((failure as StoreError).cause).toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('lets throttling through unchanged so that the caller retries', async () => {
    const throttled = new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
    const client = { send: () => Promise.reject(throttled) } as unknown as DynamoDBClient;
    const store = createDynamoTierStore({ client, tableName: 'strata', shardCount: 1 });
    await expect(store.recordEvent('rui', 'k1', increment())).rejects.toBe(throttled);
    await expect(store.loadUser('rui', '2026-03-01')).rejects.toBe(throttled);
    expect(isTransientError(throttled)).toBe(true);
    expect(isTransientError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransientError(Object.assign(new Error('bad'), { name: 'ValidationException', $fault: 'client' }))).toBe(false);
  });
});
