/**
 * The DynamoDB adapter of the TierStore port (and of the journey side's user reads and send records), on the
 * single table laid out in table-schema.ts. The same code talks to DynamoDB in AWS and to dynalite locally.
 *
 * Cost is the point of the layout: an event is one conditional UpdateItem on a day item kept under 1 KB (one
 * write unit) and one consistent Query that reads the window's day items and the profile together. The profile is
 * written only when the decision changes something, and the review index is a sparse GSI maintained from it.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  type ConsumedCapacity,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { addDays } from '../core/dates.js';
import { userRef } from '../core/hash.js';
import type { DayIncrement } from '../core/metrics.js';
import type { JourneyStepStore } from '../core/journey/run-journey-step.js';
import type { TierStore } from '../core/ports.js';
import type { UserEraser } from '../core/operator.js';
import type { RejudgeProgress, RejudgeStore } from '../core/rejudge.js';
import { instantAtLocalTime } from '../core/local-time.js';
import { reviewIndexDate } from '../core/review-date.js';
import { reviewShard } from '../core/review.js';
import type { DayBucket, HistoryEntry, UserProfile } from '../core/state.js';
import {
  PROFILE_KEY,
  REVIEW_CHECKPOINT_KEY,
  SYSTEM_KEY,
  TABLE_KEYS,
  dayKey,
  historyKey,
  reviewPartition,
  userKey,
} from './table-schema.js';

/** Day items older than this are expired by DynamoDB TTL; it must be at least the longest metric window (400). */
export const DEFAULT_RETENTION_DAYS = 400;
export const REVIEW_PAGE_SIZE = 500;
const MAX_BATCH_WRITE_ITEMS = 25;
const MAX_UNPROCESSED_RETRIES = 6;
/** Items a re-judge Scan page evaluates (every kind is read; the filter keeps profiles). */
const REJUDGE_SCAN_PAGE = 1000;
const REJUDGED_VERSION_KEY = 'REJUDGED_VERSION';
const rejudgeProgressKey = (version: string, segment: number): string => `REJUDGE#${version}#${segment}`;

/**
 * The day item's own attributes. Every other attribute of a day item is a metric counter, named by its counter id
 * from the ruleset (`n_…` / `s_…`), which keeps items small and lets a new ruleset add counters with no migration.
 */
const DAY_ATTRIBUTES = {
  eventKeys: 'ids',
  signals: 'sig',
  sends: 'sends',
  sendIds: 'sendIds',
} as const;
const NON_COUNTER_ATTRIBUTES: ReadonlySet<string> = new Set([
  TABLE_KEYS.partitionKey,
  TABLE_KEYS.sortKey,
  TABLE_KEYS.timeToLiveAttribute,
  ...Object.values(DAY_ATTRIBUTES),
]);
const PROFILE_VERSION_ATTRIBUTE = 'version' satisfies keyof UserProfile;
/** The profile fields that make up the outbox, emptied together by clearOutbox. */
const OUTBOX_FIELDS = ['pendingJourney', 'pendingNotices', 'pendingHistory', 'outboxVersion', 'outboxRetryAt'] as const satisfies ReadonlyArray<keyof UserProfile>;
const CHECKPOINT_DATE_ATTRIBUTE = 'date';
/** In the checkpoint item: the largest review shard count the review has read (see widenReviewShardCount). */
const CHECKPOINT_SHARD_COUNT_ATTRIBUTE = 'shardCount';
const USER_PREFIX = userKey('');
const DAY_PREFIX = dayKey('');
/** What every history sort key starts with: historyKey without its version digits. */
const HISTORY_PREFIX = historyKey(0).replace(/\d+$/, '');

/** The operations reported to `onCapacity` and named in errors. */
export type StoreOperation =
  | 'recordEvent'
  | 'loadUser'
  | 'saveProfile'
  | 'appendHistory'
  | 'clearOutbox'
  | 'listDueForReview'
  | 'getReviewCheckpoint'
  | 'setReviewCheckpoint'
  | 'listHistory'
  | 'loadUserForJourney'
  | 'recordSend'
  | 'deleteUserItems'
  | 'scanUserIds'
  | 'rejudgeCheckpoint'
  | ReviewUpkeepOperation;

