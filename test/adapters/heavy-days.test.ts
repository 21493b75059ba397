/**
 * Heavy days on dynalite: a user with many events in one day keeps every item small and every event's cost bounded,
 * and the guard stays exact by event id whatever the day, under redelivery, concurrency and a crash between any two
 * of the store's writes (no transactions: dynalite has none). The protocol is described in dynamo-store.ts.
 */
import { type DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { type DynamoTierStore, createDynamoTierStore, itemSizeBytes, tableItemLayout } from '../../functions/aws/dynamo-store.js';
import { importedDays } from '../../functions/core/import-plan.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';
import { seenKey } from '../../functions/aws/table-schema.js';
import type { DayIncrement } from '../../functions/core/metrics.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { earlierLayoutItem } from '../helpers/earlier-day-layout.js';
import { type FaultRule, SimulatedCrash, withClientFaults } from '../helpers/fault-injection.js';

const dynalite = useDynalite();
const USER = '5f0c2a8e-3b1d-4c7a-9e2f-8d6b4a1c0e37';

const increment = (date: string, amount = 1): DayIncrement => ({ date, counters: { n_events: 1, s_amount: amount }, signals: [] });

async function tableItems(tableName: string) {
  const { Items = [] } = await dynalite.client.send(new ScanCommand({ TableName: tableName }));
  return Items;
}

async function countersOn(store: DynamoTierStore, date: string): Promise<Record<string, number>> {
  const { buckets } = await store.loadUser(USER, date);
  return buckets.find((bucket) => bucket.date === date)?.counters ?? {};
}

/** A store on `tableName` whose DynamoDB client crashes as the rules say: a new "process" after each crash. */
function crashingStore(tableName: string, rules: FaultRule[], options: { lightDayEvents?: number } = {}) {
  const client = withClientFaults(dynalite.client, rules);
  return createDynamoTierStore({ client: client as DynamoDBClient, tableName, shardCount: 4, ...options });
}

interface WriteInput {
  Key?: Record<string, { S?: string }>;
  Item?: Record<string, { S?: string }>;
  UpdateExpression?: string;
  ConditionExpression?: string;
}
const inputOf = (args: unknown[]): WriteInput => (args[0] as { input: WriteInput }).input;
const sortKeyOf = (input: WriteInput): string => (input.Key ?? input.Item)?.['sk']?.S ?? '';

/** The store's writes, told apart by what they write (see dynamo-store.ts). */
const W1 =
  (date = '') =>
  (args: unknown[]) =>
    sortKeyOf(inputOf(args)).startsWith(`DAY#${date}`) && (inputOf(args).UpdateExpression ?? '').includes('#p = :token');
const W2 = (args: unknown[]) => sortKeyOf(inputOf(args)).startsWith('SEEN#');
const UNDO = (args: unknown[]) => (inputOf(args).ConditionExpression ?? '').startsWith('#p = :token');
const TURN_HEAVY = (args: unknown[]) => inputOf(args).UpdateExpression === 'REMOVE #ids SET #hv = :true';

/** What the caller of a killed process sees: the store wraps the crash as it would any non-retryable failure. */
async function expectCrash(request: Promise<unknown>): Promise<void> {
  await expect(request).rejects.toMatchObject({ cause: expect.any(SimulatedCrash) });
}

describe('a heavy day', () => {
  // bench/capacity.ts measures a full 1,000-event day (capacity.heavyUser); this is the same bound, quicker.
  it('400 events in one day: each applied once, ≤ 2 WRU per event at p99, a window read ≤ 4 RRU, no item over 64 KB', async () => {
    const { store, tableName, capacity } = await dynalite.freshStore();
    const perEvent: number[] = [];
    for (let i = 0; i < 400; i++) {
      capacity.clear();
      expect(await store.recordEvent(USER, `k${i}`, increment('2026-03-10', i % 7))).toEqual({ duplicate: false });
      perEvent.push(capacity.total().write);
    }
    perEvent.sort((a, b) => a - b);
    const p99 = perEvent[Math.ceil(0.99 * perEvent.length) - 1]!;
    expect(p99).toBeLessThanOrEqual(2);
    expect(perEvent[199]).toBe(2);

    capacity.clear();
    const counters = await countersOn(store, '2026-03-10');
    expect(capacity.total().read).toBeLessThanOrEqual(4);
    expect(counters).toEqual({ n_events: 400, s_amount: Array.from({ length: 400 }, (_, i) => i % 7).reduce((a, b) => a + b, 0) });

    const sizes = (await tableItems(tableName)).map(itemSizeBytes);
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    // The day item does not grow with the day: a few pending keys at most, whatever the volume.
    const dayItem = (await tableItems(tableName)).find((item) => item['sk']?.S === 'DAY#2026-03-10')!;
    expect(itemSizeBytes(dayItem)).toBeLessThan(1024);
  });

  it('redelivering every event of a heavy day changes nothing', async () => {
    const { store, tableName } = await dynalite.freshStore({ lightDayEvents: 4 });
    for (let i = 0; i < 40; i++) await store.recordEvent(USER, `k${i}`, increment('2026-03-10'));
    const before = await countersOn(store, '2026-03-10');
    // A redelivery usually reaches another container, with nothing cached: a second store on the same table.
    const other = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 4, lightDayEvents: 4 });
    for (let i = 0; i < 40; i++) expect(await other.recordEvent(USER, `k${i}`, increment('2026-03-10'))).toMatchObject({ duplicate: true });
    for (let i = 0; i < 40; i += 7) expect(await store.recordEvent(USER, `k${i}`, increment('2026-03-10'))).toMatchObject({ duplicate: true });
    expect(await countersOn(store, '2026-03-10')).toEqual(before);
    expect(before['n_events']).toBe(40);
  });

  it('concurrent deliveries, each event up to three times at once, apply each event once', async () => {
    const { store } = await dynalite.freshStore({ lightDayEvents: 4 });
    const deliveries = Array.from({ length: 90 }, (_, i) => store.recordEvent(USER, `k${i % 30}`, increment('2026-03-10', i % 30)));
    const results = await Promise.all(deliveries);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(30);
    expect(await countersOn(store, '2026-03-10')).toEqual({
      n_events: 30,
      s_amount: Array.from({ length: 30 }, (_, i) => i).reduce((a, b) => a + b, 0),
    });
  });
});

