/**
 * The table side of `strata import`: whole items written with BatchWriteItem (25 per request, unprocessed items
 * retried with backoff, optionally paced to a write-capacity budget), the stored profiles read in batches to tell
 * a user already there, and the import's checkpoint item. The items themselves come from dynamo-store.ts
 * (tableItemLayout), so import writes exactly what live ingest writes. Works against DynamoDB and dynalite alike.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { isTransientError, itemSizeBytes } from './dynamo-store.js';
import { PROFILE_KEY, SEGMENT_DAYS, SYSTEM_KEY, TABLE_KEYS, dayKey, segmentFirstDate, segmentKey, userKey } from './table-schema.js';
import { addDays } from '../core/dates.js';

type Item = Record<string, AttributeValue>;

const MAX_BATCH_WRITE_ITEMS = 25;
const MAX_BATCH_GET_KEYS = 100;
const MAX_ATTEMPTS = 10;
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5_000;
/** A write unit covers 1 KB of item. */
const WRITE_UNIT_BYTES = 1024;
const checkpointKey = (importId: string): Item => ({
  [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY },
  [TABLE_KEYS.sortKey]: { S: `IMPORT#${importId}` },
});

/** The table kept refusing a batch, or refused it for good (a missing table, access denied). */
export class ImportTableError extends Error {
  override readonly name = 'ImportTableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`ImportTable: ${message}`, options);
  }
}

/** How far an import of one history has come: users are written in the replay's order, so a count is a position. */
export interface ImportCheckpoint {
  usersDone: number;
  eventsDone: number;
  complete: boolean;
}

export interface ImportTableStats {
  writeRequests: number;
  itemsWritten: number;
  /** Write units DynamoDB reported (dynalite reports them too). */
  writeUnits: number;
  readRequests: number;
  retries: number;
}

export interface ImportTableOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Write units per second to stay under (a provisioned or shared table); unlimited when absent. */
  maxWcu?: number;
  /** Batches in flight at once. Default 8. */
  concurrency?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ImportTable {
  writeItems(items: readonly Item[]): Promise<void>;
  /** The stored profile items of these users (absent = no profile). */
  storedProfiles(userIds: readonly string[]): Promise<Map<string, Item>>;
  /** These users' stored day items from `from` to `to` (local dates, inclusive), by user. */
  /** Day items from `from` to `to`, and the segments that hold any of those dates (and may reach a little past `to`). */
  storedDays(userIds: readonly string[], from: string, to: string): Promise<Map<string, Item[]>>;
  readCheckpoint(importId: string): Promise<ImportCheckpoint | undefined>;
  writeCheckpoint(importId: string, checkpoint: ImportCheckpoint): Promise<void>;
  readonly stats: ImportTableStats;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function backoff(attempt: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Write units an item costs: one per started KB. */
export function writeUnitsOf(item: Item): number {
  return Math.max(1, Math.ceil(itemSizeBytes(item) / WRITE_UNIT_BYTES));
}

/** Two items hold the same attributes and values (sets in any order). */
export function sameItem(a: Item, b: Item): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
    if (Array.isArray(v) && v.every((e) => typeof e === 'string')) return [...(v as string[])].sort();
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1)));
    return v;
  });
}