/** The review upkeep operations (deferReview, widenReviewShardCount), kept apart from the event path. */
export type ReviewUpkeepOperation = 'deferReview' | 'widenReviewShardCount';

export interface CapacityUnits {
  read: number;
  write: number;
}

/** The journey side's port, defined by the journey core (run-journey-step.ts); this adapter implements it as is. */
export type JourneyUserStore = JourneyStepStore;
/** Both ports this adapter serves: the tier services' store and the journey step's reads and send records. */
export type DynamoTierStore = TierStore & JourneyUserStore & UserEraser & RejudgeStore;

export interface DynamoTierStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Partitions of the review index per date; the nightly job reviews them in parallel. */
  shardCount: number;
  /** The ruleset's time zone: day items expire at local midnight. Default UTC. */
  timeZone?: string;
  /** Days a day item is kept. Default 400, the longest window a ruleset may declare. */
  retentionDays?: number;
  /** Called with the units DynamoDB reports for every request, so that capacity per event can be measured. */
  onCapacity?: (operation: StoreOperation, capacity: CapacityUnits) => void;
}

/** A store failure that retrying will not fix (a malformed request or item, a missing table, access denied). */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly operation: StoreOperation,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`DynamoStore: ${operation}: ${message}`, options);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

const TRANSIENT_ERROR_NAMES: ReadonlySet<string> = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);