describe('the guard by event id, whatever the day', () => {
  it('a producer resend with another date is applied once when either day is heavy', async () => {
    const { store } = await dynalite.freshStore({ lightDayEvents: 2 });
    for (const date of ['2026-03-10', '2026-03-11']) for (let i = 0; i < 3; i++) await store.recordEvent(USER, `${date}-${i}`, increment(date));
    expect(await store.recordEvent(USER, 'resent', increment('2026-03-10'))).toEqual({ duplicate: false });

    expect(await store.recordEvent(USER, 'resent', increment('2026-03-11'))).toEqual({ duplicate: true, appliedOn: '2026-03-10' });

    expect((await countersOn(store, '2026-03-10'))['n_events']).toBe(4);
    expect((await countersOn(store, '2026-03-11'))['n_events']).toBe(3);
  });

  it('with lightDayEvents 0 every event is guarded across days, at 2 WRU', async () => {
    const { store, capacity } = await dynalite.freshStore({ lightDayEvents: 0 });
    capacity.clear();
    expect(await store.recordEvent(USER, 'e1', increment('2026-03-10'))).toEqual({ duplicate: false });
    expect(capacity.total().write).toBe(2);
    expect(await store.recordEvent(USER, 'e1', increment('2026-02-01'))).toEqual({ duplicate: true, appliedOn: '2026-03-10' });
    expect(await store.recordEvent(USER, 'e1', increment('2026-03-10'))).toEqual({ duplicate: true, appliedOn: '2026-03-10' });
    expect((await countersOn(store, '2026-03-10'))['n_events']).toBe(1);
    // The resend never touched the 1st of February: the guard was read before any counter moved.
    expect(await countersOn(store, '2026-02-01')).toEqual({});
  });

  it('an event applied while its day was light is still a duplicate after the day turned heavy', async () => {
    const { store, tableName } = await dynalite.freshStore({ lightDayEvents: 3 });
    for (let i = 0; i < 3; i++) await store.recordEvent(USER, `light-${i}`, increment('2026-03-10'));
    await store.recordEvent(USER, 'turns-heavy', increment('2026-03-10'));
    const items = await tableItems(tableName);
    expect(
      items
        .filter((item) => item['sk']?.S?.startsWith('SEEN#'))
        .map((item) => item['sk']?.S)
        .sort(),
    ).toEqual(['light-0', 'light-1', 'light-2', 'turns-heavy'].map(seenKey).sort());
    expect(items.find((item) => item['sk']?.S === 'DAY#2026-03-10')?.['ids']).toBeUndefined();

    for (let i = 0; i < 3; i++) expect(await store.recordEvent(USER, `light-${i}`, increment('2026-03-10'))).toMatchObject({ duplicate: true });
    expect((await countersOn(store, '2026-03-10'))['n_events']).toBe(4);
  });
});

