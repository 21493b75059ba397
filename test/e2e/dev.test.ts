/**
 * `strata dev` end to end: the real command as a child process, events posted with the real
 * `@aws-sdk/client-eventbridge` client, and the outcome read where a user reads it (the live log,
 * `<data>/actions.jsonl`, `strata user --json`).
 *
 * The stack's clock starts at the wall time the stack started and runs at one virtual day per --day-seconds.
 * The test learns the stack's virtual "now" from the stamp of a log line (a probe user entering), then backdates
 * events relative to it, so that the whole member lifecycle (promotion, the member journey's three sends, grace
 * and demotion) plays out in a few seconds of wall time.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPercent } from '../../functions/core/hash.js';
import { type RunningStrata, freePort, logStampOf, startStrata, strata } from './strata-process.js';

const DAY_MS = 86_400_000;
const DAY_SECONDS = 0.25;
/** Virtual milliseconds per wall millisecond. */
const SPEED = DAY_MS / (DAY_SECONDS * 1000);

/** Not held out of the member journey (hashPercent 49.6 ≥ 10), so it gets every send. */
const TREATED = 'e2e-ada';
/** Held out of the member journey (hashPercent 5.7 < 10): promoted like TREATED, but sent nothing by it. */
const HELD_OUT = 'e2e-bea';
const PROBE = 'e2e-probe';
const MEMBER_JOURNEY = 'member-nurture';

interface ActionLine {
  userId: string;
  kind: 'content' | 'invite' | 'offer';
  journeyId: string;
  stepId: string;
}

interface UserJson {
  userId: string;
  tier: string;
  history: Array<{ at: string; fromTier: string; toTier: string; transitions: string[] }>;
}

/** Days since the epoch of an instant's (or a yyyy-mm-dd date's) local date in Asia/Shanghai, UTC+8 all year. */
function localDay(value: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : Date.parse(value) + 8 * 3_600_000;
  return Math.floor(ms / DAY_MS);
}

const userEvent = (userId: string, n: number, type: string, at: Date, properties: Record<string, unknown> = {}): PutEventsRequestEntry => ({
  EventBusName: 'strata',
  Source: 'e2e.app',
  DetailType: type,
  Detail: JSON.stringify({ eventId: `${userId}-${n}`, userId, type, occurredAt: at.toISOString(), properties }),
  Time: at,
});