interface ServiceErrorShape {
  name?: string;
  code?: string;
  $fault?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Throttling, server faults and dropped connections: the caller (SQS redelivery, the review's rerun) retries. */
export function isTransientError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const shape = error as ServiceErrorShape;
  return (
    TRANSIENT_ERROR_NAMES.has(shape.name ?? '') ||
    shape.$retryable !== undefined ||
    shape.$fault === 'server' ||
    (shape.$metadata?.httpStatusCode ?? 0) >= 500 ||
    NETWORK_ERROR_CODES.has(shape.code ?? '')
  );
}

function isConditionalCheckFailure(error: unknown): boolean {
  return (error as ServiceErrorShape | undefined)?.name === 'ConditionalCheckFailedException';
}

/** Resolves undefined when the request's condition does not hold, which is an answer here, not a failure. */
async function unlessConditionFails<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (isConditionalCheckFailure(error)) return undefined;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Plain values <-> DynamoDB attribute values. @aws-sdk/util-dynamodb is not installed (it is not a dependency of
// the low-level client), and the store needs only JSON-shaped values, so this is the small subset it needs.

type Item = Record<string, AttributeValue>;

function toAttribute(value: unknown, path: string): AttributeValue | undefined {
  if (value === undefined) return undefined;
  if (value === null) return { NULL: true };
  switch (typeof value) {
    case 'string':
      return { S: value };
    case 'boolean':
      return { BOOL: value };
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which DynamoDB cannot store`);
      return { N: String(value) };
    case 'object':
      if (Array.isArray(value)) {
        return { L: value.flatMap((element, i) => toAttribute(element, `${path}[${i}]`) ?? []) };
      }
      return { M: toItem(value as Record<string, unknown>, path) };
    default:
      throw new TypeError(`${path} is a ${typeof value}, which DynamoDB cannot store`);
  }
}

/** Like util-dynamodb's marshall with removeUndefinedValues: undefined fields are left out. */
function toItem(values: Record<string, unknown>, path = ''): Item {
  const item: Item = {};
  for (const [name, value] of Object.entries(values)) {
    const attribute = toAttribute(value, path ? `${path}.${name}` : name);
    if (attribute !== undefined) item[name] = attribute;
  }
  return item;
}

function fromAttribute(attribute: AttributeValue): unknown {
  if (attribute.S !== undefined) return attribute.S;
  if (attribute.N !== undefined) return Number(attribute.N);
  if (attribute.BOOL !== undefined) return attribute.BOOL;
  if (attribute.NULL !== undefined) return null;
  if (attribute.L !== undefined) return attribute.L.map(fromAttribute);
  if (attribute.M !== undefined) return fromItem(attribute.M);
  if (attribute.SS !== undefined) return attribute.SS;
  if (attribute.NS !== undefined) return attribute.NS.map(Number);
  if (attribute.B !== undefined) return attribute.B;
  if (attribute.BS !== undefined) return attribute.BS;
  return undefined;
}

function fromItem(item: Item): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, attribute] of Object.entries(item)) values[name] = fromAttribute(attribute);
  return values;
}

// ---------------------------------------------------------------------------------------------------------------
// Item mapping

/** Epoch seconds of the local midnight that starts `date` in `timeZone`. */
function startOfLocalDay(date: string, timeZone: string): number {
  return Math.floor(instantAtLocalTime(date, 0, timeZone).getTime() / 1000);
}

function dayBucketOf(item: Item): DayBucket {
  const counters: Record<string, number> = {};
  for (const [name, attribute] of Object.entries(item)) {
    if (attribute.N !== undefined && !NON_COUNTER_ATTRIBUTES.has(name)) counters[name] = Number(attribute.N);
  }
  const bucket: DayBucket = { date: (item[TABLE_KEYS.sortKey]?.S ?? '').slice(DAY_PREFIX.length), counters };
  const signals = item[DAY_ATTRIBUTES.signals]?.SS;
  if (signals) bucket.signals = signals;
  const sends = item[DAY_ATTRIBUTES.sends]?.N;
  if (sends !== undefined) bucket.sends = Number(sends);
  return bucket;
}

/** The user's fields are stored under the user's key; the id itself lives only in the key. */
function userItem(userId: string, sortKey: string, fields: Record<string, unknown>): Item {
  return { ...toItem(fields), [TABLE_KEYS.partitionKey]: { S: userKey(userId) }, [TABLE_KEYS.sortKey]: { S: sortKey } };
}

function userIdOf(item: Item): string {
  return (item[TABLE_KEYS.partitionKey]?.S ?? '').slice(USER_PREFIX.length);
}

/** Item fields without the table's keys and index key. */
function storedFields(item: Item): Record<string, unknown> {
  const { [TABLE_KEYS.partitionKey]: _pk, [TABLE_KEYS.sortKey]: _sk, [TABLE_KEYS.reviewPartitionKey]: _review, ...rest } = item;
  return fromItem(rest);
}

function profileOf(item: Item, operation: StoreOperation): UserProfile {
  const fields = storedFields(item);
  const userId = userIdOf(item);
  if (typeof fields['tier'] !== 'string' || typeof fields[PROFILE_VERSION_ATTRIBUTE] !== 'number') {
    throw new StoreError(operation, `the profile item of ${userRef(userId)} has no tier or version`);
  }
  return { attributes: {}, ...fields, userId } as UserProfile;
}

function historyEntryOf(item: Item): HistoryEntry {
  return { ...storedFields(item), userId: userIdOf(item) } as HistoryEntry;
}

// ---------------------------------------------------------------------------------------------------------------
// Cursors of the review index: the LastEvaluatedKey, as base64url JSON.

function encodeCursor(lastEvaluatedKey: Item): string {
  return Buffer.from(JSON.stringify(lastEvaluatedKey)).toString('base64url');
}

function decodeCursor(cursor: string, expectedPartition: string): Item {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (error) {
    throw new StoreError('listDueForReview', 'the cursor is not one this store returned', { cause: error });
  }
  const isStringKey = (value: unknown): boolean => typeof value === 'object' && value !== null && typeof (value as AttributeValue).S === 'string';
  const valid =
    typeof key === 'object' &&
    key !== null &&
    Object.values(key).every(isStringKey) &&
    (key as Item)[TABLE_KEYS.reviewPartitionKey]?.S === expectedPartition;
  if (!valid) throw new StoreError('listDueForReview', `the cursor does not belong to ${expectedPartition}`);
  return key as Item;
}

/** A Scan cursor: a LastEvaluatedKey of the table itself (partition and sort key strings). */
function decodeScanCursor(cursor: string): Item {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (error) {
    throw new StoreError('scanUserIds', 'the cursor is not one this store returned', { cause: error });
  }
  const item = key as Item;
  if (typeof item?.[TABLE_KEYS.partitionKey]?.S !== 'string' || typeof item[TABLE_KEYS.sortKey]?.S !== 'string') {
    throw new StoreError('scanUserIds', 'the cursor is not a key of this table');
  }
  return { [TABLE_KEYS.partitionKey]: item[TABLE_KEYS.partitionKey]!, [TABLE_KEYS.sortKey]: item[TABLE_KEYS.sortKey]! };
}

// ---------------------------------------------------------------------------------------------------------------

export function createDynamoTierStore(options: DynamoTierStoreOptions): DynamoTierStore {
  const { client, tableName, shardCount, onCapacity } = options;
  const timeZone = options.timeZone ?? 'UTC';
  const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError(`DynamoStore: shardCount must be a positive integer, got ${shardCount}`);
  if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new RangeError(`DynamoStore: retentionDays must be a positive integer, got ${retentionDays}`);

  const common = { TableName: tableName, ReturnConsumedCapacity: 'TOTAL' } as const;
  const names = { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey } as const;

  /** Reports what a request consumed. DynamoDB (and dynalite) give one total; the operation says which kind. */
  async function metered<Output extends { ConsumedCapacity?: ConsumedCapacity }>(
    operation: StoreOperation,
    kind: keyof CapacityUnits,
    request: Promise<Output>,
  ): Promise<Output> {
    const output = await request;
    const consumed = output.ConsumedCapacity;
    if (onCapacity && consumed) {
      const total = consumed.CapacityUnits ?? 0;
      onCapacity(operation, {
        read: consumed.ReadCapacityUnits ?? (kind === 'read' ? total : 0),
        write: consumed.WriteCapacityUnits ?? (kind === 'write' ? total : 0),
      });
    }
    return output;
  }

  /** Transient errors pass through untouched for the caller to retry; anything else becomes a StoreError. */
  async function guarded<T>(operation: StoreOperation, userId: string | undefined, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof StoreError || isTransientError(error)) throw error;
      const subject = userId === undefined ? '' : ` for ${userRef(userId)}`;
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new StoreError(operation, `failed${subject} (${reason})`, { cause: error });
    }
  }

  /** Every page of a Query, each metered. */
  async function queryAll(operation: StoreOperation, input: Omit<QueryCommandInput, 'TableName'>, limit = Infinity): Promise<Item[]> {
    const items: Item[] = [];
    let exclusiveStartKey: Item | undefined;
    do {
      const page: QueryCommandOutput = await metered(
        operation,
        'read',
        client.send(new QueryCommand({ ...common, ...input, ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}) })),
      );
      items.push(...(page.Items ?? []));
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey && items.length < limit);
    return items.slice(0, limit);
  }

  /** One consistent Query returns the window's day items and the profile: DAY#… sorts before PROFILE. */
  async function loadWindow(operation: StoreOperation, userId: string, fromDate: string): Promise<{ profile: UserProfile | undefined; buckets: DayBucket[] }> {
    return guarded(operation, userId, async () => {
      const items = await queryAll(operation, {
        ConsistentRead: true,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :profile',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':pk': { S: userKey(userId) }, ':from': { S: dayKey(fromDate) }, ':profile': { S: PROFILE_KEY } },
      });
      let profile: UserProfile | undefined;
      const buckets: DayBucket[] = [];
      for (const item of items) {
        const sortKey = item[TABLE_KEYS.sortKey]?.S ?? '';
        if (sortKey === PROFILE_KEY) profile = profileOf(item, operation);
        else if (sortKey.startsWith(DAY_PREFIX)) buckets.push(dayBucketOf(item));
      }
      return { profile, buckets };
    });
  }

  const dayItemKey = (userId: string, date: string): Item => ({
    [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
    [TABLE_KEYS.sortKey]: { S: dayKey(date) },
  });
  /** The TTL attribute: the day item outlives every window that can still count it. */
  const expiresAt = (date: string): AttributeValue => ({ N: String(startOfLocalDay(addDays(date, retentionDays), timeZone)) });

  const reviewPartitionOf = (userId: string, date: string): string => reviewPartition(date, reviewShard(userId, shardCount));

  const systemKey = (sortKey: string): Item => ({ [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: sortKey } });
  async function readSystemItem(sortKey: string): Promise<Item | undefined> {
    const { Item: item } = await metered('rejudgeCheckpoint', 'read', client.send(new GetItemCommand({ ...common, Key: systemKey(sortKey), ConsistentRead: true })));
    return item;
  }
  async function writeSystemItem(sortKey: string, fields: Record<string, unknown>): Promise<void> {
    await metered('rejudgeCheckpoint', 'write', client.send(new PutItemCommand({ ...common, Item: { ...toItem(fields), ...systemKey(sortKey) } })));
  }

  return {
    recordEvent(userId, eventKey, increment: DayIncrement) {
      return guarded('recordEvent', userId, async () => {
        const attributeNames: Record<string, string> = { '#ids': DAY_ATTRIBUTES.eventKeys, '#expiresAt': TABLE_KEYS.timeToLiveAttribute };
        const values: Item = { ':key': { S: eventKey }, ':keys': { SS: [eventKey] }, ':expiresAt': expiresAt(increment.date) };
        const additions = ['#ids :keys'];
        Object.entries(increment.counters).forEach(([counterId, amount], i) => {
          attributeNames[`#c${i}`] = counterId;
          values[`:c${i}`] = toAttribute(amount, counterId)!;
          additions.push(`#c${i} :c${i}`);
        });
        if (increment.signals.length > 0) {
          attributeNames['#sig'] = DAY_ATTRIBUTES.signals;
          // A string set refuses duplicates in its input.
          values[':sig'] = { SS: [...new Set(increment.signals)] };
          additions.push('#sig :sig');
        }
        const applied = await unlessConditionFails(
          metered(
            'recordEvent',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: dayItemKey(userId, increment.date),
                UpdateExpression: `ADD ${additions.join(', ')} SET #expiresAt = :expiresAt`,
                ConditionExpression: 'NOT contains(#ids, :key)',
                ExpressionAttributeNames: attributeNames,
                ExpressionAttributeValues: values,
              }),
            ),
          ),
        );
        return { duplicate: applied === undefined };
      });
    },

    loadUser(userId, fromDate) {
      return loadWindow('loadUser', userId, fromDate);
    },

    loadUserForJourney(userId, sinceDate) {
      return loadWindow('loadUserForJourney', userId, sinceDate);
    },

    saveProfile(profile, expectedVersion) {
      return guarded('saveProfile', profile.userId, async () => {
        const { userId, version: _previous, ...fields } = profile;
        const item = userItem(userId, PROFILE_KEY, { ...fields, [PROFILE_VERSION_ATTRIBUTE]: expectedVersion + 1 });
        // The review index is sparse: a profile with no review date is simply not in it.
        const indexDate = reviewIndexDate(profile);
        if (indexDate !== undefined) item[TABLE_KEYS.reviewPartitionKey] = { S: reviewPartitionOf(userId, indexDate) };
        const written = await unlessConditionFails(
          metered(
            'saveProfile',
            'write',
            client.send(
              new PutItemCommand({
                ...common,
                Item: item,
                ...(expectedVersion === 0
                  ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey } }
                  : {
                      ConditionExpression: '#version = :expected',
                      ExpressionAttributeNames: { '#version': PROFILE_VERSION_ATTRIBUTE },
                      ExpressionAttributeValues: { ':expected': { N: String(expectedVersion) } },
                    }),
              }),
            ),
          ),
        );
        return written !== undefined;
      });
    },

    appendHistory(entry) {
      return guarded('appendHistory', entry.userId, async () => {
        const { userId, ...fields } = entry;
        // Keyed by the version the change produced, so writing the same entry again overwrites it with itself.
        await metered('appendHistory', 'write', client.send(new PutItemCommand({ ...common, Item: userItem(userId, historyKey(entry.version), fields) })));
      });
    },

    clearOutbox(profile) {
      return guarded('clearOutbox', profile.userId, async () => {
        if (profile.outboxVersion === undefined) return;
        const attributeNames: Record<string, string> = {
          '#outboxVersion': 'outboxVersion' satisfies keyof UserProfile,
          '#reviewAt': 'reviewAt' satisfies keyof UserProfile,
          '#reviewPk': TABLE_KEYS.reviewPartitionKey,
        };
        const removals = OUTBOX_FIELDS.map((field) => {
          attributeNames[`#${field}`] = field;
          return `#${field}`;
        });
        const values: Item = { ':outboxVersion': { N: String(profile.outboxVersion) } };
        let setReviewPartition = '';
        // The index key is rebuilt from this profile's reviewAt, so the stored one must still be the same: a later
        // write that moved it also carried the outbox forward, and clears it itself after its own flush.
        let reviewAtUnchanged: string;
        if (profile.reviewAt !== undefined) {
          values[':reviewAt'] = { S: profile.reviewAt };
          values[':reviewPk'] = { S: reviewPartitionOf(profile.userId, profile.reviewAt) };
          setReviewPartition = ' SET #reviewPk = :reviewPk';
          reviewAtUnchanged = '#reviewAt = :reviewAt';
        } else {
          removals.push('#reviewPk');
          reviewAtUnchanged = 'attribute_not_exists(#reviewAt)';
        }
        await unlessConditionFails(
          metered(
            'clearOutbox',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: { [TABLE_KEYS.partitionKey]: { S: userKey(profile.userId) }, [TABLE_KEYS.sortKey]: { S: PROFILE_KEY } },
                UpdateExpression: `REMOVE ${removals.join(', ')}${setReviewPartition}`,
                // A newer decision that added to the outbox changed outboxVersion; its own flush clears it.
                ConditionExpression: `#outboxVersion = :outboxVersion AND ${reviewAtUnchanged}`,
                ExpressionAttributeNames: attributeNames,
                ExpressionAttributeValues: values,
              }),
            ),
          ),
        );
      });
    },

    listDueForReview(date, shard, cursor) {
      return guarded('listDueForReview', undefined, async () => {
        const partition = reviewPartition(date, shard);
        const page = await metered(
          'listDueForReview',
          'read',
          client.send(
            new QueryCommand({
              ...common,
              IndexName: TABLE_KEYS.reviewIndexName,
              KeyConditionExpression: '#reviewPk = :partition',
              ExpressionAttributeNames: { '#reviewPk': TABLE_KEYS.reviewPartitionKey },
              ExpressionAttributeValues: { ':partition': { S: partition } },
              Limit: REVIEW_PAGE_SIZE,
              ...(cursor !== undefined ? { ExclusiveStartKey: decodeCursor(cursor, partition) } : {}),
            }),
          ),
        );
        const userIds = (page.Items ?? []).map(userIdOf);
        return page.LastEvaluatedKey ? { userIds, cursor: encodeCursor(page.LastEvaluatedKey) } : { userIds };
      });
    },

    getReviewCheckpoint() {
      return guarded('getReviewCheckpoint', undefined, async () => {
        const { Item: item } = await metered(
          'getReviewCheckpoint',
          'read',
          client.send(
            new GetItemCommand({
              ...common,
              Key: { [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: REVIEW_CHECKPOINT_KEY } },
              ConsistentRead: true,
            }),
          ),
        );
        return item?.[CHECKPOINT_DATE_ATTRIBUTE]?.S;
      });
    },

    setReviewCheckpoint(date) {
      return guarded('setReviewCheckpoint', undefined, async () => {
        // Only forward: a slow rerun of an old night must not make the next run review it again.
        await unlessConditionFails(
          metered(
            'setReviewCheckpoint',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: { [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: REVIEW_CHECKPOINT_KEY } },
                UpdateExpression: 'SET #date = :date',
                ConditionExpression: 'attribute_not_exists(#date) OR #date < :date',
                ExpressionAttributeNames: { '#date': CHECKPOINT_DATE_ATTRIBUTE },
                ExpressionAttributeValues: { ':date': { S: date } },
              }),
            ),
          ),
        );
      });
    },

    listHistory(userId, limit) {
      return guarded('listHistory', userId, async () => {
        if (limit <= 0) return [];
        const items = await queryAll(
          'listHistory',
          {
            KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :history)',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ':pk': { S: userKey(userId) }, ':history': { S: HISTORY_PREFIX } },
            ScanIndexForward: false,
            Limit: limit,
          },
          limit,
        );
        return items.map(historyEntryOf);
      });
    },

    // ---- Review upkeep: a failed user listed again, and the shard count kept in the checkpoint item ----------
    deferReview(userId, date) {
      return guarded('deferReview', userId, async () => {
        // Only the index key: the profile may be the very item that cannot be read, so nothing else is touched.
        await unlessConditionFails(
          metered(
            'deferReview',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: { [TABLE_KEYS.partitionKey]: { S: userKey(userId) }, [TABLE_KEYS.sortKey]: { S: PROFILE_KEY } },
                UpdateExpression: 'SET #reviewPk = :reviewPk',
                ConditionExpression: 'attribute_exists(#pk)',
                ExpressionAttributeNames: { '#reviewPk': TABLE_KEYS.reviewPartitionKey, '#pk': TABLE_KEYS.partitionKey },
                ExpressionAttributeValues: { ':reviewPk': { S: reviewPartitionOf(userId, date) } },
              }),
            ),
          ),
        );
      });
    },

    widenReviewShardCount(current) {
      return guarded('widenReviewShardCount', undefined, async () => {
        const key = { [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: REVIEW_CHECKPOINT_KEY } };
        const { Item: item } = await metered('widenReviewShardCount', 'read', client.send(new GetItemCommand({ ...common, Key: key, ConsistentRead: true })));
        const stored = Number(item?.[CHECKPOINT_SHARD_COUNT_ATTRIBUTE]?.N ?? 0);
        if (stored >= current) return stored;
        const written = await unlessConditionFails(
          metered(
            'widenReviewShardCount',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: key,
                UpdateExpression: 'SET #shards = :shards',
                // Never lowered: a concurrent run that recorded more wins.
                ConditionExpression: 'attribute_not_exists(#shards) OR #shards < :shards',
                ExpressionAttributeNames: { '#shards': CHECKPOINT_SHARD_COUNT_ATTRIBUTE },
                ExpressionAttributeValues: { ':shards': { N: String(current) } },
              }),
            ),
          ),
        );
        if (written !== undefined) return current;
        const { Item: now } = await metered('widenReviewShardCount', 'read', client.send(new GetItemCommand({ ...common, Key: key, ConsistentRead: true })));
        return Math.max(current, Number(now?.[CHECKPOINT_SHARD_COUNT_ATTRIBUTE]?.N ?? 0));
      });
    },
    // ---- end of review upkeep --------------------------------------------------------------------------------

    recordSend(userId, date, sendId) {
      return guarded('recordSend', userId, async () => {
        const recorded = await unlessConditionFails(
          metered(
            'recordSend',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: dayItemKey(userId, date),
                UpdateExpression: 'ADD #sends :one, #sendIds :sendIds SET #expiresAt = :expiresAt',
                ConditionExpression: 'NOT contains(#sendIds, :sendId)',
                ExpressionAttributeNames: {
                  '#sends': DAY_ATTRIBUTES.sends,
                  '#sendIds': DAY_ATTRIBUTES.sendIds,
                  '#expiresAt': TABLE_KEYS.timeToLiveAttribute,
                },
                ExpressionAttributeValues: {
                  ':one': { N: '1' },
                  ':sendIds': { SS: [sendId] },
                  ':sendId': { S: sendId },
                  ':expiresAt': expiresAt(date),
                },
              }),
            ),
          ),
        );
        return recorded !== undefined;
      });
    },

    // ---- Operator: erasure (a block of its own; it reads the partition, so it follows any layout change) ----

    deleteUserItems(userId) {
      return guarded('deleteUserItems', userId, async () => {
        // Every item under the user's key, whatever its kind: keys only, so the read is as small as it can be.
        const keys = (
          await queryAll('deleteUserItems', {
            ConsistentRead: true,
            KeyConditionExpression: '#pk = :pk',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ':pk': { S: userKey(userId) } },
            ProjectionExpression: '#pk, #sk',
          })
        ).map((item): Item => ({ [TABLE_KEYS.partitionKey]: item[TABLE_KEYS.partitionKey]!, [TABLE_KEYS.sortKey]: item[TABLE_KEYS.sortKey]! }));
        for (let start = 0; start < keys.length; start += MAX_BATCH_WRITE_ITEMS) {
          let requests = keys.slice(start, start + MAX_BATCH_WRITE_ITEMS).map((Key) => ({ DeleteRequest: { Key } }));
          for (let attempt = 0; requests.length > 0; attempt++) {
            if (attempt >= MAX_UNPROCESSED_RETRIES) {
              throw new StoreError('deleteUserItems', `${requests.length} deletes of ${userRef(userId)} stayed unprocessed; run the erasure again (it is safe to repeat)`);
            }
            if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
            const output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests }, ReturnConsumedCapacity: 'TOTAL' }));
            // A batch reports one entry per table, not the single total `metered` reads.
            const units = (output.ConsumedCapacity ?? []).reduce((sum, consumed) => sum + (consumed.CapacityUnits ?? 0), 0);
            onCapacity?.('deleteUserItems', { read: 0, write: units });
            requests = (output.UnprocessedItems?.[tableName] ?? []).flatMap((request) => (request.DeleteRequest?.Key ? [{ DeleteRequest: { Key: request.DeleteRequest.Key } }] : []));
          }
        }
        return { deleted: keys.length };
      });
    },

    // ---- Re-judge after a ruleset change (a block of its own): a Scan of the profiles, and its checkpoint ----

    scanUserIds(segment, totalSegments, cursor) {
      return guarded('scanUserIds', undefined, async () => {
        const page = await metered(
          'scanUserIds',
          'read',
          client.send(
            new ScanCommand({
              ...common,
              Segment: segment,
              TotalSegments: totalSegments,
              Limit: REJUDGE_SCAN_PAGE,
              FilterExpression: '#sk = :profile',
              ProjectionExpression: '#pk',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ':profile': { S: PROFILE_KEY } },
              ...(cursor !== undefined ? { ExclusiveStartKey: decodeScanCursor(cursor) } : {}),
            }),
          ),
        );
        const userIds = (page.Items ?? []).map(userIdOf);
        return page.LastEvaluatedKey ? { userIds, cursor: encodeCursor(page.LastEvaluatedKey) } : { userIds };
      });
    },

    getRejudgedVersion() {
      return guarded('rejudgeCheckpoint', undefined, async () => (await readSystemItem(REJUDGED_VERSION_KEY))?.['rulesetVersion']?.S);
    },

    setRejudgedVersion(version) {
      return guarded('rejudgeCheckpoint', undefined, async () => {
        await writeSystemItem(REJUDGED_VERSION_KEY, { rulesetVersion: version });
      });
    },

    getRejudgeProgress(version, segment) {
      return guarded('rejudgeCheckpoint', undefined, async () => {
        const item = await readSystemItem(rejudgeProgressKey(version, segment));
        if (!item) return undefined;
        const progress: RejudgeProgress = { done: item['done']?.BOOL === true };
        if (item['cursor']?.S !== undefined) progress.cursor = item['cursor'].S;
        return progress;
      });
    },

    setRejudgeProgress(version, segment, progress) {
      return guarded('rejudgeCheckpoint', undefined, async () => {
        await writeSystemItem(rejudgeProgressKey(version, segment), { ...progress });
      });
    },
  };
}
