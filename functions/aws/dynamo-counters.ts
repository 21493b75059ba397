/**
 * The analytics counters (core/analytics.ts) in the same DynamoDB table as the users, on a few small items:
 *
 *   STATS#TIERS / <date>#<shard>             census changes, flows, journey entries and conversions of a day
 *   STATS#TALLIES / <drain date>#<hash>      journey executions' tallies, counted by the nightly review in batches
 *   STATS#JOURNEY#<journeyId> / <date>#<shard>  step outcomes written one execution (or step) at a time, by
 *                                            deployments before the nightly batches and by definitions compiled
 *                                            before the execution state was passed to Tasks
 *   STATS#CENSUS / <date>                    the nightly snapshot of users per tier
 *
 * A journey's funnel is the sum of both: the batch items' tallies of that journey (each id once, by entry date, see
 * core/tally-batches.ts) and its own items. A batch item is one PutItem of at most about 1 KB of encoded tallies,
 * under the hash of its text and never over an existing one.
 *
 * Every other counter write is one UpdateItem of ADDs. A once-only occurrence (a tier change, a conversion) also sets its guard
 * attribute `g|<id>` under the condition that it is not there yet; a refused condition means it was counted before.
 * Guards of settled occurrences (their outbox is cleared, so nothing will count them again) are removed by this
 * store's next write to the same item, so that items, and so write units, stay small without a write of their own.
 *
 * All of STATS#TIERS is one partition: the census sums every day of it in one Query, which no scan of users needs.
 */
import {
  type AttributeValue,
  type ConsumedCapacity,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  type QueryCommandOutput,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type AnalyticsCounters,
  type AnalyticsReader,
  type CensusSnapshot,
  type CounterDay,
  type JourneyStepCount,
  type TierCountOccurrence,
  counterShard,
} from '../core/analytics.js';
import { shortHash } from '../core/hash.js';
import {
  type CountLease,
  type TallyBatch,
  type TallyBatchStore,
  decodeTallyBatch,
  journeyDaysFromBatches,
  mergeCounterDays,
} from '../core/tally-batches.js';
import { type CapacityUnits, ONLY_IF_NEW, isConditionalCheckFailure, isTransientError, unlessConditionFails } from './dynamo-store.js';
import { TABLE_KEYS } from './table-schema.js';

type Item = Record<string, AttributeValue>;

export const TIER_COUNTERS_KEY = 'STATS#TIERS';
export const journeyCountersKey = (journeyId: string): string => `STATS#JOURNEY#${journeyId}`;
export const CENSUS_SNAPSHOT_KEY = 'STATS#CENSUS';
export const TALLY_BATCHES_KEY = 'STATS#TALLIES';
/** The attribute of a batch item that holds its encoded tallies. */
const TALLIES_ATTRIBUTE = 't';
/** The nightly count's lease, in the batches' partition: `!` sorts before every drain date, so no batch read meets it. */
export const TALLY_COUNT_LEASE_SORT_KEY = '!lease';
const GUARD_PREFIX = 'g|';
/** Guards of settled occurrences remembered per item for the next write there; beyond this the oldest item's go. */
const SETTLED_ITEMS_REMEMBERED = 64;

export type CounterOperation = 'addOnce' | 'addJourneyStep' | 'readCounters' | 'censusSnapshot' | 'tallyBatch' | 'countLease';

export interface DynamoCountersOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Called with the units of every request, so that the bench can measure what counting costs. */
  onCapacity?: (operation: CounterOperation, capacity: CapacityUnits) => void;
}

export type DynamoCounters = AnalyticsCounters & AnalyticsReader & TallyBatchStore;

/** A counter request that failed for a reason other than throttling or an outage. */
export class CounterStoreError extends Error {
  override readonly name = 'CounterStoreError';
  constructor(operation: CounterOperation, message: string, options?: { cause?: unknown }) {
    super(`DynamoCounters: ${operation}: ${message}`, options);
  }
}

const dayShardKey = (date: string, shard: number): string => `${date}#${shard}`;

