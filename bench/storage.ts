/**
 * Storage per user: the example population runs through the real ingestEvent and DynamoDB store on dynalite for a
 * year, and at day 60 and day 365 the table is scanned and every item that DynamoDB TTL would still keep (no
 * `expiresAt`, or one after that instant) is sized by DynamoDB's rules. dynalite has no TTL, so "live" is computed
 * from the same attribute TTL reads. Divided by the users who have appeared by then.
 */
import { type AttributeValue, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoTierStore, dayRetentionDays, itemSizeBytes } from '../functions/aws/dynamo-store.js';
import { TABLE_KEYS } from '../functions/aws/table-schema.js';
import { type TierServices, ingestEvent } from '../functions/core/ingest.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { startDynalite } from '../functions/local/dynalite.js';
import { generateEvents } from '../functions/local/example-population.js';
import { POPULATION_START } from './capacity.js';

export interface StorageResult {
  users: number;
  events: number;
  /** Live bytes per user who has appeared, after 60 and after 365 days. */
  bytesPerUser: { '60d': number; '365d': number };
  /** What the table would hold after 365 days with no expiry at all, per user: what TTL saves. */
  bytesPerUserWithoutExpiry365d: number;
}

const DAY_MS = 86_400_000;

async function liveBytes(client: DynamoDBClient, tableName: string, at: Date): Promise<{ live: number; all: number }> {
  const atSeconds = Math.floor(at.getTime() / 1000);
  let live = 0;
  let all = 0;
  let exclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}) }));
    for (const item of page.Items ?? []) {
      if (!item[TABLE_KEYS.partitionKey]?.S?.startsWith('USER#')) continue;
      const bytes = itemSizeBytes(item);
      all += bytes;
      const expiresAt = item[TABLE_KEYS.timeToLiveAttribute]?.N;
      if (expiresAt === undefined || Number(expiresAt) > atSeconds) live += bytes;
    }
    exclusiveStartKey = page.LastEvaluatedKey;
  } while (exclusiveStartKey);
  return { live, all };
}

export async function measureStorage(ruleset: Ruleset, options: { users: number }): Promise<StorageResult> {
  const events = generateEvents({ users: options.users, days: 365, seed: 23, start: POPULATION_START });
  const startMs = Date.parse(`${POPULATION_START}T00:00:00+08:00`);
  const dynalite = await startDynalite();
  let now = new Date(startMs);
  try {
    const store = createDynamoTierStore({
      client: dynalite.client,
      tableName: dynalite.tableName,
      shardCount: 16,
      timeZone: ruleset.timezone,
      retentionDays: dayRetentionDays(ruleset.maxWindowDays),
      now: () => now,
    });
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => now },
    };
    const seen = new Set<string>();
    const snapshots: Record<string, { live: number; all: number; users: number }> = {};
    let index = 0;
    for (const day of [60, 365]) {
      const end = startMs + day * DAY_MS;
      for (; index < events.length && Date.parse(events[index]!.occurredAt) < end; index++) {
        const event = events[index]!;
        now = new Date(Date.parse(event.occurredAt) + 1000);
        seen.add(event.userId);
        await ingestEvent(services, event);
      }
      now = new Date(end);
      snapshots[day] = { ...(await liveBytes(dynalite.client, dynalite.tableName, now)), users: seen.size };
    }
    const perUser = (snapshot: { live: number; users: number }): number => Math.round(snapshot.live / Math.max(1, snapshot.users));
    return {
      users: options.users,
      events: index,
      bytesPerUser: { '60d': perUser(snapshots[60]!), '365d': perUser(snapshots[365]!) },
      bytesPerUserWithoutExpiry365d: Math.round(snapshots[365]!.all / Math.max(1, snapshots[365]!.users)),
    };
  } finally {
    await dynalite.close();
  }
}
