/**
 * The read commands (`strata user`, `strata explain`) as a user runs them: at the running stack's clock, into a
 * pipe that closes early, against a mistyped --data, and against AWS with no region set.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStrata, freePort, logStampOf, root, startStrata, strata } from './strata-process.js';

const DAY_MS = 86_400_000;
const DAY_SECONDS = 1;
const SPEED = DAY_MS / (DAY_SECONDS * 1000);
const USER = 'e2e-clock';
const PROBE = 'e2e-clock-probe';

/** Runs `strata` with its stdout closed before it writes, as `strata … | head` leaves it after head exits. */
async function strataIntoClosedPipe(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(root, 'bin', 'strata.js'), ...args], {
    cwd: root,
    env: { ...process.env, STRATA_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
  return { code, stderr };
}

const appOpened = (userId: string, n: number, at: Date): PutEventsRequestEntry => ({
  EventBusName: 'strata',
  Source: 'e2e.app',
  DetailType: 'app.opened',
  Detail: JSON.stringify({ eventId: `${userId}-${n}`, userId, type: 'app.opened', occurredAt: at.toISOString(), properties: {} }),
  Time: at,
});

let folder = '';
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'strata-e2e-read-'));
});
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('read commands', () => {
  it('stop quietly, with no stack trace, when the pipe they write to closes', async () => {
    const result = await strataIntoClosedPipe(['journey', 'show', 'member']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('create nothing for a --data folder that does not exist, and say so', async () => {
    const missing = join(folder, 'no-such-folder');
    for (const command of ['user', 'explain']) {
      const { code, stdout, stderr } = await strata([command, 'user-00054', '--data', missing]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toBe(
        `strata: ${command}: cannot read user "user-00054": no local data in ${missing} (the folder does not exist) (start \`strata dev\` first, pass --data with the folder it uses, or --table to read from AWS)\n`,
      );
      expect(existsSync(missing)).toBe(false);
    }
  });

  it('create nothing in a folder where no stack has run', async () => {
    const empty = join(folder, 'empty');
    await mkdir(empty);
    const { code, stderr } = await strata(['explain', 'user-00054', '--data', empty]);
    expect(code).toBe(2);
    expect(stderr).toContain('no local data in');
    expect(stderr).toContain('no stack has run there');
    expect(await readdir(empty)).toEqual([]);
  });

  it('name the id as typed and say how to set the region when --table has none', async () => {
    const noRegion = {
      AWS_REGION: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: join(folder, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(folder, 'no-credentials'),
      HOME: folder,
    };
    for (const command of ['user', 'explain']) {
      const { code, stderr } = await strata([command, 'user-00054', '--table', 'strata-prod'], root, noRegion);
      expect(code).toBe(2);
      expect(stderr).toBe(
        `strata: ${command}: cannot read user "user-00054" from table strata-prod: no AWS region is set (pass --region, set AWS_REGION, or use a profile (AWS_PROFILE) that names a region)\n`,
      );
    }
  });

  describe('with a stack running on a fast clock', () => {
    let dev: RunningStrata | undefined;
    afterAll(() => dev?.kill());

    it("judge metrics at the stack's clock, and at the wall clock once it stops", async () => {
      const data = join(folder, 'data');
      const port = await freePort();
      dev = startStrata(['dev', '--no-demo', '--port', String(port), '--day-seconds', String(DAY_SECONDS), '--data', data]);
      await dev.waitForLine(/^Strata is running: PutEvents at /, 40_000);
      await dev.waitForLine(/^Log times are the stack's clock, in the ruleset's time zone Asia\/Shanghai\.$/, 5_000);
      const client = new EventBridgeClient({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'eu-west-1',
        credentials: { accessKeyId: 'e2e', secretAccessKey: 'e2e' },
      });
      try {
        // Let the stack's clock run a week ahead of the wall, then learn its "now" from a log line's stamp.
        await new Promise((resolve) => setTimeout(resolve, 7 * DAY_SECONDS * 1000));
        await client.send(new PutEventsCommand({ Entries: [appOpened(PROBE, 1, new Date())] }));
        const probe = await dev.waitForLine(new RegExp(`  ${PROBE}  entered as visitor$`), 15_000);
        const stackNow = logStampOf(probe.text) + (Date.now() - probe.seenAt) * SPEED;
        expect(stackNow - Date.now()).toBeGreaterThan(5 * DAY_MS);

        // Active on three days of the stack's last week: all three are still ahead of the wall clock's today.
        const days = [1, 2, 3].map((n) => new Date(stackNow - n * DAY_MS));
        const posted = await client.send(new PutEventsCommand({ Entries: days.map((at, n) => appOpened(USER, n, at)) }));
        expect(posted.FailedEntryCount).toBe(0);
        await dev.waitForLine(new RegExp(`  ${USER}  entered as visitor$`), 15_000);

        const running = await strata(['user', USER, '--json', '--data', data]);
        expect(running.stderr).toBe('');
        expect((JSON.parse(running.stdout) as { metrics: Record<string, number | null> }).metrics['daysActive30']).toBe(3);
        expect((await strata(['explain', USER, '--data', data])).code).toBe(0);

        const piped = await strataIntoClosedPipe(['user', USER, '--data', data]);
        expect(piped.stderr).toBe('');
        expect(piped.code).toBe(0);
      } finally {
        client.destroy();
      }
      expect(await dev.stop('SIGINT', 20_000)).toBe(0);

      // No stack: the stored days are judged at the wall clock, which has not reached them yet.
      const stopped = await strata(['user', USER, '--json', '--data', data]);
      expect(stopped.stderr).toBe('');
      expect((JSON.parse(stopped.stdout) as { metrics: Record<string, number | null> }).metrics['daysActive30']).toBe(0);
    }, 120_000);
  });
});
