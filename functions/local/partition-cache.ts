/**
 * A read-through, write-through cache of consistent range Queries, for the embedded stack's own DynamoDB client.
 *
 * Every event reads its user's window (day items and profile) with one consistent Query, then writes to the same
 * partition; over the in-process channel that Query was about a third of the stack's DynamoDB calls and the most
 * expensive one to serialise, answer and parse. The stack is the only writer of its table except for other processes
 * that come in over dynalite's TCP port, so a partition's items can be kept here exactly:
 *
 * - A consistent Query of the form `pk = :v AND sk BETWEEN :a AND :b` (no filter, projection, limit, index or
 *   start key) fills an entry with every item in that range; a later such Query inside the range is answered from
 *   it, with the Count and ConsumedCapacity dynalite would give (its own size function).
 * - Each write of this client to a cached range keeps the entry equal to the table: an UpdateItem asks for
 *   `ReturnValues: ALL_NEW` (taken off the answer again) and stores the item dynalite wrote; a PutItem stores its
 *   item when dynalite stores it unchanged (numbers already canonical), otherwise the entry goes; a DeleteItem
 *   removes it. A failed condition changes nothing; any other failure drops the entry.
 * - Anything uncertain drops entries instead of guessing: two writes in flight on one partition, a write issued
 *   while a Query of that partition is in flight (its answer is not cached), any other write command (all entries),
 *   and any write request that reaches dynalite over TCP (all entries; counted in memory shared with its thread,
 *   before dynalite reads the request and after it answers, so no entry outlives or straddles one).
 * - Bounded: least recently used partitions go past `maxBytes` (dynalite's item size).
 *
 * Memory only: a restart starts empty. Proven equal to the uncached client by test/adapters/partition-cache.test.ts.
 */
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createRequire } from 'node:module';

type Item = Record<string, AttributeValue>;
type Input = Record<string, unknown>;

/**
 * Counters of write requests that reach dynalite over TCP, shared with its thread: [arrived, answered].
 * While they differ, a write from another process is in progress.
 */
export const EXTERNAL_WRITE_COUNTERS = 2;

/** Operations that cannot change the table (over TCP, every other one is counted as a write; in the client, passed by). */
const READ_ONLY_TARGETS = new Set([
  'GetItem',
  'BatchGetItem',
  'Query',
  'Scan',
  'DescribeTable',
  'ListTables',
  'DescribeTimeToLive',
  'ListTagsOfResource',
]);

/** True when an HTTP request to dynalite (by its `x-amz-target` header) may change the table. */
export function isWriteTarget(target: string | undefined): boolean {
  const operation = target?.slice(target.indexOf('.') + 1);
  return operation === undefined || !READ_ONLY_TARGETS.has(operation);
}

// dynalite's own item size (what it meters and pages Queries by), so that answers from the cache carry the same figures.
const requireFromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
let dynaliteDb: { itemSize(item: Item, compress?: boolean, addMetaSize?: boolean, rangeKey?: string): number } | undefined;
let Big: (new (value: string) => { toFixed(): string }) | undefined;
function dynaliteItemSize(item: Item, compress = false, rangeKey?: string): number {
  dynaliteDb ??= requireFromDynalite('./db/index.js');
  return compress ? dynaliteDb!.itemSize(item, true, true, rangeKey) : dynaliteDb!.itemSize(item);
}

/** dynalite stores a number as big.js's `toFixed()` of it; an item is stored unchanged only if every number is so. */
function numbersStoredUnchanged(value: AttributeValue): boolean {
  Big ??= requireFromDynalite('big.js');
  const canonical = (n: string): boolean => {
    try {
      return new Big!(n).toFixed() === n;
    } catch {
      return false;
    }
  };
  if (value.N !== undefined) return canonical(value.N);
  if (value.NS !== undefined) return value.NS.every(canonical);
  if (value.L !== undefined) return value.L.every(numbersStoredUnchanged);
  if (value.M !== undefined) return Object.values(value.M).every(numbersStoredUnchanged);
  return true;
}

/**
 * A copy of an item down to its sets, lists and maps: what the cache hands out and keeps must not share any array or
 * object that a caller might change (the store passes string sets on as they are).
 */
function copyItem(item: Item): Item {
  const copy: Item = {};
  for (const name in item) copy[name] = copyValue(item[name]!);
  return copy;
}
function copyValue(value: AttributeValue): AttributeValue {
  if (value.SS !== undefined) return { SS: [...value.SS] };
  if (value.NS !== undefined) return { NS: [...value.NS] };
  if (value.BS !== undefined) return { BS: value.BS.map((bytes) => Uint8Array.from(bytes)) };
  if (value.L !== undefined) return { L: value.L.map(copyValue) };
  if (value.M !== undefined) return { M: copyItem(value.M) };
  if (value.B !== undefined) return { B: Uint8Array.from(value.B) };
  return { ...value } as AttributeValue;
}

