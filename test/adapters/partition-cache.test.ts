/**
 * The embedded stack's partition cache (functions/local/partition-cache.ts) against the same client without it:
 * random histories through the real ingest service and DynamoDB store, each run on a dynalite worker without the
 * cache, with a roomy one and with one so small that it evicts all the time. Every decision (duplicate or not, the
 * decision, the profile) and every item of the table must be the same. Under concurrent deliveries (where outcomes
 * may differ between runs) every answer the cache gives must equal what dynalite holds. Writes from another process
 * over TCP, canonicalised numbers and UTF-8 key order are checked on their own.
 */
import { type AttributeValue, DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { TABLE_KEYS } from '../../functions/aws/table-schema.js';
import { addDays } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { ingestEvent, windowStart } from '../../functions/core/ingest.js';
import { type RunningDynalite, startDynalite } from '../../functions/local/dynalite.js';
import { compareUtf8 } from '../../functions/local/partition-cache.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';
import { propertyRuns } from '../helpers/property-runs.js';
import { ladderWithJourneys as ruleset } from '../reliability/world.js';

type Item = Record<string, AttributeValue>;
const NOW = new Date('2026-03-10T10:00:00Z');
const TODAY = '2026-03-10';

const variants = { uncached: 0, roomy: 4 * 1024 * 1024, tiny: 1500 } as const;
const stacks: Partial<Record<keyof typeof variants, RunningDynalite>> = {};
beforeAll(async () => {
  for (const [name, bytes] of Object.entries(variants))
    stacks[name as keyof typeof variants] = await startDynalite({ thread: 'worker', partitionCacheBytes: bytes });
}, 60_000);
afterAll(async () => {
  await Promise.all(Object.values(stacks).map((stack) => stack.close()));
});
const stack = (name: keyof typeof variants): RunningDynalite => stacks[name]!;

const eventSpec = fc.record({
  user: fc.nat(3),
  day: fc.nat(20),
  minute: fc.nat(1439),
  type: fc.constantFrom('content.completed', 'order.paid', 'questionnaire.answered', 'user.signed_up', 'app.opened'),
  amount: fc.integer({ min: 1, max: 90 }),
});
const historySpec = fc.record({
  events: fc.array(eventSpec, { minLength: 1, maxLength: 40 }),
  redeliveries: fc.array(fc.nat(), { maxLength: 10 }),
  lightDayEvents: fc.constantFrom(16, 2, 0),
});

let caseNumber = 0;
type EventSpec = { user: number; day: number; minute: number; type: string; amount: number };
function historyOf(spec: EventSpec[], redeliveries: number[]): UserEvent[] {
  caseNumber += 1;
  const events = spec.map(
    (e, i): UserEvent => ({
      eventId: `c${caseNumber}-e${i}`,
      userId: `c${caseNumber}-u${e.user}`,
      type: e.type,
      occurredAt: new Date(Date.parse(`${addDays(TODAY, -e.day)}T00:00:00Z`) + e.minute * 60_000).toISOString(),
      properties: e.type === 'order.paid' ? { amount: e.amount } : e.type === 'questionnaire.answered' ? { plan: 'pro', interests: ['data'] } : {},
    }),
  );
  return [...events, ...redeliveries.map((pick) => events[pick % events.length]!)];
}

function servicesOn(running: RunningDynalite, tableName: string, lightDayEvents: number) {
  const clock = new ManualClock(NOW);
  const store = createDynamoTierStore({
    client: running.client,
    tableName,
    shardCount: 4,
    timeZone: ruleset.timezone,
    lightDayEvents,
    now: () => clock.now(),
  });
  return { ruleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock };
}

async function scanAll(running: RunningDynalite, tableName: string): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Item | undefined;
  do {
    const page = await running.client.send(new ScanCommand({ TableName: tableName, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const keyOf = (item: Item) => `${item[TABLE_KEYS.partitionKey]?.S}\u0000${item[TABLE_KEYS.sortKey]?.S}`;
  return items.sort((a, b) => compareUtf8(keyOf(a), keyOf(b)));
}

/**
 * The store's guard tokens are random per write; each distinct token becomes its rank of first appearance, so that
 * the same history gives the same items.
 */
function withTokensNumbered(items: Item[]): Item[] {
  const numbers = new Map<string, string>();
  const numbered = (token: string): string => {
    if (!numbers.has(token)) numbers.set(token, `token-${numbers.size}`);
    return numbers.get(token)!;
  };
  return items.map((item) =>
    Object.fromEntries(
      Object.entries(item).map(([name, value]) => [
        name,
        (name === 'token' || name.startsWith('p_')) && value.S !== undefined ? { S: numbered(value.S) } : value,
      ]),
    ),
  );
}

/** A window Query as the store sends it, and the same Query dynalite must answer itself (INDEXES is not cached). */
async function windowBothWays(running: RunningDynalite, tableName: string, userId: string) {
  const input = {
    TableName: tableName,
    ConsistentRead: true,
    KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
    ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
    ExpressionAttributeValues: { ':pk': { S: `USER#${userId}` }, ':from': { S: 'DAY#' }, ':to': { S: 'PROFILE' } },
  };
  const cached = await running.client.send(new QueryCommand({ ...input, ReturnConsumedCapacity: 'TOTAL' }));
  const direct = await running.client.send(new QueryCommand({ ...input, ReturnConsumedCapacity: 'INDEXES' }));
  return {
    cached: { Items: cached.Items, Count: cached.Count, units: cached.ConsumedCapacity?.CapacityUnits },
    direct: { Items: direct.Items, Count: direct.Count, units: direct.ConsumedCapacity?.CapacityUnits },
  };
}

describe('partition cache', () => {
  it('gives every decision and leaves every item exactly as the uncached client does, over random histories', async () => {
    // The cache covers the stack's own table, as in `strata dev`.
    const tables: Partial<Record<keyof typeof variants, string>> = {};
    for (const name of Object.keys(variants) as Array<keyof typeof variants>) tables[name] = stack(name).tableName;
    await fc.assert(
      fc.asyncProperty(historySpec, async (spec) => {
        const deliveries = historyOf(spec.events, spec.redeliveries);
        const outcomes: Record<string, unknown> = {};
        for (const name of Object.keys(variants) as Array<keyof typeof variants>) {
          const services = servicesOn(stack(name), tables[name]!, spec.lightDayEvents);
          const decisions: unknown[] = [];
          for (const event of deliveries) {
            const result = await ingestEvent(services, event);
            decisions.push({ duplicate: result.duplicate, decision: result.decision, profile: result.profile });
          }
          const windows = [];
          for (const userId of new Set(deliveries.map((e) => e.userId)))
            windows.push(await services.store.loadUser(userId, windowStart(ruleset, NOW)));
          outcomes[name] = {
            decisions,
            windows,
            journeys: [...services.journeys.started.keys()],
            notices: [...services.publisher.notices.keys()],
            items: withTokensNumbered(await scanAll(stack(name), tables[name]!)),
          };
        }
        expect(outcomes['roomy']).toEqual(outcomes['uncached']);
        expect(outcomes['tiny']).toEqual(outcomes['uncached']);
      }),
      { numRuns: propertyRuns(12) },
    );
    const roomy = stack('roomy').partitionCache!;
    expect(roomy.stats.hits).toBeGreaterThan(0);
    expect(stack('tiny').partitionCache!.bytes).toBeLessThanOrEqual(variants.tiny);
    expect(stack('uncached').partitionCache).toBeUndefined();
  }, 300_000);

  it('answers exactly what dynalite holds while deliveries of one user run at once', async () => {
    const running = stack('roomy');
    const tableName = running.tableName;
    await fc.assert(
      fc.asyncProperty(historySpec, async (spec) => {
        const deliveries = historyOf(spec.events, spec.redeliveries);
        const services = servicesOn(running, tableName, spec.lightDayEvents);
        // Several deliveries in flight at once, of the same users: writes overlap and conflicts are retried.
        await Promise.all(deliveries.map((event) => ingestEvent(services, event).catch(() => undefined)));
        for (const userId of new Set(deliveries.map((e) => e.userId))) {
          const { cached, direct } = await windowBothWays(running, tableName, userId);
          expect(cached, userId).toEqual(direct);
        }
      }),
      { numRuns: propertyRuns(8) },
    );
  }, 300_000);

  it('drops what it holds when another process writes over TCP, and stores numbers as dynalite does', async () => {
    const running = stack('roomy');
    const tableName = running.tableName;
    const key = (sk: string): Item => ({ [TABLE_KEYS.partitionKey]: { S: 'USER#ext' }, [TABLE_KEYS.sortKey]: { S: sk } });
    const query = () =>
      running.client.send(
        new QueryCommand({
          TableName: tableName,
          ConsistentRead: true,
          KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
          ExpressionAttributeValues: { ':pk': { S: 'USER#ext' }, ':from': { S: 'DAY#' }, ':to': { S: 'PROFILE' } },
        }),
      );
    // A number dynalite rewrites ("1.50" is stored as "1.5") and one it keeps.
    await running.client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('DAY#2026-03-01'), n: { N: '1.50' } } }));
    await query();
    await running.client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('DAY#2026-03-02'), n: { N: '1.50' } } }));
    await running.client.send(new PutItemCommand({ TableName: tableName, Item: { ...key('DAY#2026-03-03'), n: { N: '7' } } }));
    expect((await query()).Items?.map((item) => item['n']?.N)).toEqual(['1.5', '1.5', '7']);
    const hitsBefore = running.partitionCache!.stats.hits;
    expect((await query()).Items).toHaveLength(3);
    expect(running.partitionCache!.stats.hits).toBe(hitsBefore + 1);

    // Another process, over dynalite's port: the next Query must see its write.
    const other = new DynamoDBClient({ endpoint: running.endpoint, region: 'local', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    try {
      await other.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: key('DAY#2026-03-03'),
          UpdateExpression: 'SET n = :n',
          ExpressionAttributeValues: { ':n': { N: '8' } },
        }),
      );
      expect((await query()).Items?.map((item) => item['n']?.N)).toEqual(['1.5', '1.5', '8']);
      // Its reads change nothing, so the cache answers again afterwards.
      await other.send(
        new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: 'USER#ext' } } }),
      );
      const hits = running.partitionCache!.stats.hits;
      await query();
      expect(running.partitionCache!.stats.hits).toBe(hits + 1);
    } finally {
      other.destroy();
    }
  });

  it('is emptied when the idle stack releases memory, and then reads the table again', async () => {
    const running = stack('roomy');
    const query = () =>
      running.client.send(
        new QueryCommand({
          TableName: running.tableName,
          ConsistentRead: true,
          KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
          ExpressionAttributeValues: { ':pk': { S: 'USER#idle' }, ':from': { S: 'DAY#' }, ':to': { S: 'PROFILE' } },
        }),
      );
    const item = { [TABLE_KEYS.partitionKey]: { S: 'USER#idle' }, [TABLE_KEYS.sortKey]: { S: 'DAY#2026-03-01' }, n: { N: '2' } };
    await running.client.send(new PutItemCommand({ TableName: running.tableName, Item: item }));
    await query();
    expect(running.partitionCache!.bytes).toBeGreaterThan(0);

    await running.releaseMemory();
    expect(running.partitionCache!.bytes).toBe(0);
    const misses = running.partitionCache!.stats.misses;
    expect((await query()).Items).toEqual([item]);
    expect(running.partitionCache!.stats.misses).toBe(misses + 1);
  });

  it('orders keys by their UTF-8 bytes, as dynalite does', () => {
    const codePoint = fc
      .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
      .map((point) => String.fromCodePoint(point));
    // A shared prefix, so that comparisons reach differing characters of every kind.
    const keyText = fc.tuple(fc.constantFrom('', 'DAY#2026-'), fc.string({ unit: codePoint, maxLength: 6 })).map(([prefix, rest]) => prefix + rest);
    fc.assert(
      // Whole code points only: a lone surrogate has no UTF-8 form (and no key can hold one).
      fc.property(keyText, keyText, (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
  });
});
