/**
 * The embedded stack's tally queue file (functions/local/local-tally-queue.ts): a tally whose enqueue resolved survives
 * the process being killed, a line a crash cut short is dropped (its enqueue never resolved), and the count's removal
 * keeps what was enqueued meanwhile. `strata report` counts what waits from the same file.
 */
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COUNTER_NAMES, type ExecutionTally } from '../../functions/core/analytics.js';
import { encodeTally } from '../../functions/core/tally-batches.js';
import { TALLY_QUEUE_FILE, openLocalTallyQueue, readQueuedTallies } from '../../functions/local/local-tally-queue.js';

const tally = (i: number): ExecutionTally => ({
  id: `j${String(i).padStart(16, '0')}`,
  journeyId: 'visitor-welcome',
  date: '2026-03-02',
  counts: { [COUNTER_NAMES.sent('beginner_cases')]: 1, [COUNTER_NAMES.deferred('beginner_cases')]: (i % 3) + 1 },
});

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'strata-tally-queue-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** A separate process that enqueues `count` tallies at once, says so once every enqueue resolved, and waits to be killed. */
function enqueueThenWait(count: number): Promise<{ kill(): Promise<NodeJS.Signals | null> }> {
  const module = new URL('../../functions/local/local-tally-queue.ts', import.meta.url).href;
  const script = `
    const { openLocalTallyQueue } = await import(${JSON.stringify(module)});
    const queue = await openLocalTallyQueue(${JSON.stringify(dataDir)});
    const tallies = ${JSON.stringify(Array.from({ length: count }, (_, i) => tally(i)))};
    await Promise.all(tallies.map((t) => queue.enqueue(t)));
    process.stdout.write('enqueued\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (!chunk.toString().includes('enqueued')) return;
      resolve({
        kill: () =>
          new Promise((done) => {
            child.once('exit', (_code, signal) => done(signal));
            child.kill('SIGKILL');
          }),
      });
    });
    child.once('exit', (code) => reject(new Error(`the enqueuing process exited (${code}) before enqueuing: ${stderr}`)));
  });
}

describe('the local tally queue file', () => {
  it('keeps every tally whose enqueue resolved when the process is killed, and hands them to the next count', async () => {
    const child = await enqueueThenWait(50);
    expect(await child.kill()).toBe('SIGKILL');
    expect((await readQueuedTallies(dataDir)).map((t) => t.id).sort()).toEqual(Array.from({ length: 50 }, (_, i) => tally(i).id).sort());
    const queue = await openLocalTallyQueue(dataDir);
    try {
      expect(await queue.waiting()).toBe(50);
      const received = await queue.receive(100);
      expect(received.map((r) => r.tally).sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(Array.from({ length: 50 }, (_, i) => tally(i)));
    } finally {
      await queue.close();
    }
  }, 60_000);

  it('drops a line a crash cut short, even one that still reads as a tally, and appends whole lines after it', async () => {
    const first = await openLocalTallyQueue(dataDir);
    await first.enqueue(tally(1));
    await first.close();
    // A crash in the middle of the next append: the line has no end, and its last count is cut.
    await appendFile(join(dataDir, TALLY_QUEUE_FILE), encodeTally(tally(2)).slice(0, -2));
    expect((await readQueuedTallies(dataDir)).map((t) => t.id)).toEqual([tally(1).id]);
    const reopened = await openLocalTallyQueue(dataDir);
    await reopened.enqueue(tally(3));
    await reopened.close();
    expect(await readQueuedTallies(dataDir)).toEqual([tally(1), tally(3)]);
  });

  it('removes only what the count received: a tally enqueued while it ran stays, on disk too', async () => {
    const queue = await openLocalTallyQueue(dataDir);
    try {
      for (const i of [1, 2, 3]) await queue.enqueue(tally(i));
      const received = await queue.receive(2);
      expect(received.map((r) => r.tally.id)).toEqual([tally(1).id, tally(2).id]);
      // Not handed out twice to the same count.
      const rest = await queue.receive(10);
      expect(rest.map((r) => r.tally.id)).toEqual([tally(3).id]);
      const late = queue.enqueue(tally(4));
      await queue.remove(received.map((r) => r.receipt));
      await late;
      expect(await readQueuedTallies(dataDir)).toEqual([tally(3), tally(4)]);
      expect(await queue.waiting()).toBe(2);
      // A release makes a received tally receivable again (the count failed and is retried).
      const late4 = await queue.receive(10);
      expect(late4.map((r) => r.tally.id)).toEqual([tally(4).id]);
      await queue.release([...rest, ...late4].map((r) => r.receipt));
      expect((await queue.receive(10)).map((r) => r.tally.id)).toEqual([tally(3).id, tally(4).id]);
      expect((await readFile(join(dataDir, TALLY_QUEUE_FILE), 'utf8')).endsWith('\n')).toBe(true);
    } finally {
      await queue.close();
    }
  });
});