/** dynalite orders string keys by their UTF-8 bytes; JavaScript compares UTF-16 code units. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const surrogateA = ca >= 0xd800 && ca <= 0xdfff;
    const surrogateB = cb >= 0xd800 && cb <= 0xdfff;
    // A surrogate is part of a code point above U+FFFF, which sorts after every other in UTF-8.
    if (surrogateA !== surrogateB) return surrogateA ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

const MAX_RANGE_KEY_BYTES = 1024;
const MAX_HASH_KEY_BYTES = 2048;
const QUERY_PAGE_BYTES = 1024 * 1024;
/** The Query parameters the cache can answer with (each then checked for the values it can); any other goes to dynalite. */
const RANGE_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  'TableName',
  'KeyConditionExpression',
  'ExpressionAttributeNames',
  'ExpressionAttributeValues',
  'ConsistentRead',
  'ReturnConsumedCapacity',
  'ScanIndexForward',
  'Select',
]);
const KEY_CONDITION = /^\s*(#?\w+)\s*=\s*(:\w+)\s+AND\s+(#?\w+)\s+BETWEEN\s+(:\w+)\s+AND\s+(:\w+)\s*$/i;

interface CachedItem {
  sortKey: string;
  item: Item;
  /** dynalite's size of the item, as it meters reads. */
  size: number;
  /** dynalite's stored size, as it pages Queries. */
  pageSize: number;
}

interface Entry {
  from: string;
  to: string;
  /** Sorted by sort key in dynalite's order. */
  items: CachedItem[];
  bytes: number;
}

interface InFlight {
  writes: number;
  /** A second write was issued while one was in flight: their answers' order is not known. */
  overlapping: boolean;
  /** Queries in flight whose answers may still be cached; a write issued meanwhile spoils them. */
  fills: Set<{ spoiled: boolean }>;
}

export interface PartitionCacheOptions {
  tableName: string;
  partitionKey: string;
  sortKey: string;
  /** Shared [arrived, answered] counters of dynalite's TCP write requests (see EXTERNAL_WRITE_COUNTERS). */
  externalWrites: Int32Array;
  /** Bound on the cached items, in dynalite's item size. */
  maxBytes: number;
}

export interface PartitionCache {
  /** Hits, misses (Queries the cache could serve but did not hold), and Queries it passed by. */
  readonly stats: { hits: number; misses: number; bypassed: number };
  readonly bytes: number;
  /** Drops every entry (for example when something else may have written the table). */
  clear(): void;
}

interface RangeQuery {
  partition: string;
  from: string;
  to: string;
}

export function cachePartitions(client: DynamoDBClient, options: PartitionCacheOptions): PartitionCache {
  const { tableName, partitionKey, sortKey, externalWrites, maxBytes } = options;
  const entries = new Map<string, Entry>();
  const inFlight = new Map<string, InFlight>();
  /** Writes of commands other than UpdateItem, PutItem and DeleteItem in flight: they may touch any partition. */
  let otherWrites = 0;
  const allFills = new Set<{ spoiled: boolean }>();
  let bytes = 0;
  let externalSeen = Atomics.load(externalWrites, 1);
  const stats = { hits: 0, misses: 0, bypassed: 0 };

  const drop = (partition: string): void => {
    const entry = entries.get(partition);
    if (!entry) return;
    bytes -= entry.bytes;
    entries.delete(partition);
  };
  const clear = (): void => {
    entries.clear();
    bytes = 0;
  };
  /** False while another process writes; drops everything once one has written since the last look. */
  const externallyQuiet = (): boolean => {
    const arrived = Atomics.load(externalWrites, 0);
    const answered = Atomics.load(externalWrites, 1);
    if (arrived === answered && answered === externalSeen) return true;
    clear();
    if (arrived !== answered) return false;
    externalSeen = answered;
    return true;
  };
  const flightOf = (partition: string): InFlight => {
    let flight = inFlight.get(partition);
    if (!flight) {
      flight = { writes: 0, overlapping: false, fills: new Set() };
      inFlight.set(partition, flight);
    }
    return flight;
  };
  const settle = (partition: string, flight: InFlight): void => {
    if (flight.writes === 0 && flight.fills.size === 0) inFlight.delete(partition);
  };
  const cachedItem = (item: Item): CachedItem => ({
    sortKey: item[sortKey]?.S ?? '',
    item: copyItem(item),
    size: dynaliteItemSize(item),
    pageSize: dynaliteItemSize(item, true, sortKey),
  });
  const inRange = (entry: Entry, key: string): boolean => compareUtf8(key, entry.from) >= 0 && compareUtf8(key, entry.to) <= 0;
  const position = (entry: Entry, key: string): number => {
    let low = 0;
    let high = entry.items.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (compareUtf8(entry.items[middle]!.sortKey, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  const store = (partition: string, entry: Entry, key: string, item: Item | undefined): void => {
    const at = position(entry, key);
    const existing = entry.items[at]?.sortKey === key ? entry.items[at] : undefined;
    const cached = item ? cachedItem(item) : undefined;
    const change = (cached?.size ?? 0) - (existing?.size ?? 0);
    if (existing && cached) entry.items[at] = cached;
    else if (existing) entry.items.splice(at, 1);
    else if (cached) entry.items.splice(at, 0, cached);
    entry.bytes += change;
    bytes += change;
    evictBeyondBound(partition);
  };
  const evictBeyondBound = (keep?: string): void => {
    for (const partition of entries.keys()) {
      if (bytes <= maxBytes) return;
      if (partition !== keep) drop(partition);
    }
  };

  /** The Query's partition and range when the cache can answer it exactly as dynalite would, else undefined. */
  function rangeQuery(input: Input): RangeQuery | undefined {
    if (Object.entries(input).some(([name, value]) => value !== undefined && !RANGE_QUERY_PARAMETERS.has(name))) return undefined;
    if (input['TableName'] !== tableName || input['ConsistentRead'] !== true) return undefined;
    if (input['ScanIndexForward'] !== undefined && input['ScanIndexForward'] !== true) return undefined;
    if (input['Select'] !== undefined && input['Select'] !== 'ALL_ATTRIBUTES') return undefined;
    const capacity = input['ReturnConsumedCapacity'];
    if (capacity !== undefined && capacity !== 'TOTAL' && capacity !== 'NONE') return undefined;
    const match = KEY_CONDITION.exec(String(input['KeyConditionExpression'] ?? ''));
    if (!match) return undefined;
    const [, hashName, hashValue, rangeName, fromValue, toValue] = match as unknown as string[];
    const names = (input['ExpressionAttributeNames'] ?? {}) as Record<string, string>;
    const values = (input['ExpressionAttributeValues'] ?? {}) as Record<string, AttributeValue>;
    // dynalite refuses names and values the expression does not use: leave those requests to it.
    const usedNames = [hashName!, rangeName!].filter((name) => name.startsWith('#'));
    if (Object.keys(names).some((name) => !usedNames.includes(name))) return undefined;
    if (Object.keys(values).some((value) => ![hashValue, fromValue, toValue].includes(value))) return undefined;
    const resolve = (name: string): string | undefined => (name.startsWith('#') ? names[name] : name);
    if (resolve(hashName!) !== partitionKey || resolve(rangeName!) !== sortKey) return undefined;
    const partition = values[hashValue!]?.S;
    const from = values[fromValue!]?.S;
    const to = values[toValue!]?.S;
    if (!partition || !from || !to || Object.keys(values[hashValue!]!).length !== 1) return undefined;
    if (Object.keys(values[fromValue!]!).length !== 1 || Object.keys(values[toValue!]!).length !== 1) return undefined;
    if (
      Buffer.byteLength(partition) > MAX_HASH_KEY_BYTES ||
      Buffer.byteLength(from) > MAX_RANGE_KEY_BYTES ||
      Buffer.byteLength(to) > MAX_RANGE_KEY_BYTES
    )
      return undefined;
    if (compareUtf8(from, to) > 0) return undefined;
    return { partition, from, to };
  }

  function answer(entry: Entry, query: RangeQuery, input: Input): Record<string, unknown> | undefined {
    const items: Item[] = [];
    let size = 0;
    let pageBytes = 0;
    for (let i = position(entry, query.from); i < entry.items.length; i += 1) {
      const cached = entry.items[i]!;
      if (compareUtf8(cached.sortKey, query.to) > 0) break;
      items.push(copyItem(cached.item));
      size += cached.size;
      pageBytes += cached.pageSize;
    }
    // dynalite ends a page at 1 MB with a LastEvaluatedKey; such a Query goes to it.
    if (pageBytes >= QUERY_PAGE_BYTES) return undefined;
    return {
      $metadata: { httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 },
      ...(input['ReturnConsumedCapacity'] === 'TOTAL'
        ? { ConsumedCapacity: { CapacityUnits: Math.ceil(size / 1024 / 4), TableName: tableName } }
        : {}),
      Count: items.length,
      Items: items,
      ScannedCount: items.length,
    };
  }

  type Next = (args: { input: Input }) => Promise<{ output: Record<string, unknown> }>;

  async function query(next: Next, args: { input: Input }): Promise<{ output: Record<string, unknown> }> {
    const range = rangeQuery(args.input);
    const flight = range ? inFlight.get(range.partition) : undefined;
    if (!range || !externallyQuiet() || otherWrites > 0 || (flight && flight.writes > 0)) {
      stats.bypassed += 1;
      return next(args);
    }
    const entry = entries.get(range.partition);
    if (entry && compareUtf8(range.from, entry.from) >= 0 && compareUtf8(range.to, entry.to) <= 0) {
      const output = answer(entry, range, args.input);
      if (output) {
        stats.hits += 1;
        entries.delete(range.partition);
        entries.set(range.partition, entry);
        return { output };
      }
    }
    stats.misses += 1;
    const fill = { spoiled: false };
    const own = flightOf(range.partition);
    own.fills.add(fill);
    allFills.add(fill);
    const answeredBefore = Atomics.load(externalWrites, 1);
    try {
      const result = await next(args);
      const output = result.output as { Items?: Item[]; LastEvaluatedKey?: Item };
      if (!fill.spoiled && !output.LastEvaluatedKey && externallyQuiet() && externalSeen === answeredBefore) {
        const items = (output.Items ?? []).map(cachedItem);
        drop(range.partition);
        const filled: Entry = { from: range.from, to: range.to, items, bytes: items.reduce((sum, { size }) => sum + size, 0) };
        entries.set(range.partition, filled);
        bytes += filled.bytes;
        evictBeyondBound(range.partition);
        if (bytes > maxBytes) drop(range.partition);
      }
      return result;
    } finally {
      own.fills.delete(fill);
      allFills.delete(fill);
      settle(range.partition, own);
    }
  }

  async function write(
    command: 'UpdateItem' | 'PutItem' | 'DeleteItem',
    next: Next,
    args: { input: Input },
  ): Promise<{ output: Record<string, unknown> }> {
    const input = args.input;
    if (input['TableName'] !== tableName) return next(args);
    const key = (command === 'PutItem' ? input['Item'] : input['Key']) as Item | undefined;
    const partition = key?.[partitionKey]?.S;
    const itemKey = key?.[sortKey]?.S;
    if (partition === undefined || itemKey === undefined) return otherWrite(next, args);
    const flight = flightOf(partition);
    flight.writes += 1;
    if (flight.writes > 1) flight.overlapping = true;
    for (const fill of flight.fills) fill.spoiled = true;
    const entry = entries.get(partition);
    const returnValues = input['ReturnValues'];
    let askedForNewItem = false;
    let sent = args;
    if (entry && inRange(entry, itemKey)) {
      if (command === 'UpdateItem' && (returnValues === undefined || returnValues === 'NONE')) {
        sent = { ...args, input: { ...input, ReturnValues: 'ALL_NEW' } };
        askedForNewItem = true;
      } else if (command === 'UpdateItem') drop(partition);
    }
    try {
      const result = await next(sent);
      const current = entries.get(partition);
      if (!externallyQuiet() || flight.overlapping) drop(partition);
      else if (current && inRange(current, itemKey)) {
        if (current !== entry) drop(partition);
        else if (command === 'UpdateItem' && askedForNewItem && result.output['Attributes'])
          store(partition, current, itemKey, result.output['Attributes'] as Item);
        else if (command === 'PutItem' && Object.values(key!).every(numbersStoredUnchanged)) store(partition, current, itemKey, key!);
        else if (command === 'DeleteItem') store(partition, current, itemKey, undefined);
        else drop(partition);
      }
      if (askedForNewItem) delete result.output['Attributes'];
      return result;
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException' || flight.overlapping) drop(partition);
      throw error;
    } finally {
      flight.writes -= 1;
      if (flight.writes === 0) flight.overlapping = false;
      settle(partition, flight);
    }
  }

  async function otherWrite(next: Next, args: { input: Input }): Promise<{ output: Record<string, unknown> }> {
    otherWrites += 1;
    clear();
    for (const fill of allFills) fill.spoiled = true;
    try {
      return await next(args);
    } finally {
      otherWrites -= 1;
      clear();
    }
  }

  client.middlewareStack.add(
    (next, context) => (args) => {
      const name = (context as { commandName?: string }).commandName ?? '';
      const run = next as unknown as Next;
      const typed = args as unknown as { input: Input };
      let result: Promise<{ output: Record<string, unknown> }>;
      if (name === 'QueryCommand') result = query(run, typed);
      else if (name === 'UpdateItemCommand') result = write('UpdateItem', run, typed);
      else if (name === 'PutItemCommand') result = write('PutItem', run, typed);
      else if (name === 'DeleteItemCommand') result = write('DeleteItem', run, typed);
      else if (READ_ONLY_TARGETS.has(name.replace(/Command$/, ''))) result = run(typed);
      else result = otherWrite(run, typed);
      return result as never;
    },
    { step: 'initialize', name: 'strataPartitionCache', priority: 'high' },
  );

  return {
    stats,
    get bytes() {
      return bytes;
    },
    clear,
  };
}