describe("a crash between the store's writes, then the redelivery", () => {
  /** A heavy day with `events` events already applied, on a table of its own. */
  async function heavyDay(events = 3) {
    const { store, tableName } = await dynalite.freshStore({ lightDayEvents: 2 });
    for (let i = 0; i < events; i++) await store.recordEvent(USER, `seed-${i}`, increment('2026-03-10'));
    return { store, tableName };
  }

  const cases: Array<{ name: string; rules: FaultRule[]; redeliveryIsDuplicate: boolean }> = [
    { name: 'before W1', rules: [{ operation: 'UpdateItemCommand', call: 1, when: 'before', match: W1() }], redeliveryIsDuplicate: false },
    {
      name: 'after W1 (counters applied), before W2 (the guard)',
      rules: [{ operation: 'UpdateItemCommand', call: 1, when: 'after', match: W1() }],
      redeliveryIsDuplicate: true,
    },
    { name: 'after W2, before the reply', rules: [{ operation: 'PutItemCommand', call: 1, when: 'after', match: W2 }], redeliveryIsDuplicate: true },
  ];
  for (const { name, rules, redeliveryIsDuplicate } of cases) {
    it(`${name}: the event counts once`, async () => {
      const { store, tableName } = await heavyDay();
      const crashing = crashingStore(tableName, rules, { lightDayEvents: 2 });
      await expectCrash(crashing.recordEvent(USER, 'victim', increment('2026-03-10', 5)));

      expect((await store.recordEvent(USER, 'victim', increment('2026-03-10', 5))).duplicate).toBe(redeliveryIsDuplicate);
      expect(await store.recordEvent(USER, 'victim', increment('2026-03-10', 5))).toMatchObject({ duplicate: true });

      expect(await countersOn(store, '2026-03-10')).toEqual({ n_events: 4, s_amount: 8 });
    });
  }

  it('an original and its resend in flight together, both crashing after W1, then the resend crashing before its undo: counts once', async () => {
    const { store, tableName } = await heavyDay();
    await heavyDayOn(store, '2026-03-11');
    const crashAfterW1 = (date: string) =>
      crashingStore(tableName, [{ operation: 'UpdateItemCommand', call: 1, when: 'after', match: W1(date) }], { lightDayEvents: 2 });

    // Neither has a guard yet when the other reads: both pass R, both apply W1, both die.
    await expectCrash(crashAfterW1('2026-03-10').recordEvent(USER, 'resent', increment('2026-03-10', 5)));
    await expectCrash(crashAfterW1('2026-03-11').recordEvent(USER, 'resent', increment('2026-03-11', 5)));
    // The original's redelivery adopts its W1 and takes the guard.
    expect(await store.recordEvent(USER, 'resent', increment('2026-03-10', 5))).toMatchObject({ duplicate: true });
    // The resend's redelivery finds the guard and dies before it can take its copy out of the 11th.
    const beforeUndo = crashingStore(tableName, [{ operation: 'UpdateItemCommand', call: 1, when: 'before', match: UNDO }], { lightDayEvents: 2 });
    await expectCrash(beforeUndo.recordEvent(USER, 'resent', increment('2026-03-11', 5)));
    expect((await countersOn(store, '2026-03-11'))['n_events']).toBe(4);

    expect(await store.recordEvent(USER, 'resent', increment('2026-03-11', 5))).toEqual({ duplicate: true, appliedOn: '2026-03-10' });
    expect(await store.recordEvent(USER, 'resent', increment('2026-03-11', 5))).toEqual({ duplicate: true, appliedOn: '2026-03-10' });
    expect(await countersOn(store, '2026-03-10')).toEqual({ n_events: 4, s_amount: 8 });
    expect(await countersOn(store, '2026-03-11')).toEqual({ n_events: 3, s_amount: 3 });
  });

  it('a crash while a day turns heavy leaves nothing to count twice', async () => {
    const { store, tableName } = await dynalite.freshStore({ lightDayEvents: 3 });
    for (let i = 0; i < 3; i++) await store.recordEvent(USER, `light-${i}`, increment('2026-03-10'));
    // The keys got their guards; the process dies before they leave the day item.
    const crashing = crashingStore(tableName, [{ operation: 'UpdateItemCommand', call: 1, when: 'before', match: TURN_HEAVY }], {
      lightDayEvents: 3,
    });
    await expectCrash(crashing.recordEvent(USER, 'turns-heavy', increment('2026-03-10')));

    const fresh = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 4, lightDayEvents: 3 });
    expect(await fresh.recordEvent(USER, 'turns-heavy', increment('2026-03-10'))).toEqual({ duplicate: false });
    for (let i = 0; i < 3; i++) expect(await fresh.recordEvent(USER, `light-${i}`, increment('2026-03-10'))).toMatchObject({ duplicate: true });
    expect((await countersOn(store, '2026-03-10'))['n_events']).toBe(4);
  });
});

