/**
 * The replay on worker threads, each replaying its users in sub-partitions spilled to temporary files
 * (functions/replay/parallel-replay.ts, replay-worker.ts, spilled-history.ts), gives the one-thread replay's result
 * to the byte: summary (as summary.json has it), final tiers, rejections, the ship-day judgement, skipped lines and
 * the progress total, for one thread in one part and for several threads in several parts each. The temporary files
 * are in the OS's temporary directory while the threads hold the history, and gone after close(), after a failure,
 * and after Ctrl-C on `strata simulate`.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ruleset, loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { streamEventLines } from '../../functions/local/event-lines.js';
import { generateEvents, toJsonLines } from '../../functions/local/example-population.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { ParallelReplayError, startParallelReplay } from '../../functions/replay/parallel-replay.js';
import { type SimulationResult, runReplay } from '../../functions/replay/replay-engine.js';
import { root } from '../e2e/strata-process.js';

const STRICTER = 'test/fixtures/stricter';

/** The whole result as summary.json and the comparison read it: the summary's text, everything else in user order. */
function comparable(result: SimulationResult): unknown {
  const byUser = <T>(list: T[], key: (item: T) => string): T[] => [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    summary: JSON.stringify(result.summary, null, 2),
    finalTierByUser: byUser([...result.finalTierByUser], ([userId]) => userId),
    rejected: result.rejected,
    shipDay: result.shipDay,
  };
}

/**
 * A history with what a real export has: out of order, a resend, lines that are not events, events that ingest
 * refuses (a string amount), users under both rulesets' journeys.
 */
function awkwardHistory(): string {
  const lines = toJsonLines(generateEvents({ users: 160, days: 40, seed: 23, start: '2026-09-01' }))
    .split('\n')
    .filter((line) => line !== '');
  // Out of order: every seventh line moved to the end.
  const moved = lines.filter((_, i) => i % 7 === 3);
  const rest = lines.filter((_, i) => i % 7 !== 3);
  const refused = (n: number): string =>
    JSON.stringify({
      eventId: `refused-${n}`,
      userId: `user-${String(n).padStart(5, '0')}`,
      type: 'order.paid',
      occurredAt: '2026-09-20T03:00:00.000Z',
      properties: { amount: '199', product: 'course', currency: 'CNY' },
    });
  return [
    ...rest.slice(0, 500),
    '{ not json',
    JSON.stringify({ eventId: 'no-user', type: 'app.opened', occurredAt: '2026-09-02T00:00:00.000Z', properties: {} }),
    refused(3),
    rest[10]!,
    ...rest.slice(500),
    '',
    refused(77),
    JSON.stringify({ eventId: 'bad-time', userId: 'user-00005', type: 'app.opened', occurredAt: 'yesterday', properties: {} }),
    ...moved,
  ].join('\n');
}

