/**
 * `strata dev` keeps its journeys across a crash: the real command as a child process, events posted with the real
 * `@aws-sdk/client-eventbridge` client, the process killed with SIGKILL while a user's member journey waits between
 * its first and second sends, then started again on the same data folder. The journey carries on from its wait and
 * sends the invite and then the offer once each; `strata user --json` tells the running journey from the finished
 * one, and the journey that the promotion stopped is recorded as ABORTED.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPercent } from '../../functions/core/hash.js';
import { JOURNEY_EXECUTIONS_FILE } from '../../functions/local/journey-execution-log.js';
import { type RunningStrata, freePort, logStampOf, startStrata, strata } from './strata-process.js';

const DAY_MS = 86_400_000;
/** Two wall seconds a day: the member journey's 2-day wait lasts 4 s, long enough to kill the stack inside it. */
const DAY_SECONDS = 2;
const SPEED = DAY_MS / (DAY_SECONDS * 1000);
const PROBE = 'e2e-resume-probe';
const MEMBER_JOURNEY = 'member-nurture';
const VISITOR_JOURNEY = 'visitor-welcome';

/** A user in neither journey's holdout: the visitor journey runs until the promotion stops it, the member one sends. */
function treatedUser(): string {
  for (let n = 1; ; n++) {
    const userId = `e2e-resume-${n}`;
    if (hashPercent(`${userId}:${MEMBER_JOURNEY}`) >= 10 && hashPercent(`${userId}:${VISITOR_JOURNEY}`) >= 10) return userId;
  }
}

const userEvent = (userId: string, n: number, type: string, at: Date, properties: Record<string, unknown> = {}): PutEventsRequestEntry => ({
  EventBusName: 'strata',
  Source: 'e2e.app',
  DetailType: type,
  Detail: JSON.stringify({ eventId: `${userId}-${n}`, userId, type, occurredAt: at.toISOString(), properties }),
  Time: at,
});

interface UserJson {
  tier: string;
  journey: { name: string; status: string; stoppedAt: string | null; lastStep: string | null } | null;
}