describe('strata dev (the command, with the real EventBridge SDK)', () => {
  let dev: RunningStrata | undefined;
  let dataDir = '';

  afterAll(async () => {
    dev?.kill();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('promotes, runs the member journey in order, demotes after grace, rejects bad entries singly, and stops cleanly on SIGINT', async () => {
    // The user ids are chosen for the holdout split; fail loudly if the hash or the journey's split ever changes.
    expect(hashPercent(`${TREATED}:${MEMBER_JOURNEY}`)).toBeGreaterThanOrEqual(10);
    expect(hashPercent(`${HELD_OUT}:${MEMBER_JOURNEY}`)).toBeLessThan(10);

    dataDir = await mkdtemp(join(tmpdir(), 'strata-e2e-dev-'));
    const data = join(dataDir, 'data');
    const port = await freePort();
    dev = startStrata(['dev', '--no-demo', '--port', String(port), '--day-seconds', String(DAY_SECONDS), '--data', data]);
    await dev.waitForLine(/^Strata is running: PutEvents at http:\/\/127\.0\.0\.1:\d+ \(bus "strata"\)/, 40_000);
    expect(existsSync(join(data, 'stack.json'))).toBe(true);

    const client = new EventBridgeClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
    });
    try {
      // 1. A missing DetailType fails that entry alone; the probe next to it is accepted. The probe's "entered"
      //    line tells us the stack's virtual time (its clock is ahead of the wall clock, and always at least it).
      const first = await client.send(
        new PutEventsCommand({
          Entries: [
            userEvent(PROBE, 1, 'app.opened', new Date()),
            {
              Source: 'e2e.app',
              Detail: JSON.stringify({ eventId: 'no-type', userId: PROBE, type: 'app.opened', occurredAt: new Date().toISOString() }),
            },
          ],
        }),
      );
      expect(first.FailedEntryCount).toBe(1);
      expect(first.Entries?.[0]?.EventId).toEqual(expect.any(String));
      expect(first.Entries?.[1]).toEqual({
        ErrorCode: 'InvalidArgument',
        ErrorMessage: 'Parameter DetailType is not valid. Reason: DetailType is a required argument.',
      });

      const probe = await dev.waitForLine(new RegExp(`  ${PROBE}  entered as visitor$`), 15_000);
      // The stamp is truncated to the minute and the line was printed before we read it: a lower bound of now.
      const virtualNow = (): number => logStampOf(probe.text) + (Date.now() - probe.seenAt) * SPEED;

      // 2. Three active days in the last 30, one with a finished lesson: member's rule. The first day, 25 days back,
      //    comes alone, so each user first enters as a visitor. Two of the days leave the 30-day window about 5
      //    days after the promotion; the 7-day tenure then ends with the user no longer qualifying, grace (14 days)
      //    starts and expires into a demotion, all with no further event.
      const now = virtualNow();
      const at = (daysAgo: number): Date => new Date(now - daysAgo * DAY_MS);
      const qualifyingDay = at(1);
      const entering = await client.send(
        new PutEventsCommand({ Entries: [userEvent(TREATED, 1, 'app.opened', at(25)), userEvent(HELD_OUT, 1, 'app.opened', at(25))] }),
      );
      expect(entering.FailedEntryCount).toBe(0);
      await dev.waitForLine(new RegExp(`  ${TREATED}  entered as visitor$`), 15_000);
      await dev.waitForLine(new RegExp(`  ${HELD_OUT}  entered as visitor$`), 15_000);

      const rest = (userId: string): PutEventsRequestEntry[] => [
        userEvent(userId, 2, 'content.viewed', at(24), { templateId: 'pm-basics-101' }),
        userEvent(userId, 3, 'content.completed', qualifyingDay, { templateId: 'pm-basics-101' }),
      ];
      const malformed: PutEventsRequestEntry = {
        EventBusName: 'strata',
        Source: 'e2e.app',
        DetailType: 'content.completed',
        Detail: '{"eventId": "broken", "userId": ',
      };
      const mixed = await client.send(new PutEventsCommand({ Entries: [...rest(TREATED), malformed, ...rest(HELD_OUT)] }));
      expect(mixed.FailedEntryCount).toBe(1);
      expect(mixed.Entries).toHaveLength(5);
      expect(mixed.Entries?.[2]).toEqual({ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' });
      for (const index of [0, 1, 3, 4]) expect(mixed.Entries?.[index]?.EventId).toEqual(expect.any(String));

      // 3. The good entries of that call were applied: both users are promoted (each needed both events).
      await dev.waitForLine(new RegExp(`  ${TREATED}  promoted visitor → member$`), 15_000);
      await dev.waitForLine(new RegExp(`  ${HELD_OUT}  promoted visitor → member$`), 15_000);

      // 4. Grace, then the demotion on the virtual clock, with no further events (the timing is checked in 6).
      const graceLine = await dev.waitForLine(new RegExp(`  ${TREATED}  grace started in member, until \\d{4}-\\d{2}-\\d{2}$`), 20_000);
      const demoted = await dev.waitForLine(new RegExp(`  ${TREATED}  demoted member → visitor$`), 20_000);
      expect(dev.lines.some((line) => / {2}nightly review: \d+ users due, \d+ changed$/.test(line.text))).toBe(true);

      // 5. The member journey's sends, in order, from actions.jsonl; nothing for the held-out user.
      const actions = (await readFile(join(data, 'actions.jsonl'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as ActionLine);
      const memberSends = (userId: string): string[] =>
        actions.filter((a) => a.userId === userId && a.journeyId === MEMBER_JOURNEY).map((a) => `${a.kind}:${a.stepId}`);
      expect(memberSends(TREATED)).toEqual(['content:live_session_replay', 'invite:members_group', 'offer:member_price']);
      expect(memberSends(HELD_OUT)).toEqual([]);
      // The live log shows the same sends in the same order, before the demotion ended the journey.
      const sendLines = ['content', 'invite ', 'offer  '].map((kind) =>
        dev!.lines.findIndex((l) => l.text.includes(`  ${TREATED}  ${kind}`) && l.text.includes(`(${MEMBER_JOURNEY}/`)),
      );
      expect(sendLines.every((index) => index >= 0)).toBe(true);
      expect([...sendLines].sort((a, b) => a - b)).toEqual(sendLines);
      expect(sendLines[2]).toBeLessThan(dev.lines.indexOf(demoted));

      // 6. `strata user` talks to the running stack through <data>/stack.json.
      const user = await strata(['user', TREATED, '--json', '--data', data]);
      expect(user.stderr).toBe('');
      expect(user.code).toBe(0);
      const view = JSON.parse(user.stdout) as UserJson;
      expect(view.tier).toBe('visitor');
      const history = [...view.history].reverse(); // oldest first
      expect(history.map((h) => `${h.fromTier}→${h.toTier} ${h.transitions.join('+')}`)).toEqual([
        'visitor→visitor entered',
        'visitor→member promoted',
        'member→member grace-started',
        'member→visitor demoted',
      ]);
      // The decisions' own times (the log's stamps are when a line was printed, which may lag under load).
      // Tenure: 7 local days from the promotion, grace starting at the review on that date. Grace: 14 days, the
      // demotion at the review on the date it ends (the one the log line names). A review that a loaded machine
      // runs late (it has 0.23 s of wall time a day) may land on the next local date, so one day of slack.
      const [, promotion, grace, demotion] = history.map((h) => localDay(h.at));
      const graceUntil = localDay(/until (\S+)$/.exec(graceLine.text)![1]!);
      expect(grace! - promotion!).toBeGreaterThanOrEqual(7);
      expect(grace! - promotion!).toBeLessThanOrEqual(8);
      expect(graceUntil - grace!).toBe(14);
      expect(demotion! - graceUntil).toBeGreaterThanOrEqual(0);
      expect(demotion! - graceUntil).toBeLessThanOrEqual(1);
    } finally {
      client.destroy();
    }

    // 7. Ctrl-C: a clean shutdown, exit 0, and no stale stack.json for `strata user` to trip over.
    const code = await dev.stop('SIGINT', 20_000);
    expect(code).toBe(0);
    // Journey steps already under way finish while the stack flushes, and may log before "Stopped: …".
    const texts = dev.lines.map((l) => l.text);
    const afterStopping = texts.slice(texts.lastIndexOf('Stopping: flushing state...') + 1);
    expect(afterStopping.at(-1)).toBe('Stopped: every accepted event is applied.');
    for (const line of afterStopping.slice(0, -1)) expect(line).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2} \+08:00 {2}/);
    expect(existsSync(join(data, 'stack.json'))).toBe(false);
    expect(dev.stderr()).not.toMatch(/\n\s+at /);
  });
});