describe("a heavy day's stored form", () => {
  /** 60 events of one day with two filters' signals spread over it, some exactly on the hour, and a light day. */
  function signalIncrements(date: string, zone: string): DayIncrement[] {
    const midnight = Date.parse(`${date}T00:00:00Z`) / 1000;
    const offset = zone === 'Asia/Kolkata' ? -19_800 : 0;
    const events: DayIncrement[] = Array.from({ length: 60 }, (_, i) => {
      const at = midnight + offset + 1 + i * 1_409 + (i % 3 === 0 ? 0 : 17);
      const signals = i % 4 === 0 ? [`sOpened1234@${at}`] : i % 5 === 0 ? [`sJoined5678@${at}`, `sOpened1234@${at - 1}`] : [];
      return { date, counters: { n_events: 1 }, signals };
    });
    // Exactly on the hour, while the day is still light.
    events[2]!.signals = [`sJoined5678@${midnight + offset + 7_200}`];
    return events;
  }

  for (const zone of ['UTC', 'Asia/Kolkata']) {
    it(`${zone}: its signals read back as the replay store's strings, whether written live or by import`, async () => {
      const { store, tableName } = await dynalite.freshStore({ timeZone: zone });
      const memory = new MemoryReplayStore(4);
      const days = [...signalIncrements('2026-03-10', zone), ...signalIncrements('2026-03-11', zone).slice(0, 5)];
      for (const [i, day] of days.entries()) {
        await store.recordEvent(USER, `k${i}`, day);
        await memory.recordEvent(USER, `k${i}`, day);
      }
      const layout = tableItemLayout({ shardCount: 4, timeZone: zone, now: () => new Date('2026-03-12T00:00:00Z') });
      const stored = memory.storedUser(USER)!;
      for (const day of importedDays(stored.days.values(), stored.guards)) {
        const item = layout.dayItem('imported', day)!;
        await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: item }));
      }
      const sorted = (buckets: ReadonlyArray<{ date: string; counters: Record<string, number>; signals?: string[] }>) =>
        buckets.map(({ date, counters, signals }) => ({ date, counters, signals: [...(signals ?? [])].sort() }));
      const expected = sorted((await memory.loadUser(USER, '2026-03-01')).buckets);
      expect(expected[0]!.signals.length).toBeGreaterThan(20);
      expect(sorted((await store.loadUser(USER, '2026-03-01')).buckets)).toEqual(expected);
      expect(sorted((await store.loadUser('imported', '2026-03-01')).buckets)).toEqual(expected);
      // Both days keep their signals as binary sets by filter (one byte an hour, three an exact second), live and
      // imported alike, element for element; no strings.
      const items = await tableItems(tableName);
      const dayOf = (user: string, date: string) => items.find((item) => item['pk']?.S === `USER#${user}` && item['sk']?.S === `DAY#${date}`)!;
      const signalSets = (item: Record<string, { BS?: Uint8Array[] }>) =>
        Object.fromEntries(
          Object.entries(item)
            .filter(([name]) => name.startsWith('*') || name === 'sig' || name.startsWith('@'))
            .map(([name, value]) => [name, (value.BS ?? []).map((element) => Buffer.from(element).toString('hex')).sort()]),
        );
      for (const date of ['2026-03-10', '2026-03-11']) {
        const live = signalSets(dayOf(USER, date));
        expect(Object.keys(live).sort()).toEqual(['*sJoined5678', '*sOpened1234']);
        expect(signalSets(dayOf('imported', date))).toEqual(live);
      }
      const elementSizes = new Set(Object.values(signalSets(dayOf(USER, '2026-03-10'))).flatMap((elements) => elements.map((hex) => hex.length / 2)));
      expect([...elementSizes].sort()).toEqual([1, 3]);
    });
  }

  for (const zone of ['UTC', 'Asia/Kolkata']) {
    it(`${zone}: days written by the earlier layout read back identically, and new writes to them add up`, async () => {
      const { store, tableName } = await dynalite.freshStore({ timeZone: zone });
      const memory = new MemoryReplayStore(4);
      // Generated counter ids (stored under short names now) and one that is not, and signals of two filters. (The
      // earlier layout only ever stored the ruleset's generated ids, 10 characters, in deployed tables.)
      const eventOn = (date: string, i: number): DayIncrement => {
        const at = Date.parse(`${date}T00:00:00Z`) / 1000 + (zone === 'UTC' ? 0 : -19_800) + 60 + i * 997 + (i % 7 === 0 ? -60 : 0);
        return {
          date,
          counters: { n_Ab3_x9Zq: 1, s_0I2all_x: i * 0.25 + 1, n_not_generated: i % 2 },
          signals: i % 3 === 0 ? [`sOpened1234@${at}`] : i % 4 === 0 ? [`sJoined5678@${at}`] : [],
        };
      };
      const dates = ['2026-03-09', '2026-03-10', '2026-03-11'];
      // 40 events on the first two days (heavy), 6 on the third (light), in the earlier layout.
      for (const [d, date] of dates.entries()) {
        for (let i = 0; i < (d < 2 ? 40 : 6); i++) await memory.recordEvent(USER, `${date}-${i}`, eventOn(date, i));
      }
      const stored = memory.storedUser(USER)!;
      for (const day of importedDays(stored.days.values(), stored.guards)) {
        await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: earlierLayoutItem(USER, day) }));
        for (const guard of tableItemLayout({ shardCount: 4, timeZone: zone, now: () => new Date('2026-03-12T00:00:00Z') }).guardItems(USER, day)) {
          await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: guard }));
        }
      }
      const sorted = (buckets: ReadonlyArray<{ date: string; counters: Record<string, number>; signals?: string[] }>) =>
        buckets.map(({ date, counters, signals }) => ({ date, counters, signals: [...(signals ?? [])].sort() }));
      const expected = sorted((await memory.loadUser(USER, '2026-03-01')).buckets);
      expect(expected.flatMap((bucket) => bucket.signals).length).toBeGreaterThan(20);
      expect(sorted((await store.loadUser(USER, '2026-03-01')).buckets)).toEqual(expected);
      // The new layout's writes land on the same items (a day written by both during a deploy): still equal.
      for (const [d, date] of dates.entries()) {
        for (let i = 40; i < 60; i++) {
          const increment = eventOn(date, i);
          expect(await store.recordEvent(USER, `${date}-${i}`, increment)).toEqual(await memory.recordEvent(USER, `${date}-${i}`, increment));
        }
        // And the earlier layout's events are still duplicates.
        expect(await store.recordEvent(USER, `${date}-${d}`, eventOn(date, d))).toMatchObject({ duplicate: true });
      }
      expect(sorted((await store.loadUser(USER, '2026-03-01')).buckets)).toEqual(sorted((await memory.loadUser(USER, '2026-03-01')).buckets));
      const heavy = (await tableItems(tableName)).find((item) => item['sk']?.S === 'DAY#2026-03-10')!;
      expect(Object.keys(heavy)).toEqual(expect.arrayContaining(['n_Ab3_x9Zq', 'Ab3_x9Zq', 's_0I2all_x', '$0I2all_x', 'n_not_generated']));
    });
  }

  it('counter ids that look like the short names are stored escaped and read back as they are', async () => {
    const { store, tableName } = await dynalite.freshStore();
    const counters = { n_events: 1, abcdefgh: 2, $abcdefgh: 3, '=x': 4, n_Ab3_x9Zq: 5, s_Ab3_x9Zq: 6, n_Ab3_x9Z: 7 };
    await store.recordEvent(USER, 'one', { date: '2026-03-10', counters, signals: [] });
    expect(await countersOn(store, '2026-03-10')).toEqual(counters);
    const item = (await tableItems(tableName)).find((entry) => entry['sk']?.S === 'DAY#2026-03-10')!;
    expect(Object.keys(item)).toEqual(expect.arrayContaining(['=n_events', '=abcdefgh', '=$abcdefgh', '==x', 'Ab3_x9Zq', '$Ab3_x9Zq', 'n_Ab3_x9Z']));
  });

  it('heavy writes to later days take the pending markers off the earlier ones, and their events stay applied once', async () => {
    const { store, tableName, capacity } = await dynalite.freshStore();
    // 16 at a time, as a busy user's events come: several are still in flight when the day ends.
    const concurrently = async (prefix: string, date: string, count: number) => {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < count; i = next++) await store.recordEvent(USER, `${prefix}-${i}`, increment(date));
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    };
    const pending = (date: string) =>
      tableItems(tableName).then((items) =>
        Object.keys(items.find((item) => item['sk']?.S === `DAY#${date}`)!).filter((name) => name.startsWith('p_')),
      );
    await concurrently('d1', '2026-03-10', 40);
    capacity.clear();
    await concurrently('d2', '2026-03-11', 20);
    // The events of the next day pay about one write for the closing, not one each.
    expect(capacity.total().write).toBeLessThanOrEqual(20 * 2 + 16 + 2);
    expect((await pending('2026-03-11')).length).toBeGreaterThan(0);
    // Two days on (a light day here), the few markers of writes still in flight when a day ended are gone too.
    await store.recordEvent(USER, 'd4-0', increment('2026-03-13'));
    expect(await pending('2026-03-10')).toEqual([]);
    expect(await pending('2026-03-11')).toEqual([]);
    // Every event of the closed day, delivered again by a process that knows nothing of it, is a duplicate.
    const fresh = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 4 });
    for (let i = 0; i < 40; i++) expect(await fresh.recordEvent(USER, `d1-${i}`, increment('2026-03-10'))).toMatchObject({ duplicate: true });
    expect((await countersOn(store, '2026-03-10'))['n_events']).toBe(40);
    expect((await countersOn(store, '2026-03-11'))['n_events']).toBe(20);
    for (let i = 0; i < 20; i++) expect(await fresh.recordEvent(USER, `d2-${i}`, increment('2026-03-11'))).toMatchObject({ duplicate: true });
    expect((await countersOn(store, '2026-03-11'))['n_events']).toBe(20);
  });
});

async function heavyDayOn(store: DynamoTierStore, date: string): Promise<void> {
  for (let i = 0; i < 3; i++) await store.recordEvent(USER, `${date}-${i}`, increment(date));
}
