/**
 * `strata import` on dynalite: each user judged as a full replay of the same history judges them (tier, tierSince,
 * grace, review date, counters), written in batches in the layout live ingest reads and deduplicates against, safe
 * to rerun, resumable after an interruption, and never overwriting a user that live ingest already holds.
 */
import { type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { createEventBridgePublisher } from '../../functions/aws/eventbridge-publisher.js';
import { createSfnJourneyStarter } from '../../functions/aws/sfn-journey-starter.js';
import { SYSTEM_KEY } from '../../functions/aws/table-schema.js';
import { type ImportInput, type ImportReport, importCommandAction, runImport } from '../../functions/cli/commands/import.js';
import { loadValidRuleset } from '../../functions/cli/load-ruleset.js';
import type { CliOutput } from '../../functions/cli/output.js';
import { addDays, localDate } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { reviewDaysAfterHistory } from '../../functions/core/import-plan.js';
import { type TierServices, eventKey, ingestEvent, windowStart } from '../../functions/core/ingest.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { DayBucket, HistoryEntry, UserProfile } from '../../functions/core/state.js';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { startDynalite } from '../../functions/local/dynalite.js';
import { readEventLines } from '../../functions/local/event-lines.js';
import { writeStackInfo } from '../../functions/local/local-data.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { startPutEventsEndpoint } from '../../functions/local/put-events-endpoint.js';
import type { EventBridgeEnvelope } from '../../functions/core/event-pattern.js';
import { runReplay } from '../../functions/replay/replay-engine.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();
const SHARDS = 4;
let ruleset: Ruleset;
let history: { events: UserEvent[]; lines: number[] };
/** Three days after the history's last event, mid-afternoon: three nightly reviews have run since. */
let now: Date;

/** A user with a heavy day (more events than a day item keeps keys for), dated yesterday, within the dedup horizon. */
function heavyDayEvents(count: number, at: Date): UserEvent[] {
  const day = localDate(addDays(localDate(at, 'UTC'), -1), 'UTC');
  return Array.from({ length: count }, (_, i) => ({
    eventId: `heavy-${i}`,
    userId: 'user-heavy',
    type: 'app.opened',
    occurredAt: `${day}T${String(8 + Math.floor(i / 6)).padStart(2, '0')}:${String((i % 6) * 10).padStart(2, '0')}:00.000Z`,
    properties: {},
  }));
}

beforeAll(async () => {
  ruleset = await loadValidRuleset(process.cwd(), 'the ruleset');
  const read = await readEventLines(join(process.cwd(), 'examples/small-events.jsonl'));
  const lastAt = Math.max(...read.events.map((event) => Date.parse(event.occurredAt)));
  now = new Date(Date.parse(`${addDays(localDate(new Date(lastAt), ruleset.timezone), 3)}T15:00:00Z`));
  const heavy = heavyDayEvents(24, now);
  history = { events: [...read.events, ...heavy], lines: [...read.lines, ...heavy.map((_, i) => 100_000 + i)] };
});

function input(tableName: string, overrides: Partial<ImportInput> = {}): ImportInput {
  return {
    ruleset,
    events: history.events,
    lines: history.lines,
    historyId: 'small-events+heavy',
    target: { client: dynalite.client, tableName, shardCount: SHARDS },
    now,
    ...overrides,
  };
}

function storeOn(tableName: string, client: DynamoDBClient = dynalite.client) {
  return createDynamoTierStore({ client, tableName, shardCount: SHARDS, timeZone: ruleset.timezone, now: () => now });
}

/** Every item of the table, keyed, with binary attributes as base64 and sets sorted, for before/after comparisons. */
async function tableContents(tableName: string, withSystem = false): Promise<Map<string, string>> {
  const contents = new Map<string, string>();
  let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
  do {
    const page = await dynalite.client.send(new ScanCommand({ TableName: tableName, ...(start ? { ExclusiveStartKey: start } : {}) }));
    for (const item of page.Items ?? []) {
      if (!withSystem && item['pk']?.S === SYSTEM_KEY) continue;
      const text = JSON.stringify(item, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('base64') : Array.isArray(v) && v.every((e) => typeof e === 'string') ? [...v].sort() : v,
      );
      contents.set(`${item['pk']?.S}|${item['sk']?.S}`, text);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return contents;
}

/** The full replay (journeys on) of the same history to the same night: each user's final profile and buckets. */
interface ReplayedUser {
  profile: UserProfile;
  buckets: DayBucket[];
  history: HistoryEntry[];
}

async function referenceReplay(rules: Ruleset = ruleset): Promise<Map<string, ReplayedUser>> {
  const lastAt = Math.max(...history.events.map((event) => Date.parse(event.occurredAt)));
  const finals = new Map<string, ReplayedUser>();
  await runReplay({
    ruleset: rules,
    events: history.events,
    lines: history.lines,
    extraDays: reviewDaysAfterHistory(rules, new Date(lastAt), now),
    onUserDone: async (userId, store) => {
      const { profile, buckets } = await store.loadUser(userId, '0000-01-01');
      if (profile) finals.set(userId, { profile, buckets, history: await store.listHistory(userId, 1000) });
    },
  });
  return finals;
}

const countersOf = (buckets: readonly DayBucket[]): Record<string, Record<string, number>> =>
  Object.fromEntries(buckets.filter((b) => Object.keys(b.counters).length > 0).map((b) => [b.date, b.counters]));

describe('strata import', () => {
  it('judges every user as a full replay of the history does, and writes what live ingest reads', async () => {
    const tableName = await dynalite.freshTable();
    const report = await runImport(input(tableName, { usersPerChunk: 37 }));
    const reference = await referenceReplay();
    expect(report.imported).toBe(reference.size);
    expect(report.counts.guardItems).toBeGreaterThan(0);
    const store = storeOn(tableName);
    let inGrace = 0;
    let promoted = 0;
    for (const [userId, expected] of reference) {
      const { profile, buckets } = await store.loadUser(userId, '0000-01-01');
      expect(profile, userId).toBeDefined();
      const judged = (p: UserProfile) => ({ tier: p.tier, tierSince: p.tierSince, graceUntil: p.graceUntil, reviewAt: p.reviewAt, lock: p.lock });
      expect(judged(profile!), userId).toEqual(judged(expected.profile));
      expect(profile!.attributes, userId).toEqual(expected.profile.attributes);
      expect(countersOf(buckets), userId).toEqual(countersOf(expected.buckets));
      expect(
        (await store.listHistory(userId, 1000)).map((e) => [e.fromTier, e.toTier, e.at]),
        userId,
      ).toEqual(expected.history.map((e) => [e.fromTier, e.toTier, e.at]));
      if (profile!.graceUntil) inGrace += 1;
      if (profile!.tier !== ruleset.baseTier) promoted += 1;
      // Quiet: no journey named, no outbox left to flush.
      expect(profile!.journey).toBeUndefined();
      expect(profile!.outboxVersion).toBeUndefined();
    }
    // The fixture is not trivial: users climbed, and some are in grace as of now.
    expect(promoted).toBeGreaterThan(10);
    expect(inGrace).toBeGreaterThan(0);
    // Batched: far fewer write requests than events.
    expect(report.writeRequests / history.events.length).toBeLessThan(0.2);
  });

  it('a rerun changes nothing, with or without its checkpoint', async () => {
    const tableName = await dynalite.freshTable();
    await runImport(input(tableName));
    const before = await tableContents(tableName);
    const again = await runImport(input(tableName));
    expect(again.alreadyComplete).toBe(true);
    expect(await tableContents(tableName)).toEqual(before);

    // Without the checkpoint (another file name, the same events): every user is found stored exactly as imported.
    const fresh = await runImport(input(tableName, { historyId: 'the same history under another name' }));
    expect(fresh.imported).toBe(0);
    expect(fresh.unchanged).toBe(fresh.counts.users);
    expect(fresh.skippedExisting).toEqual([]);
    expect(await tableContents(tableName)).toEqual(before);
  });

  it('an interrupted import resumes from its checkpoint and ends as an uninterrupted one', async () => {
    const whole = await dynalite.freshTable();
    await runImport(input(whole, { usersPerChunk: 20 }));

    const tableName = await dynalite.freshTable();
    // The connection drops for good after a few batches, as when the process is killed mid-import.
    const { client } = dynalite;
    let batches = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'BatchWriteItemCommand' && ++batches > 40) throw new Error('the import process was stopped');
        return next(args);
      },
      { step: 'initialize', name: 'stopAfterFortyBatches' },
    );
    try {
      await expect(runImport(input(tableName, { usersPerChunk: 20 }))).rejects.toThrow('the import process was stopped');
    } finally {
      client.middlewareStack.remove('stopAfterFortyBatches');
    }
    const partial = await tableContents(tableName);
    expect(partial.size).toBeGreaterThan(0);

    const resumed = await runImport(input(tableName, { usersPerChunk: 20 }));
    expect(resumed.resumedAfter).toBeGreaterThan(0);
    expect(resumed.imported).toBeLessThan(resumed.counts.users + resumed.resumedAfter);
    expect(await tableContents(tableName)).toEqual(await tableContents(whole));
  });

  it('a live copy of an imported event, on a light day or a heavy one, is a duplicate for live ingest', async () => {
    const tableName = await dynalite.freshTable();
    await runImport(input(tableName));
    const store = storeOn(tableName);
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => now },
    };
    const heavy = history.events.find((event) => event.userId === 'user-heavy')!;
    const light = history.events[history.events.length - 30]!;
    for (const event of [light, heavy]) {
      const before = await store.loadUser(event.userId, windowStart(ruleset, now));
      const result = await ingestEvent(services, event);
      expect(result.duplicate, event.eventId).toBe(true);
      const after = await store.loadUser(event.userId, windowStart(ruleset, now));
      expect(after.buckets, event.eventId).toEqual(before.buckets);
    }
    // And a new event of the heavy day counts once.
    const fresh = { ...heavy, eventId: 'heavy-new' };
    expect((await ingestEvent(services, fresh)).duplicate).toBe(false);
    expect((await ingestEvent(services, fresh)).duplicate).toBe(true);
    expect(eventKey('heavy-new')).not.toBe(eventKey(heavy.eventId));
  });

  it('leaves a user that live ingest already holds as it is, and --rebuild rewrites only their day items, keeping sends', async () => {
    const tableName = await dynalite.freshTable();
    const store = storeOn(tableName);
    const live = history.events.find((event) => event.userId === 'user-00163')!;
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => now },
    };
    await ingestEvent(services, { ...live, eventId: 'live-only', occurredAt: new Date(now.getTime() - 3_600_000).toISOString() });
    const liveDate = localDate(live.occurredAt, ruleset.timezone);
    await store.recordSend('user-00163', liveDate, 'send-1');
    const liveProfile = (await store.loadUser('user-00163', '0000-01-01')).profile;

    const report = await runImport(input(tableName));
    expect(report.skippedExisting).toEqual(['user-00163']);
    expect((await store.loadUser('user-00163', '0000-01-01')).profile).toEqual(liveProfile);

    const rebuild = await runImport(input(tableName, { rebuild: true }));
    expect(rebuild.rebuilt).toBe(rebuild.counts.users);
    const after = await store.loadUser('user-00163', '0000-01-01');
    expect(after.profile).toEqual(liveProfile);
    const reference = (await referenceReplay()).get('user-00163')!;
    const rebuiltDays = countersOf(after.buckets);
    for (const [date, counters] of Object.entries(countersOf(reference.buckets))) expect(rebuiltDays[date], date).toEqual(counters);
    expect(after.buckets.find((b) => b.date === liveDate)?.sends).toBe(1);
  });

  it('--rebuild of days that a roll-up moved into segments counts each day once', async () => {
    const tableName = await dynalite.freshTable();
    // A user heavy every day for 20 days up to three days ago: enough sealed heavy days for segments.
    const days = 20;
    const rolled: UserEvent[] = [];
    for (let day = 0; day < days; day++) {
      const date = addDays(localDate(now, 'UTC'), -3 - day);
      // The example population's mix of events, so that the days carry its counters and signals.
      for (let i = 0; i < 40; i++) {
        const source = history.events[(day * 40 + i) % history.events.length]!;
        rolled.push({
          ...source,
          eventId: `rolled-${day}-${i}`,
          userId: 'user-rolled',
          occurredAt: `${date}T${String(6 + Math.floor(i / 3)).padStart(2, '0')}:${String((i % 3) * 20 + 5).padStart(2, '0')}:00.000Z`,
        });
      }
    }
    const events = [...history.events, ...rolled];
    const lines = [...history.lines, ...rolled.map((_, i) => 200_000 + i)];
    const withRolled = { events, lines, historyId: 'small-events+rolled' };
    await runImport(input(tableName, withRolled));
    const reference: Record<string, Record<string, number>> = {};
    await runReplay({
      ruleset,
      events: rolled,
      lines: rolled.map((_, i) => i),
      onUserDone: async (userId, replayed) => {
        Object.assign(reference, countersOf((await replayed.loadUser(userId, '0000-01-01')).buckets));
      },
    });
    const rollingStore = createDynamoTierStore({
      client: dynalite.client,
      tableName,
      shardCount: SHARDS,
      timeZone: ruleset.timezone,
      now: () => now,
      rollUpReadBytes: 0,
    });
    // Reads roll the sealed periods up (two segments a read at most), and read the same days all along.
    for (let read = 0; read < 3; read++) expect(countersOf((await rollingStore.loadUser('user-rolled', '0000-01-01')).buckets)).toEqual(reference);
    const segments = [...(await tableContents(tableName)).keys()].filter((key) => key.startsWith('USER#user-rolled|DAY#') && key.endsWith('~'));
    expect(segments.length).toBeGreaterThanOrEqual(2);

    const rebuild = await runImport(input(tableName, { ...withRolled, rebuild: true }));
    expect(rebuild.rebuilt).toBeGreaterThan(0);
    expect(countersOf((await storeOn(tableName).loadUser('user-rolled', '0000-01-01')).buckets)).toEqual(reference);
    // And the next roll-up of the rebuilt days keeps them as they are.
    for (let read = 0; read < 3; read++) expect(countersOf((await rollingStore.loadUser('user-rolled', '0000-01-01')).buckets)).toEqual(reference);
  });

  it('--rebuild makes a metric added later exact over the dates the export covers', async () => {
    const tableName = await dynalite.freshTable();
    await runImport(input(tableName));
    // The next ruleset adds a metric on a filter no counter had: live ingest would start it from zero.
    const files = await readProjectFiles(process.cwd());
    const tiers = JSON.parse(files['rules/tiers.json']!) as { metrics: Record<string, unknown> };
    tiers.metrics['advancedLibraryOpens30'] = {
      kind: 'count',
      windowDays: 30,
      eventTypes: ['content.opened'],
      where: { templateId: 'pm-advanced-case-library' },
    };
    const withMetric = loadRulesetOrThrow({ ...files, 'rules/tiers.json': JSON.stringify(tiers) });
    const added = withMetric.metrics.find((metric) => metric.name === 'advancedLibraryOpens30')!;
    expect(ruleset.counters.map((counter) => counter.id)).not.toContain(added.countCounter);

    const report = await runImport(input(tableName, { ruleset: withMetric, rebuild: true }));
    expect(report.rebuilt).toBe(report.counts.users);
    const store = storeOn(tableName);
    const reference = await referenceReplay(withMetric);
    let counted = 0;
    for (const [userId, expected] of reference) {
      const { buckets } = await store.loadUser(userId, '0000-01-01');
      const stored = Object.fromEntries(buckets.map((b) => [b.date, b.counters[added.countCounter]]));
      for (const bucket of expected.buckets) {
        expect(stored[bucket.date], `${userId} ${bucket.date}`).toBe(bucket.counters[added.countCounter]);
        counted += bucket.counters[added.countCounter] ?? 0;
      }
    }
    expect(counted).toBeGreaterThan(0);
  });

  it('--start-journeys starts the current tier journey, a failed start loses nothing; --notices publishes TierChanged imported', async () => {
    const tableName = await dynalite.freshTable();
    const sfn = mockClient(SFNClient);
    const starts: Array<{ name?: string; input?: string }> = [];
    // Step Functions has no local API: the one AWS-only part here. One start is throttled for good.
    sfn.on(StartExecutionCommand).callsFake((request: { name?: string; input?: string }) => {
      if (starts.length === 3) {
        starts.push({});
        throw Object.assign(new Error('Rate exceeded'), { name: 'ExecutionLimitExceeded' });
      }
      starts.push(request);
      return { executionArn: `arn:${request.name}`, startDate: new Date() };
    });
    const published: EventBridgeEnvelope[] = [];
    const endpoint = await startPutEventsEndpoint({ port: 0, busName: 'strata-test', onEvents: (events) => void published.push(...events) });
    const eventBridge = new EventBridgeClient({
      endpoint: endpoint.url,
      region: 'eu-west-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    });
    const sfnClient = new SFNClient({ region: 'eu-west-1', credentials: { accessKeyId: 't', secretAccessKey: 't' } });
    try {
      const arns = Object.fromEntries(
        Object.keys(ruleset.journeys).map((tier) => [tier, `arn:aws:states:eu-west-1:123456789012:stateMachine:strata-${tier}`]),
      );
      const report = await runImport(
        input(tableName, {
          journeys: { starter: createSfnJourneyStarter({ client: sfnClient, stateMachineArns: arns }), perSecond: 1000 },
          notices: createEventBridgePublisher({ client: eventBridge, eventBusName: 'strata-test' }),
        }),
      );
      const withJourney = (await referenceReplay()).size;
      expect(report.journeysStarted + report.journeyStartFailures.length).toBe(withJourney);
      expect(report.journeyStartFailures).toHaveLength(1);
      // The user whose start failed is imported all the same, and names the run a retry would start.
      const failed = report.journeyStartFailures[0]!.userId;
      const { profile } = await storeOn(tableName).loadUser(failed, '0000-01-01');
      expect(profile?.journey?.tier).toBe(profile?.tier);
      expect(profile?.journey?.startedAt).toBe(now.toISOString());
      expect(starts.filter((start) => start.name).every((start) => JSON.parse(start.input!).userId)).toBe(true);
      // One TierChanged of kind imported per user.
      const notices = published.filter((event) => event['detail-type'] === 'TierChanged');
      expect(notices).toHaveLength(report.imported);
      expect(notices.every((event) => (event.detail as { kind: string }).kind === 'imported')).toBe(true);
    } finally {
      sfn.restore();
      eventBridge.destroy();
      sfnClient.destroy();
      await endpoint.close();
    }
  });

  it('--dry-run writes nothing and says what it would write', async () => {
    const report = await runImport(input('unused', { target: undefined }));
    expect(report.counts.profiles).toBe(report.counts.users);
    expect(report.counts.dayItems).toBeGreaterThan(report.counts.users);
    expect(Object.keys(report.samples).sort()).toEqual(['dayItems', 'guardItems', 'historyEntries', 'profiles']);
  });

  it('writes through a running `strata dev` (it holds the data folder), found through stack.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-import-'));
    const running = await startDynalite();
    try {
      await writeStackInfo(dir, {
        dynamoEndpoint: running.endpoint,
        tableName: running.tableName,
        eventsEndpoint: 'http://127.0.0.1:9',
        pid: process.pid,
      });
      const file = join(dir, 'events.jsonl');
      await writeFile(
        file,
        history.events
          .filter((e) => e.userId === 'user-00163')
          .map((e) => JSON.stringify(e))
          .join('\n'),
      );
      const printed: string[] = [];
      const out: CliOutput = { info: (line) => printed.push(line), error: (line) => printed.push(line) };
      const report = await importCommandAction({ events: file, rules: process.cwd(), data: dir, reviewShards: '16', startRate: '50' }, out);
      expect(report.imported).toBe(1);
      expect(printed.join('\n')).toMatch(/into the running stack on /);
      const { profile } = await createDynamoTierStore({ client: running.client, tableName: running.tableName, shardCount: 4 }).loadUser(
        'user-00163',
        '0000-01-01',
      );
      expect(profile?.tier).toBeDefined();
    } finally {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports bad lines and events by line, and imports the rest into the local data folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-import-'));
    try {
      const file = join(dir, 'events.jsonl');
      const good = history.events.filter((e) => e.userId === 'user-00163').slice(0, 5);
      const lines = [
        JSON.stringify(good[0]),
        '{not json',
        JSON.stringify({ ...good[1], occurredAt: 'yesterday' }),
        ...good.slice(2).map((e) => JSON.stringify(e)),
      ];
      await writeFile(file, lines.join('\n') + '\n');
      const printed: string[] = [];
      const out: CliOutput = { info: (line) => printed.push(line), error: (line) => printed.push(line) };
      const report: ImportReport = await importCommandAction(
        { events: file, rules: process.cwd(), data: join(dir, 'data'), reviewShards: '16', startRate: '50' },
        out,
      );
      expect(report.imported).toBe(1);
      expect(printed.join('\n')).toMatch(/events\.jsonl:2: skipped: not valid JSON/);
      expect(printed.join('\n')).toMatch(/events\.jsonl:3: skipped: \/occurredAt/);
      expect(printed.join('\n')).toMatch(/Imported 1 users into the local data/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