describe('the replay in sub-partitions on worker threads', () => {
  let dir = '';
  let history = '';
  let baseline: Ruleset;
  let stricter: Ruleset;
  const previousTmp = process.env['TMPDIR'];
  /** Where the replay's temporary folders go in these tests, so that nothing else's are counted. */
  let temporary = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-sub-partitions-'));
    temporary = join(dir, 'tmp');
    await mkdir(temporary);
    history = join(dir, 'history.jsonl');
    await writeFile(history, awkwardHistory());
    baseline = loadRulesetOrThrow(await readProjectFiles('.'));
    stricter = loadRulesetOrThrow(await readProjectFiles(STRICTER));
    process.env['TMPDIR'] = temporary;
  });

  afterAll(async () => {
    if (previousTmp === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = previousTmp;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const file of ['generated', 'test/fixtures/simulate-events.jsonl']) {
    it(`gives the one-thread result on ${file === 'generated' ? 'an out-of-order history with bad and refused lines' : file}`, async () => {
      const events = file === 'generated' ? history : file;
      const read = await streamEventLines(events);
      const options = { extraDays: 20, skippedLines: read.skipped.length };
      const alone = {
        baseline: comparable(await runReplay({ ...options, ruleset: baseline, events: read.events, lines: read.lines, shipDayRuleset: stricter })),
        stricter: comparable(await runReplay({ ...options, ruleset: stricter, events: read.events, lines: read.lines })),
      };
      if (file === 'generated') {
        // Not two empty replays agreeing: the history moved people, ran journeys, and has lines of every kind.
        expect(read.skipped.map((line) => line.reason)).toHaveLength(3);
        expect(JSON.parse((alone.baseline as { summary: string }).summary).transitions.promotions).toBeGreaterThan(0);
        expect((await runReplay({ ruleset: baseline, events: read.events, lines: read.lines })).rejected).toHaveLength(2);
      }

      for (const [threads, subPartitions] of [
        [1, 1],
        [1, 4],
        [2, 3],
      ] as const) {
        const parallel = await startParallelReplay({
          file: events,
          threads,
          subPartitions,
          rulesets: [
            { ruleset: baseline, dir: '.' },
            { ruleset: stricter, dir: STRICTER },
          ],
        });
        try {
          expect(parallel.events).toBe(read.events.length);
          expect(parallel.skipped).toEqual(read.skipped);
          // The threads' share of the history is on disk, in the OS's temporary directory, while they hold it.
          const [spillDir, ...others] = (await readdir(temporary)).filter((name) => name.startsWith('strata-simulate-'));
          expect(others).toEqual([]);
          expect((await readdir(join(temporary, spillDir!))).length).toBe(threads * subPartitions);

          for (const [ruleset, shipDayRuleset, expected] of [
            [0, 1, alone.baseline],
            [1, undefined, alone.stricter],
          ] as const) {
            const progress: number[] = [];
            let total = 0;
            const result = await parallel.run({
              ...options,
              ruleset,
              ...(shipDayRuleset !== undefined ? { shipDayRuleset } : {}),
              onProgress: (done, of) => {
                progress.push(done);
                total = of;
              },
            });
            expect(comparable(result)).toEqual(expected);
            // The bar moves forward only and ends full.
            expect(progress).toEqual([...progress].sort((a, b) => a - b));
            expect(progress[progress.length - 1]).toBe(total);
            expect(total).toBe(read.events.length - result.rejected.length);
          }
        } finally {
          await parallel.close();
        }
        expect((await readdir(temporary)).filter((name) => name.startsWith('strata-simulate-'))).toEqual([]);
      }
    }, 120_000);
  }

  it('removes its temporary files when a thread fails', async () => {
    const failing = startParallelReplay({
      file: history,
      threads: 2,
      subPartitions: 2,
      rulesets: [{ ruleset: baseline, dir: join(dir, 'no-such-project') }],
    });
    await expect(failing).rejects.toBeInstanceOf(ParallelReplayError);
    expect((await readdir(temporary)).filter((name) => name.startsWith('strata-simulate-'))).toEqual([]);
  }, 60_000);

  it('removes its temporary files when `strata simulate` is stopped with Ctrl-C', async () => {
    const spillDirs = async (): Promise<string[]> => (await readdir(temporary)).filter((name) => name.startsWith('strata-simulate-'));
    const child = spawn(process.execPath, [join(root, 'bin', 'strata.js'), 'simulate', '--events', history, '--threads', '2'], {
      cwd: root,
      env: { ...process.env, TMPDIR: temporary, STRATA_DEBUG: '' },
      stdio: 'ignore',
    });
    const ended = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
    // Stopped as soon as the replay has made its temporary folder.
    let seen = false;
    while (!seen && child.exitCode === null) {
      seen = (await spillDirs()).length > 0;
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(seen).toBe(true);
    child.kill('SIGINT');
    // Ended by the signal, as without the clean-up, and the folder is gone.
    expect(await ended).toBe('SIGINT');
    expect(await spillDirs()).toEqual([]);
  }, 120_000);
});
