/**
 * `strata dev` delivers journey actions to a real HTTP server (node:http on 127.0.0.1): the rendered body, the
 * API key header, a retry after a 500, and the channel's rate limit across sends and retries. The project is a
 * copy of the shipped one whose visitor journey sends at once (no quiet hours, cap or holdout), so that each
 * new user's first step is a send on the "official-account" channel, pointed at the server.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNEL_DLQ_FILE } from '../../functions/cli/deliveries.js';
import { type RunningStrata, freePort, root, startStrata, strata } from './strata-process.js';

const E2E_TIMEOUT_MS = 120_000;
const RATE_PER_SECOND = 2;
const USERS = 3;
const API_KEY = 'e2e-secret-key';

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  url: string;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A provider that fails its first request with a 500 (when asked to), then accepts; it records every request. */
async function startProvider(failFirst = true): Promise<{ url: string; received: Received[]; answered: number[] }> {
  const received: Received[] = [];
  const answered: number[] = [];
  const server: Server = createServer((request, response) => {
    const at = Date.now();
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      received.push({ at, headers: request.headers, body: JSON.parse(text), url: request.url ?? '' });
      const status = failFirst && received.length === 1 ? 500 : 200;
      answered.push(status);
      response.writeHead(status, { 'content-type': 'application/json' }).end(status === 500 ? '{"error":"busy"}' : '{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/v1/send`, received, answered };
}

/** The shipped project, with official-account delivering to the provider and a visitor journey that sends at once. */
async function projectFor(endpoint: string): Promise<string> {
  const project = await mkdtemp(join(tmpdir(), 'strata-channels-'));
  cleanups.push(() => rm(project, { recursive: true, force: true }));
  for (const folder of ['rules', 'journeys']) await cp(join(root, folder), join(project, folder), { recursive: true });
  const shipped = JSON.parse(await readFile(join(root, 'channels.json'), 'utf8'));
  shipped.channels['official-account'] = {
    endpoint,
    auth: { type: 'api-key', header: 'X-Api-Key', secret: { env: 'E2E_CHANNEL_KEY', secretsManager: 'strata/e2e' } },
    rateLimitPerSecond: RATE_PER_SECOND,
    retry: { attempts: 3, maxAgeSeconds: 600 },
    body: { touser: '{{userId}}', template_id: '{{templateId}}', data: { step: '{{journeyId}}/{{stepId}}', id: '{{actionId}}' }, test: '{{test}}' },
  };
  await writeFile(join(project, 'channels.json'), JSON.stringify(shipped, null, 2));
  const visitor = JSON.parse(await readFile(join(project, 'journeys', 'visitor.json'), 'utf8'));
  delete visitor.settings.quietHours;
  delete visitor.settings.frequencyCap;
  visitor.settings.holdoutPercent = 0;
  await writeFile(join(project, 'journeys', 'visitor.json'), JSON.stringify(visitor, null, 2));
  return project;
}

describe('channel delivery from strata dev', () => {
  it('posts the rendered body with the key, retries after a 500, and keeps to the rate limit', { timeout: E2E_TIMEOUT_MS }, async () => {
    const provider = await startProvider();
    const project = await projectFor(provider.url);
    const data = await mkdtemp(join(tmpdir(), 'strata-channels-data-'));
    cleanups.push(() => rm(data, { recursive: true, force: true }));
    const port = await freePort();
    process.env['E2E_CHANNEL_KEY'] = API_KEY;
    cleanups.push(() => void delete process.env['E2E_CHANNEL_KEY']);
    const dev: RunningStrata = startStrata([
      'dev',
      '--no-demo',
      '--port',
      String(port),
      '--day-seconds',
      '86400',
      '--data',
      data,
      '--rules',
      project,
    ]);
    cleanups.push(() => dev.kill());
    await dev.waitForLine(/^Strata is running: PutEvents at /, 40_000);

    const client = new EventBridgeClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
    });
    cleanups.push(() => client.destroy());
    const at = new Date(Date.now() - 60_000).toISOString();
    const response = await client.send(
      new PutEventsCommand({
        Entries: Array.from({ length: USERS }, (_, i) => ({
          EventBusName: 'strata',
          Source: 'e2e.app',
          DetailType: 'user.signed_up',
          Detail: JSON.stringify({ eventId: `signup-${i}`, userId: `reach-${i}`, type: 'user.signed_up', occurredAt: at, properties: {} }),
        })),
      }),
    );
    expect(response.FailedEntryCount).toBe(0);

    for (let i = 0; i < USERS; i++) await dev.waitForLine(new RegExp(`delivered \\S+ via official-account to reach-${i} \\(HTTP 200`), 30_000);
    await dev.waitForLine(/delivery of \S+ via official-account to reach-\d failed \(HTTP 500: \{"error":"busy"\}\); retry 1 in 1\.0 s/, 1000);

    // One request per user, plus the retry of the one that got the 500.
    expect(provider.received).toHaveLength(USERS + 1);
    expect(provider.answered).toEqual([500, 200, 200, 200]);
    const actions = (await readFile(join(data, 'actions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(actions).toHaveLength(USERS);
    for (const action of actions) {
      const requests = provider.received.filter((r) => r.body['touser'] === action.userId);
      expect(requests.length).toBeGreaterThanOrEqual(1);
      for (const request of requests) {
        expect(request.body).toEqual({
          touser: action.userId,
          template_id: 'pm-beginner-case-studies',
          data: { step: `visitor-welcome/${action.stepId}`, id: action.actionId },
          test: false,
        });
        expect(request.headers['x-api-key']).toBe(API_KEY);
        expect(request.headers['content-type']).toBe('application/json');
        expect(request.headers['x-strata-test']).toBeUndefined();
      }
    }
    const retried = provider.received.filter((r) => r.body['touser'] === provider.received[0]!.body['touser']);
    expect(retried).toHaveLength(2);
    expect(retried[1]!.at - retried[0]!.at).toBeGreaterThanOrEqual(0.9 * 1000);

    // Every request, retries included, 1/rate apart at the sender. The first request of a fresh process arrives
    // late (the HTTP client's first connection), and arrival times jitter on a busy machine, so the gaps after it
    // are checked loosely (without the limit they are a few ms) and their span closely.
    const interval = 1000 / RATE_PER_SECOND;
    const times = provider.received
      .map((r) => r.at)
      .sort((a, b) => a - b)
      .slice(1);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(0.5 * interval);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(0.9 * (times.length - 1) * interval);

    expect(await dev.stop('SIGINT', 30_000)).toBe(0);
    await expect(readFile(join(data, CHANNEL_DLQ_FILE), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});

describe('strata send-test', () => {
  it("sends one step's action to the test user through its channel, marked as a test, without touching any data", {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const provider = await startProvider(false);
    const project = await projectFor(provider.url);
    process.env['E2E_CHANNEL_KEY'] = API_KEY;
    cleanups.push(() => void delete process.env['E2E_CHANNEL_KEY']);

    const sent = await strata(['send-test', 'visitor', 'success_story', '--to', 'tester-1', '--rules', project]);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/delivered \S+ via official-account to tester-1 \(HTTP 200, attempt 1\)/);
    expect(provider.received).toHaveLength(1);
    const [request] = provider.received;
    expect(request!.body).toEqual({
      touser: 'tester-1',
      template_id: 'career-change-success-story',
      data: { step: 'visitor-welcome/success_story', id: expect.stringMatching(/^a/) },
      test: true,
    });
    expect(request!.headers['x-strata-test']).toBe('true');
    expect(request!.headers['x-api-key']).toBe(API_KEY);
    // No data folder was named or made: nothing a frequency cap or a funnel reads was written.
    await expect(readFile(join(project, '.strata', 'actions.jsonl'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('names the step it could not find, and the missing secret', { timeout: E2E_TIMEOUT_MS }, async () => {
    const provider = await startProvider(false);
    const project = await projectFor(provider.url);
    delete process.env['E2E_CHANNEL_KEY'];
    const misspelled = await strata(['send-test', 'visitor', 'succes_story', '--to', 'tester-1', '--rules', project]);
    expect(misspelled.code).not.toBe(0);
    expect(misspelled.stderr).toMatch(/send-test: journey visitor-welcome has no step "succes_story".*did you mean "success_story"\?/s);
    const noSecret = await strata(['send-test', 'visitor', 'success_story', '--to', 'tester-1', '--rules', project]);
    expect(noSecret.code).not.toBe(0);
    expect(noSecret.stderr).toMatch(/send-test: channel "official-account" needs its secret in the environment variable E2E_CHANNEL_KEY/);
    expect(provider.received).toHaveLength(0);
  });
});
