/**
 * "Accepted" means applied, eventually and once: `strata dev` as a child process, events posted with the real
 * `@aws-sdk/client-eventbridge` client, then the process is killed (-9) or interrupted (SIGINT) with most of them
 * still waiting, and restarted. What was applied is read from the data folder's DynamoDB store afterwards, where a
 * lost event or one applied twice would show in the users' counters.
 *
 * Bad input is the other half of the promise: each bad event gets a dead letter with its reason (or its own
 * per-entry error), listed by `strata dlq` and sent again by `strata dlq redrive`.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { DEFAULT_REVIEW_SHARDS } from '../../functions/aws/table-schema.js';
import { localDate } from '../../functions/core/dates.js';
import { windowStart } from '../../functions/core/ingest.js';
import { aggregateMetrics } from '../../functions/core/metrics.js';
import { loadValidRuleset } from '../../functions/cli/commands/simulate.js';
import { readDeadLetters } from '../../functions/local/dead-letter-file.js';
import { startDynalite } from '../../functions/local/dynalite.js';
import { DYNALITE_FOLDER } from '../../functions/local/local-data.js';
import { type RunningStrata, freePort, root, startStrata, strata } from './strata-process.js';

const USERS = 20;
const EVENTS_PER_USER = 15;
const TOTAL = USERS * EVENTS_PER_USER;
/** One virtual day per wall day: event times are the wall clock's, and no nightly review runs during a test. */
const DAY_SECONDS = '86400';
/** A few seconds each on an idle machine; two process starts each, so room for a busy CI runner. */
const E2E_TIMEOUT_MS = 240_000;

const running: RunningStrata[] = [];
const folders: string[] = [];
afterEach(async () => {
  for (const child of running.splice(0)) child.kill();
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

async function startDev(data: string, extra: string[] = []): Promise<{ dev: RunningStrata; client: EventBridgeClient }> {
  const port = await freePort();
  const dev = startStrata(['dev', '--no-demo', '--port', String(port), '--day-seconds', DAY_SECONDS, '--data', data, ...extra]);
  running.push(dev);
  await dev.waitForLine(/^Strata is running: PutEvents at /, 40_000);
  const client = new EventBridgeClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
  });
  return { dev, client };
}

const groupMessage = (user: number, n: number, at: Date): PutEventsRequestEntry => ({
  EventBusName: 'strata',
  Source: 'e2e.app',
  DetailType: 'group.message',
  Detail: JSON.stringify({
    eventId: `m-${user}-${n}`,
    userId: `durable-${user}`,
    type: 'group.message',
    occurredAt: at.toISOString(),
    properties: {},
  }),
});

