/**
 * Segments on dynalite (the roll-up of sealed heavy days; see dynamo-store.ts): a heavy user's window read shrinks
 * and reads the same days, a typical user is never rolled up, and a late event or a resend to a rolled-up day adds
 * once, before and after its drained item is deleted.
 */
import { PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { itemSizeBytes, tableItemLayout } from '../../functions/aws/dynamo-store.js';
import { segmentFirstDate, userKey } from '../../functions/aws/table-schema.js';
import { addDays } from '../../functions/core/dates.js';
import { importedDays } from '../../functions/core/import-plan.js';
import type { DayIncrement } from '../../functions/core/metrics.js';
import type { DayBucket } from '../../functions/core/state.js';
import { MemoryReplayStore } from '../../functions/replay/memory-store.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();
const FIRST_DAY = segmentFirstDate('2026-05-04');
const DAYS = 40;
const increment = (date: string, i: number): DayIncrement => ({
  date,
  counters: { n_events_0: 1, s_amount_0: (i % 7) * 1.25 },
  signals: [`sAbCdEfGhIj@${Date.parse(`${date}T00:00:00Z`) / 1000 + (i % 20) * 3600 + 60}`],
});

/** Buckets with their signals in one order (a set's order is not kept). */
const sorted = (buckets: readonly DayBucket[]) => buckets.map((bucket) => ({ ...bucket, signals: [...(bucket.signals ?? [])].sort() }));

/** A user with `perDay` events on each of DAYS days, replayed in memory and written as `strata import` writes it. */
async function seeded(perDay: number, userId: string) {
  const memory = new MemoryReplayStore(4);
  for (let day = 0; day < DAYS; day++) {
    for (let i = 0; i < perDay; i++) await memory.recordEvent(userId, `k${day}-${i}`, increment(addDays(FIRST_DAY, day), i));
  }
  const now = new Date(`${addDays(FIRST_DAY, DAYS)}T12:00:00Z`);
  const layout = tableItemLayout({ shardCount: 4, now: () => now });
  return { memory, now, layout };
}

async function dayItemsOf(tableName: string, userId: string) {
  const { Items = [] } = await dynalite.client.send(
    new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :day)',
      ExpressionAttributeValues: { ':pk': { S: userKey(userId) }, ':day': { S: 'DAY#' } },
    }),
  );
  return Items;
}

describe('segments', () => {
  it('a heavy user: the window read shrinks, reads the same days, and the drained items go after the guard horizon', async () => {
    const userId = 'busy';
    const { memory, now, layout } = await seeded(40, userId);
    let clock = now;
    const { store, tableName, capacity } = await dynalite.freshStore({ now: () => clock, rollUpReadBytes: 2048 });
    const stored = memory.storedUser(userId)!;
    for (const day of importedDays(stored.days.values(), stored.guards)) {
      for (const item of [layout.dayItem(userId, day)!, ...layout.guardItems(userId, day)]) {
        await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: item }));
      }
    }
    const expected = (await memory.loadUser(userId, FIRST_DAY)).buckets;
    const windowBytes = async (): Promise<number> => (await dayItemsOf(tableName, userId)).reduce((sum, item) => sum + itemSizeBytes(item), 0);
    const first = await windowBytes();
    for (let read = 0; read < 4; read++) expect(sorted((await store.loadUser(userId, FIRST_DAY)).buckets)).toEqual(sorted(expected));
    const rolledBytes = await windowBytes();
    expect(rolledBytes).toBeLessThan(first);
    expect(capacity.total().byOperation.rollUp?.write).toBeGreaterThan(0);
    const items = await dayItemsOf(tableName, userId);
    expect(items.filter((item) => item['sk']!.S!.endsWith('~')).length).toBe(4);
    const drained = items.filter((item) => item['hv']?.N !== undefined);
    expect(drained.length).toBe(32);

    // A late event and a resend to a rolled-up day: the late one adds, the resend is caught by its guard.
    const day3 = addDays(FIRST_DAY, 3);
    await memory.recordEvent(userId, 'late-1', increment(day3, 1));
    // A resend within the guard horizon (imported guards go back 15 days) of a key the day held while light.
    const day28 = addDays(FIRST_DAY, 28);
    await memory.recordEvent(userId, 'k28-5', increment(day28, 5));
    expect((await store.recordEvent(userId, 'late-1', increment(day3, 1))).duplicate).toBe(false);
    expect((await store.recordEvent(userId, 'k28-5', increment(day28, 5))).duplicate).toBe(true);
    const withLate = (await memory.loadUser(userId, FIRST_DAY)).buckets;
    expect(sorted((await store.loadUser(userId, FIRST_DAY)).buckets)).toEqual(sorted(withLate));

    // 30 days on, the drained items with nothing left are deleted; the day with the late event keeps its item.
    clock = new Date(now.getTime() + 30 * 86_400_000);
    for (let read = 0; read < 5; read++) expect(sorted((await store.loadUser(userId, FIRST_DAY)).buckets)).toEqual(sorted(withLate));
    const after = await dayItemsOf(tableName, userId);
    expect(after.filter((item) => item['hv']?.N !== undefined)).toEqual([]);
    expect(after.some((item) => item['sk']!.S === `DAY#${day3}`)).toBe(true);
    expect(await windowBytes()).toBeLessThan(rolledBytes - 1000);
    // A late event to a day whose item is gone adds to the segment's values.
    const day9 = addDays(FIRST_DAY, 9);
    await memory.recordEvent(userId, 'late-2', increment(day9, 2));
    expect((await store.recordEvent(userId, 'late-2', increment(day9, 2))).duplicate).toBe(false);
    expect(sorted((await store.loadUser(userId, FIRST_DAY)).buckets)).toEqual(sorted((await memory.loadUser(userId, FIRST_DAY)).buckets));
  });

  it('a typical user is never rolled up', async () => {
    const userId = 'typical';
    const { memory, layout } = await seeded(3, userId);
    const { store, tableName, capacity } = await dynalite.freshStore();
    const stored = memory.storedUser(userId)!;
    for (const day of importedDays(stored.days.values(), stored.guards)) {
      await dynalite.client.send(new PutItemCommand({ TableName: tableName, Item: layout.dayItem(userId, day)! }));
    }
    for (let read = 0; read < 3; read++) {
      expect(sorted((await store.loadUser(userId, FIRST_DAY)).buckets)).toEqual(sorted((await memory.loadUser(userId, FIRST_DAY)).buckets));
    }
    expect((await dayItemsOf(tableName, userId)).filter((item) => item['sk']!.S!.endsWith('~'))).toEqual([]);
    expect(capacity.total().byOperation.rollUp).toBeUndefined();
  });
});