export function createDynamoCounters(options: DynamoCountersOptions): DynamoCounters {
  const { client, tableName, onCapacity } = options;
  const common = { TableName: tableName, ReturnConsumedCapacity: 'TOTAL' } as const;
  /** Per item (`pk\0sk`), the guard attributes that may go with this store's next write there. */
  const settled = new Map<string, Set<string>>();

  async function metered<Output extends { ConsumedCapacity?: ConsumedCapacity }>(
    operation: CounterOperation,
    kind: keyof CapacityUnits,
    request: () => Promise<Output>,
  ): Promise<Output> {
    let output: Output;
    try {
      output = await request();
    } catch (error) {
      if (isTransientError(error) || isConditionalCheckFailure(error)) throw error;
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new CounterStoreError(operation, `failed on table ${tableName} (${reason}); check the table exists and the role may write it`, {
        cause: error,
      });
    }
    const total = output.ConsumedCapacity?.CapacityUnits ?? 0;
    onCapacity?.(operation, { read: kind === 'read' ? total : 0, write: kind === 'write' ? total : 0 });
    return output;
  }

  /** One UpdateItem of ADDs, with an optional guard to set (and settled guards to remove) on the same item. */
  async function addCounts(operation: CounterOperation, key: Item, counts: Record<string, number>, guard?: string): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const adds: string[] = [];
    for (const [name, value] of Object.entries(counts)) {
      if (value === 0) continue;
      const i = adds.length;
      names[`#c${i}`] = name;
      values[`:c${i}`] = { N: String(value) };
      adds.push(`#c${i} :c${i}`);
    }
    const itemRef = `${key[TABLE_KEYS.partitionKey]!.S}\u0000${key[TABLE_KEYS.sortKey]!.S}`;
    const removable = [...(settled.get(itemRef) ?? [])].filter((name) => name !== guard);
    const removes = removable.map((name, i) => {
      names[`#r${i}`] = name;
      return `#r${i}`;
    });
    let expression = adds.length > 0 ? `ADD ${adds.join(', ')}` : '';
    if (guard !== undefined) {
      names['#g'] = guard;
      values[':one'] = { N: '1' };
      expression += ' SET #g = :one';
    }
    if (removes.length > 0) expression += ` REMOVE ${removes.join(', ')}`;
    if (expression === '') return false;
    const written = await unlessConditionFails(
      metered(operation, 'write', () =>
        client.send(
          new UpdateItemCommand({
            ...common,
            Key: key,
            UpdateExpression: expression.trim(),
            ...(guard !== undefined ? { ConditionExpression: 'attribute_not_exists(#g)' } : {}),
            ExpressionAttributeNames: names,
            ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
          }),
        ),
      ),
    );
    if (written === undefined) return false;
    const left = settled.get(itemRef);
    if (left) {
      for (const name of removable) left.delete(name);
      if (left.size === 0) settled.delete(itemRef);
    }
    return true;
  }

  /** A once-only occurrence's item: its journey's (an execution's tally) or the tier item, of its date, sharded by its id. */
  const occurrenceItemKey = (occurrence: TierCountOccurrence): Item => ({
    [TABLE_KEYS.partitionKey]: { S: occurrence.journeyId !== undefined ? journeyCountersKey(occurrence.journeyId) : TIER_COUNTERS_KEY },
    [TABLE_KEYS.sortKey]: { S: dayShardKey(occurrence.date, counterShard(occurrence.id)) },
  });

  async function queryAll(partition: string, fromSortKey: string | undefined): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page: QueryCommandOutput = await metered('readCounters', 'read', () =>
        client.send(
          new QueryCommand({
            ...common,
            ConsistentRead: true,
            KeyConditionExpression: fromSortKey === undefined ? '#pk = :pk' : '#pk = :pk AND #sk >= :from',
            ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, ...(fromSortKey === undefined ? {} : { '#sk': TABLE_KEYS.sortKey }) },
            ExpressionAttributeValues: { ':pk': { S: partition }, ...(fromSortKey === undefined ? {} : { ':from': { S: fromSortKey } }) },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** The shards of each date summed; guards and keys left out. */
  function daysOf(items: Item[]): CounterDay[] {
    return mergeCounterDays(
      items.map((item): CounterDay => {
        const counts: Record<string, number> = {};
        for (const [name, value] of Object.entries(item)) {
          if (name === TABLE_KEYS.partitionKey || name === TABLE_KEYS.sortKey || name.startsWith(GUARD_PREFIX) || value.N === undefined) continue;
          counts[name] = Number(value.N);
        }
        return { date: (item[TABLE_KEYS.sortKey]?.S ?? '').split('#')[0]!, counts };
      }),
    );
  }

  async function readTallyBatches(fromDrainDate: string): Promise<TallyBatch[]> {
    return (await queryAll(TALLY_BATCHES_KEY, fromDrainDate)).map((item) => ({
      drainDate: (item[TABLE_KEYS.sortKey]?.S ?? '').split('#')[0]!,
      tallies: decodeTallyBatch(item[TALLIES_ATTRIBUTE]?.S ?? ''),
    }));
  }

  async function readJourneysDays(journeyIds: readonly string[], fromDate: string): Promise<Record<string, CounterDay[]>> {
    // Batches drained from the period's first day on hold every tally of an entry in it (an entry is drained after it).
    const [batches, ...own] = await Promise.all([
      readTallyBatches(fromDate),
      ...journeyIds.map((journeyId) => queryAll(journeyCountersKey(journeyId), fromDate)),
    ]);
    return Object.fromEntries(
      journeyIds.map((journeyId, i) => [journeyId, mergeCounterDays(daysOf(own[i]!), journeyDaysFromBatches(batches, journeyId, fromDate))]),
    );
  }

  return {
    addOnce(occurrence: TierCountOccurrence) {
      return addCounts('addOnce', occurrenceItemKey(occurrence), occurrence.counts, GUARD_PREFIX + occurrence.id);
    },

    settle(occurrence: TierCountOccurrence) {
      if (occurrence.keepGuard) return;
      const key = occurrenceItemKey(occurrence);
      const itemRef = `${key[TABLE_KEYS.partitionKey]!.S}\u0000${key[TABLE_KEYS.sortKey]!.S}`;
      if (!settled.has(itemRef) && settled.size >= SETTLED_ITEMS_REMEMBERED) settled.delete(settled.keys().next().value as string);
      settled.set(itemRef, (settled.get(itemRef) ?? new Set()).add(GUARD_PREFIX + occurrence.id));
    },

    async addJourneyStep(count: JourneyStepCount) {
      await addCounts(
        'addJourneyStep',
        {
          [TABLE_KEYS.partitionKey]: { S: journeyCountersKey(count.journeyId) },
          [TABLE_KEYS.sortKey]: { S: dayShardKey(count.date, counterShard(count.shardKey)) },
        },
        count.counts,
      );
    },

    async readTierDays(fromDate?: string) {
      return daysOf(await queryAll(TIER_COUNTERS_KEY, fromDate));
    },

    async readJourneyDays(journeyId: string, fromDate: string) {
      return (await readJourneysDays([journeyId], fromDate))[journeyId]!;
    },

    readJourneysDays,

    readTallyBatches,

    async holdCountLease(lease: CountLease) {
      const held = await unlessConditionFails(
        metered('countLease', 'write', () =>
          client.send(
            new PutItemCommand({
              ...common,
              Item: {
                [TABLE_KEYS.partitionKey]: { S: TALLY_BATCHES_KEY },
                [TABLE_KEYS.sortKey]: { S: TALLY_COUNT_LEASE_SORT_KEY },
                owner: { S: lease.owner },
                until: { S: lease.until.toISOString() },
              },
              // Free, ours already (a resumed count), or lapsed: ISO instants of one format compare as text.
              ConditionExpression: 'attribute_not_exists(#pk) OR #owner = :owner OR #until < :now',
              ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#owner': 'owner', '#until': 'until' },
              ExpressionAttributeValues: { ':owner': { S: lease.owner }, ':now': { S: lease.now.toISOString() } },
            }),
          ),
        ),
      );
      return held !== undefined;
    },

    async writeTallyBatch(drainDate: string, encoded: string) {
      const item: Item = {
        [TABLE_KEYS.partitionKey]: { S: TALLY_BATCHES_KEY },
        [TABLE_KEYS.sortKey]: { S: `${drainDate}#${shortHash(encoded, 16)}` },
        [TALLIES_ATTRIBUTE]: { S: encoded },
      };
      // Refused: the same text under the same night is stored already (a retried write), nothing more to do.
      await unlessConditionFails(metered('tallyBatch', 'write', () => client.send(new PutItemCommand({ ...common, Item: item, ...ONLY_IF_NEW }))));
    },

    async readCensusSnapshots(fromDate: string) {
      const items = await queryAll(CENSUS_SNAPSHOT_KEY, fromDate);
      return items.map((item): CensusSnapshot => {
        const tiers: Record<string, number> = {};
        for (const [name, value] of Object.entries(item)) if (name.startsWith('t|') && value.N !== undefined) tiers[name.slice(2)] = Number(value.N);
        return { date: item[TABLE_KEYS.sortKey]?.S ?? '', tiers };
      });
    },

    async writeCensusSnapshot(snapshot: CensusSnapshot) {
      const item: Item = {
        [TABLE_KEYS.partitionKey]: { S: CENSUS_SNAPSHOT_KEY },
        [TABLE_KEYS.sortKey]: { S: snapshot.date },
      };
      for (const [tier, users] of Object.entries(snapshot.tiers)) item[`t|${tier}`] = { N: String(users) };
      await metered('censusSnapshot', 'write', () => client.send(new PutItemCommand({ ...common, Item: item })));
    },
  };
}
