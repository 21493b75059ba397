/**
 * `strata simulate --threads N` (the compiled command, whose worker threads run their own bundle) writes the same
 * summary.json, moves CSV and skipped-line report as the replay in one thread, with --compare and the ship-day
 * judgement, on the simulate fixture (bad lines, a resend) under the shipped and the stricter rules.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StrataResult, strata } from '../e2e/strata-process.js';

const EVENTS = 'test/fixtures/simulate-events.jsonl';

interface Run {
  result: StrataResult;
  summary: string;
  moves: string;
}

describe('strata simulate on worker threads', () => {
  let dir = '';
  const runs = new Map<number, Run>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-threads-'));
    for (const threads of [1, 3]) {
      const out = join(dir, String(threads));
      const args = ['simulate', '--events', EVENTS, '--days', '20', '--compare', 'test/fixtures/stricter'];
      const result = await strata([...args, '--out', out, '--moves-csv', join(dir, `moves-${threads}.csv`), '--threads', String(threads)]);
      if (result.code !== 0) throw new Error(`simulate --threads ${threads} failed: ${result.stderr}`);
      runs.set(threads, {
        result,
        summary: await readFile(join(out, 'summary.json'), 'utf8'),
        moves: await readFile(join(dir, `moves-${threads}.csv`), 'utf8'),
      });
    }
  }, 240_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives the one-thread summary, moves and skipped lines', () => {
    const one = runs.get(1)!;
    const three = runs.get(3)!;
    expect(three.result.stdout).toContain('in memory on 3 threads');
    // `git describe` of the checkout may move between the two runs (a commit meanwhile); nothing else may.
    const withoutDescribe = (text: string): unknown => JSON.parse(text.replace(/"describe": "[^"]*",?/g, ''));
    expect(withoutDescribe(three.summary)).toEqual(withoutDescribe(one.summary));
    expect(three.moves).toBe(one.moves);
    // The lines about the file (a rebuild of the command, when a source changed between the runs, may add others).
    const fileLines = (stderr: string): string[] => stderr.split('\n').filter((line) => line.startsWith(EVENTS));
    expect(fileLines(three.result.stderr)).toEqual(fileLines(one.result.stderr));
    expect(fileLines(one.result.stderr).length).toBeGreaterThan(0);
    // Not two empty runs agreeing.
    expect(JSON.parse(one.summary).transitions.promotions).toBeGreaterThan(0);
    expect(one.moves.split('\n').length).toBeGreaterThan(2);
  });
});