/** Posts every event in calls of 10, several calls at a time, as a busy producer does; resolves with the accepted count. */
async function postAll(client: EventBridgeClient): Promise<number> {
  const at = new Date(Date.now() - 3_600_000);
  const entries: PutEventsRequestEntry[] = [];
  // Interleaved by user, so that every batch touches several users, as real traffic does.
  for (let n = 0; n < EVENTS_PER_USER; n++) for (let user = 0; user < USERS; user++) entries.push(groupMessage(user, n, at));
  const calls: PutEventsRequestEntry[][] = [];
  for (let i = 0; i < entries.length; i += 10) calls.push(entries.slice(i, i + 10));
  let accepted = 0;
  const worker = async (): Promise<void> => {
    for (let call = calls.shift(); call; call = calls.shift()) {
      const response = await client.send(new PutEventsCommand({ Entries: call }));
      expect(response.FailedEntryCount).toBe(0);
      accepted += (response.Entries ?? []).filter((entry) => entry.EventId).length;
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return accepted;
}

/** Each test user's group messages in the store's 30-day window: a lost event or a double count shows here. */
async function appliedPerUser(data: string): Promise<number[]> {
  const ruleset = await loadValidRuleset(root, 'the ruleset');
  const dynalite = await startDynalite({ path: join(data, DYNALITE_FOLDER) });
  try {
    const store = createDynamoTierStore({
      client: dynalite.client,
      tableName: dynalite.tableName,
      shardCount: DEFAULT_REVIEW_SHARDS,
      timeZone: ruleset.timezone,
    });
    const now = new Date();
    const counts: number[] = [];
    for (let user = 0; user < USERS; user++) {
      const { buckets } = await store.loadUser(`durable-${user}`, windowStart(ruleset, now));
      counts.push(aggregateMetrics(ruleset, buckets, localDate(now, ruleset.timezone))['groupMessages30'] ?? 0);
    }
    return counts;
  } finally {
    await dynalite.close();
  }
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

async function tempData(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'strata-e2e-durable-'));
  folders.push(folder);
  return join(folder, 'data');
}

/** Restarts on the folder, waits until the backlog from the last run is applied, and stops cleanly. */
async function restartAndFinish(data: string): Promise<{ resumed: number }> {
  const { dev, client } = await startDev(data);
  client.destroy();
  const resuming = await dev.waitForLine(/^Resuming: \d+ accepted events from the last run/, 5_000);
  await dev.waitForLine(/ {2}backlog applied: every accepted event so far is applied$/, 120_000);
  expect(await dev.stop('SIGINT', 20_000)).toBe(0);
  expect(dev.lines.at(-1)?.text).toBe('Stopped: every accepted event is applied.');
  return { resumed: Number(/^Resuming: (\d+)/.exec(resuming.text)![1]) };
}

describe('strata dev keeps every accepted event (the real EventBridge SDK against the command)', () => {
  it(
    `applies all ${TOTAL} accepted events, none twice, after kill -9 right after they were accepted`,
    async () => {
      const data = await tempData();
      const { dev, client } = await startDev(data);
      const accepted = await postAll(client);
      expect(await dev.stop('SIGKILL', 10_000)).toBe('SIGKILL');
      client.destroy();
      expect(accepted).toBe(TOTAL);

      const beforeRestart = sum(await appliedPerUser(data));
      const { resumed } = await restartAndFinish(data);
      // The crash left a backlog (or the test proves nothing); the replay may re-deliver a few already applied.
      expect(resumed).toBeGreaterThan(0);
      expect(resumed).toBeGreaterThanOrEqual(TOTAL - beforeRestart);
      expect(await appliedPerUser(data)).toEqual(Array.from({ length: USERS }, () => EVENTS_PER_USER));
      console.info(`kill -9: ${accepted} accepted, ${beforeRestart} applied before the crash, ${resumed} replayed, ${TOTAL} applied after restart`);
    },
    E2E_TIMEOUT_MS,
  );

  it(
    'stops on SIGINT during ingest without losing anything, and says how many events are left for the next start',
    async () => {
      const data = await tempData();
      const { dev, client } = await startDev(data);
      const accepted = await postAll(client);
      client.destroy();
      expect(await dev.stop('SIGINT', 20_000)).toBe(0);
      expect(accepted).toBe(TOTAL);
      const stopped = dev.lines.at(-1)!.text;
      const left = /^Stopped: (\d+) accepted events are not applied yet; they are kept in .*ingest-log\.jsonl and applied on the next start\.$/.exec(
        stopped,
      );
      expect(left, stopped).not.toBeNull();
      const remaining = Number(left![1]);

      // The count is exact: what was applied plus what is left is what was accepted.
      expect(sum(await appliedPerUser(data)) + remaining).toBe(TOTAL);
      const { resumed } = await restartAndFinish(data);
      expect(resumed).toBe(remaining);
      expect(await appliedPerUser(data)).toEqual(Array.from({ length: USERS }, () => EVENTS_PER_USER));
      console.info(`SIGINT: ${accepted} accepted, ${remaining} reported left and replayed, ${TOTAL} applied after restart`);
    },
    E2E_TIMEOUT_MS,
  );
});

describe('strata dev gives every bad event a reason', () => {
  it(
    'dead-letters each bad event with its reason and event id, fails a pathological entry alone, and lists and redrives the dead letters',
    async () => {
      const data = await tempData();
      const { dev, client } = await startDev(data);
      try {
        const now = Date.now();
        const detail = (eventId: string | undefined, fields: Record<string, unknown>) =>
          JSON.stringify({
            ...(eventId ? { eventId } : {}),
            userId: 'bad-input',
            type: 'order.paid',
            occurredAt: new Date(now - 60_000).toISOString(),
            properties: { amount: 5 },
            ...fields,
          });
        const entry = (Detail: string): PutEventsRequestEntry => ({ EventBusName: 'strata', Source: 'e2e.app', DetailType: 'order.paid', Detail });
        const bad: Array<[string, PutEventsRequestEntry, RegExp]> = [
          ['no-event-id', entry(detail(undefined, {})), /\/eventId: /],
          ['no-user-id', entry(JSON.stringify({ eventId: 'no-user-id', type: 'order.paid', occurredAt: new Date(now).toISOString() })), /\/userId: /],
          [
            'string-amount',
            entry(detail('string-amount', { properties: { amount: '999' } })),
            /\/properties\/amount: must be a number \(a metric adds it up\), found "999"/,
          ],
          [
            'huge-amount',
            entry(detail('huge-amount', { properties: { amount: 1e308 } })),
            /\/properties\/amount: 1e\+308 is outside the range DynamoDB can store/,
          ],
          ['in-1970', entry(detail('in-1970', { occurredAt: '1970-01-01T00:00:00Z' })), /\/occurredAt: 1970-01-01T00:00:00Z is before 2000-01-01/],
          ['in-2100', entry(detail('in-2100', { occurredAt: '2100-01-01T00:00:00Z' })), /\/occurredAt: 2100-01-01T00:00:00Z is more than 24 h ahead/],
          ['no-zone', entry(detail('no-zone', { occurredAt: '2026-11-02T09:30:00' })), /\/occurredAt: "2026-11-02T09:30:00" has no time zone/],
        ];
        const good = entry(detail('good-neighbour', {}));
        const first = await client.send(new PutEventsCommand({ Entries: [...bad.slice(0, 4).map(([, e]) => e), good] }));
        const second = await client.send(new PutEventsCommand({ Entries: bad.slice(4).map(([, e]) => e) }));
        // They are well-formed EventBridge entries: accepted, then dead-lettered by ingest.
        expect([first.FailedEntryCount, second.FailedEntryCount]).toEqual([0, 0]);
        const deep = entry(`{"eventId":"deep","userId":"bad-input","properties":{"p":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`);
        const third = await client.send(new PutEventsCommand({ Entries: [deep, entry(detail('deep-neighbour', {}))] }));
        expect(third.Entries?.[0]).toMatchObject({
          ErrorCode: 'MalformedDetail',
          ErrorMessage: expect.stringMatching(/nests objects or arrays more than \d+ levels deep/),
        });
        expect(third.Entries?.[1]?.EventId).toEqual(expect.any(String));

        // Each bad event has its dead letter at once (not after 5 attempts), with its reason, in the log and the file.
        for (const [eventRef, , reason] of bad) {
          const line = await dev.waitForLine(new RegExp(`dead letter ${eventRef === 'no-event-id' ? '\\S+' : eventRef}: .*${reason.source}`), 15_000);
          expect(line.text).not.toMatch(/attempts/);
        }
        const letters = (await readFile(join(data, 'dlq.jsonl'), 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { at: string; eventRef: string; reason: string; body: string });
        expect(letters).toHaveLength(bad.length);
        for (const [eventRef, sent, reason] of bad) {
          const letter = eventRef === 'no-event-id' ? letters.find((l) => /\/eventId/.test(l.reason)) : letters.find((l) => l.eventRef === eventRef);
          expect(letter?.reason, eventRef).toMatch(reason);
          // The original body: the envelope EventBridge delivered, holding the entry's Detail as it was sent.
          expect(JSON.parse(letter!.body).detail).toEqual(JSON.parse(sent.Detail!));
        }

        const listed = await strata(['dlq', '--data', data]);
        expect(listed.code).toBe(0);
        expect(listed.stdout).toContain(`${bad.length} dead letter(s) in`);
        for (const [eventRef] of bad.slice(1)) expect(listed.stdout).toContain(`  ${eventRef}  `);

        // Redriven through PutEvents: each is accepted (so it is retired from the file) and, still bad, comes back once.
        const redriven = await strata(['dlq', 'redrive', '--data', data]);
        expect(redriven.stderr).toBe('');
        expect(redriven.stdout).toContain(`dlq redrive: ${bad.length} of ${bad.length} sent again and removed from dlq.jsonl`);
        const before = new Set(letters.map((letter) => letter.at));
        await expect
          .poll(async () => (await readDeadLetters(data)).letters.filter((letter) => !before.has(letter.at)).length, { timeout: 20_000 })
          .toBe(bad.length);
        expect((await readDeadLetters(data)).letters).toHaveLength(bad.length);
      } finally {
        client.destroy();
      }
      expect(await dev.stop('SIGINT', 20_000)).toBe(0);
      const goodOnes = await strata(['user', 'bad-input', '--json', '--data', data]);
      expect((JSON.parse(goodOnes.stdout) as { metrics: Record<string, number> }).metrics['spend90']).toBe(10); // the two neighbours, 5 each
    },
    E2E_TIMEOUT_MS,
  );
});