async function userJson(data: string, userId: string): Promise<UserJson> {
  const result = await strata(['user', userId, '--json', '--data', data]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as UserJson;
}

describe('strata dev: journeys survive kill -9', () => {
  const running: RunningStrata[] = [];
  let dataDir = '';

  afterAll(async () => {
    for (const dev of running) dev.kill();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('a journey in a wait when the process is killed carries on after the restart and sends its next steps once', async () => {
    const user = treatedUser();
    dataDir = await mkdtemp(join(tmpdir(), 'strata-e2e-resume-'));
    const data = join(dataDir, 'data');
    const port = await freePort();
    const args = ['dev', '--no-demo', '--port', String(port), '--day-seconds', String(DAY_SECONDS), '--data', data];
    const memberSend = (kind: string, stepId: string): RegExp => new RegExp(`  ${user}  ${kind} .*\\(${MEMBER_JOURNEY}/${stepId}\\)$`);

    const first = startStrata(args);
    running.push(first);
    await first.waitForLine(/^Strata is running: PutEvents at /, 40_000);
    const client = new EventBridgeClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
    });
    try {
      // The probe's "entered" line gives the stack's journey time; events are dated relative to it.
      expect((await client.send(new PutEventsCommand({ Entries: [userEvent(PROBE, 1, 'app.opened', new Date())] }))).FailedEntryCount).toBe(0);
      const probe = await first.waitForLine(new RegExp(`  ${PROBE}  entered as visitor$`), 15_000);
      const now = logStampOf(probe.text) + (Date.now() - probe.seenAt) * SPEED;
      const at = (daysAgo: number): Date => new Date(now - daysAgo * DAY_MS);
      // Enters as a visitor (the visitor journey starts), then qualifies for member: the member journey replaces it.
      expect((await client.send(new PutEventsCommand({ Entries: [userEvent(user, 1, 'app.opened', at(25))] }))).FailedEntryCount).toBe(0);
      await first.waitForLine(new RegExp(`  ${user}  entered as visitor$`), 15_000);
      const promotion = [
        userEvent(user, 2, 'content.viewed', at(24), { templateId: 'pm-basics-101' }),
        userEvent(user, 3, 'content.completed', at(1), { templateId: 'pm-basics-101' }),
      ];
      expect((await client.send(new PutEventsCommand({ Entries: promotion }))).FailedEntryCount).toBe(0);
      await first.waitForLine(new RegExp(`  ${user}  promoted visitor → member$`), 15_000);
    } finally {
      client.destroy();
    }

    // The first send, then the 2-day wait (4 s): kill the stack inside it.
    await first.waitForLine(memberSend('content', 'live_session_replay'), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(first.lines.some((line) => memberSend('invite ', 'members_group').test(line.text))).toBe(false);
    expect(await first.stop('SIGKILL', 10_000)).toBe('SIGKILL');

    // Down, the stack's record still says the journey runs (nothing ended it), with the content as its last send.
    const whileDown = await userJson(data, user);
    expect(whileDown.tier).toBe('member');
    expect(whileDown.journey).toMatchObject({ status: 'RUNNING', stoppedAt: null, lastStep: 'live_session_replay' });

    const second = startStrata(args);
    running.push(second);
    await second.waitForLine(/^Strata is running: PutEvents at /, 40_000);
    await second.waitForLine(/^Resumed \d+ journeys? where (it|they) stopped\.$/, 5_000);
    await second.waitForLine(memberSend('invite ', 'members_group'), 30_000);

    // In the 4-day wait before the offer: running, the invite its last send.
    const waiting = await userJson(data, user);
    expect(waiting.journey).toMatchObject({ name: whileDown.journey!.name, status: 'RUNNING', stoppedAt: null, lastStep: 'members_group' });

    await second.waitForLine(memberSend('offer  ', 'member_price'), 30_000);
    let finished = await userJson(data, user);
    for (let tries = 0; finished.journey?.status === 'RUNNING' && tries < 20; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      finished = await userJson(data, user);
    }
    expect(finished.journey).toMatchObject({
      name: whileDown.journey!.name,
      status: 'SUCCEEDED',
      stoppedAt: expect.any(String),
      lastStep: 'member_price',
    });

    expect(await second.stop('SIGINT', 20_000)).toBe(0);

    // Each member send once, across both runs: in the live log and in actions.jsonl.
    const lines = [...first.lines, ...second.lines].map((line) => line.text);
    for (const [kind, step] of [
      ['content', 'live_session_replay'],
      ['invite ', 'members_group'],
      ['offer  ', 'member_price'],
    ] as const) {
      expect(
        lines.filter((text) => memberSend(kind, step).test(text)),
        step,
      ).toHaveLength(1);
    }
    const actions = (await readFile(join(data, 'actions.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { userId: string; journeyId: string; stepId: string });
    expect(actions.filter((a) => a.userId === user && a.journeyId === MEMBER_JOURNEY).map((a) => a.stepId)).toEqual([
      'live_session_replay',
      'members_group',
      'member_price',
    ]);

    // The visitor journey the promotion stopped is ABORTED, with its end time; nothing is left without a status.
    const records = new Map(
      (await readFile(join(data, JOURNEY_EXECUTIONS_FILE), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { executionName: string; tier: string; status: string; stoppedAt?: string })
        .map((record) => [record.executionName, record]),
    );
    expect([...records.values()].filter((record) => record.tier === 'visitor' && record.status === 'ABORTED')).toEqual([
      expect.objectContaining({ stoppedAt: expect.any(String) }),
    ]);
    expect(records.get(finished.journey!.name)).toMatchObject({ status: 'SUCCEEDED', stoppedAt: finished.journey!.stoppedAt });
    for (const dev of running) expect(dev.stderr()).not.toMatch(/\n\s+at /);
  }, 180_000);
});