export function createImportTable(options: ImportTableOptions): ImportTable {
  const { client, tableName } = options;
  const sleep = options.sleep ?? defaultSleep;
  const concurrency = options.concurrency ?? 8;
  const stats: ImportTableStats = { writeRequests: 0, itemsWritten: 0, writeUnits: 0, readRequests: 0, retries: 0 };

  // Pacing: a bucket of write units refilled at maxWcu per second, one second's worth deep.
  let budget = options.maxWcu ?? 0;
  let refilledAt = Date.now();
  async function spend(units: number): Promise<void> {
    const rate = options.maxWcu;
    if (rate === undefined) return;
    for (;;) {
      const now = Date.now();
      budget = Math.min(rate, budget + ((now - refilledAt) / 1000) * rate);
      refilledAt = now;
      // A batch larger than a second's budget waits for a full bucket and goes.
      if (budget >= Math.min(units, rate)) {
        budget -= units;
        return;
      }
      await sleep(Math.ceil(((Math.min(units, rate) - budget) / rate) * 1000));
    }
  }

  async function writeBatch(items: readonly Item[]): Promise<void> {
    let requests: WriteRequest[] = items.map((Item) => ({ PutRequest: { Item } }));
    await spend(items.reduce((sum, item) => sum + writeUnitsOf(item), 0));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt >= MAX_ATTEMPTS) {
        throw new ImportTableError(
          `${requests.length} items stayed unprocessed after ${MAX_ATTEMPTS} attempts (the table is throttling); run the import again: it resumes from its checkpoint`,
        );
      }
      if (attempt > 0) {
        stats.retries += 1;
        await sleep(backoff(attempt));
      }
      let output;
      try {
        stats.writeRequests += 1;
        output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests }, ReturnConsumedCapacity: 'TOTAL' }));
      } catch (error) {
        if (isTransientError(error)) continue;
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        throw new ImportTableError(`BatchWriteItem on table ${tableName} failed (${reason}); check the table name, region and credentials`, {
          cause: error,
        });
      }
      stats.writeUnits += (output.ConsumedCapacity ?? []).reduce((sum, consumed) => sum + (consumed.CapacityUnits ?? 0), 0);
      const unprocessed = output.UnprocessedItems?.[tableName] ?? [];
      stats.itemsWritten += requests.length - unprocessed.length;
      requests = unprocessed;
    }
  }

  async function inParallel<T>(tasks: readonly T[], run: (task: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tasks.length) await run(tasks[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  }

  async function storedDaysOf(userId: string, from: string, to: string): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      stats.readRequests += 1;
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          ConsistentRead: true,
          KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
          // To the segment that holds `to` (sealed heavy days rolled up; see dynamo-store.ts), which sorts after it.
          ExpressionAttributeValues: {
            ':pk': { S: userKey(userId) },
            ':from': { S: dayKey(from) },
            ':to': { S: segmentKey(addDays(segmentFirstDate(to), SEGMENT_DAYS - 1)) },
          },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  return {
    stats,

    async writeItems(items) {
      const batches: Item[][] = [];
      for (let start = 0; start < items.length; start += MAX_BATCH_WRITE_ITEMS) batches.push(items.slice(start, start + MAX_BATCH_WRITE_ITEMS));
      await inParallel(batches, writeBatch);
    },

    async storedProfiles(userIds) {
      const found = new Map<string, Item>();
      const chunks: string[][] = [];
      for (let start = 0; start < userIds.length; start += MAX_BATCH_GET_KEYS) chunks.push(userIds.slice(start, start + MAX_BATCH_GET_KEYS));
      await inParallel(chunks, async (chunk) => {
        let keys: Item[] = chunk.map((userId) => ({
          [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
          [TABLE_KEYS.sortKey]: { S: PROFILE_KEY },
        }));
        for (let attempt = 0; keys.length > 0; attempt++) {
          if (attempt >= MAX_ATTEMPTS) throw new ImportTableError(`${keys.length} profile reads stayed unprocessed; run the import again`);
          if (attempt > 0) await sleep(backoff(attempt));
          stats.readRequests += 1;
          const output = await client.send(new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: true } } }));
          for (const item of output.Responses?.[tableName] ?? []) {
            found.set((item[TABLE_KEYS.partitionKey]?.S ?? '').slice(userKey('').length), item);
          }
          keys = output.UnprocessedKeys?.[tableName]?.Keys ?? [];
        }
      });
      return found;
    },

    async storedDays(userIds, from, to) {
      const byUser = new Map<string, Item[]>();
      await inParallel(userIds, async (userId) => {
        byUser.set(userId, await storedDaysOf(userId, from, to));
      });
      return byUser;
    },

    async readCheckpoint(importId) {
      stats.readRequests += 1;
      const { Item: item } = await client.send(new GetItemCommand({ TableName: tableName, Key: checkpointKey(importId), ConsistentRead: true }));
      if (!item) return undefined;
      return {
        usersDone: Number(item['usersDone']?.N ?? 0),
        eventsDone: Number(item['eventsDone']?.N ?? 0),
        complete: item['complete']?.BOOL === true,
      };
    },

    async writeCheckpoint(importId, checkpoint) {
      stats.writeRequests += 1;
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            ...checkpointKey(importId),
            usersDone: { N: String(checkpoint.usersDone) },
            eventsDone: { N: String(checkpoint.eventsDone) },
            complete: { BOOL: checkpoint.complete },
          },
        }),
      );
    },
  };
}
