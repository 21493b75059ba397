/**
 * The durable ingest log on a real file system, and the local queue fed from it: what is appended survives a
 * reopen until it is marked done, a line torn by a crash is dropped, the file is compacted, and a queue stopped
 * mid-backlog hands the rest to the next start.
 */
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { INGEST_LOG_FILE, openIngestLog } from '../../functions/local/ingest-log.js';
import { createLocalQueue } from '../../functions/local/local-queue.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-ingest-log-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const events = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `id-${from + i}`, body: JSON.stringify({ detail: { n: from + i } }) }));
const lineCount = async (): Promise<number> => (await readFile(join(dir, INGEST_LOG_FILE), 'utf8')).split('\n').filter(Boolean).length;

describe('ingest log', () => {
  it('replays, in order, exactly what was appended and not marked done', async () => {
    const log = await openIngestLog(dir);
    expect(log.replay).toEqual([]);
    await log.append(events(0, 5));
    await log.append(events(5, 5));
    for (const id of ['id-0', 'id-3', 'id-9']) log.markDone(id);
    expect(log.pendingCount()).toBe(7);
    expect(await log.close()).toBe(7);

    const reopened = await openIngestLog(dir);
    expect(reopened.replay.map((event) => event.id)).toEqual(['id-1', 'id-2', 'id-4', 'id-5', 'id-6', 'id-7', 'id-8']);
    expect(reopened.replay[0]!.body).toBe(events(1, 1)[0]!.body);
    await reopened.close();
  });

  it('drops a line torn by a crash mid-write (its request was never answered) and keeps appending cleanly', async () => {
    const log = await openIngestLog(dir);
    await log.append(events(0, 2));
    await log.close();
    await appendFile(join(dir, INGEST_LOG_FILE), '{"id":"id-torn","event":{"detail":{"n"');

    const afterCrash = await openIngestLog(dir);
    expect(afterCrash.replay.map((event) => event.id)).toEqual(['id-0', 'id-1']);
    await afterCrash.append(events(2, 1));
    await afterCrash.close();
    expect((await openIngestLog(dir)).replay.map((event) => event.id)).toEqual(['id-0', 'id-1', 'id-2']);
  });

  it('compacts: once enough events are done, the file holds only the pending ones', async () => {
    const log = await openIngestLog(dir, { compactAfterDone: 10 });
    await log.append(events(0, 30));
    for (let i = 0; i < 25; i++) log.markDone(`id-${i}`);
    await log.append(events(30, 1)); // the next write carries the done lines, then rewrites the file
    expect(await log.close()).toBe(6);
    expect(await lineCount()).toBe(6);
    expect((await openIngestLog(dir)).replay.map((event) => event.id)).toEqual(['id-25', 'id-26', 'id-27', 'id-28', 'id-29', 'id-30']);
  });
});

describe('local queue fed from the ingest log', () => {
  it('keeps what a stopped queue did not handle, and delivers it first on the next start, each once', async () => {
    const handled: string[] = [];
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
      // The first batch is applied; the second is still running when the stack stops, and finishes.
      if (handled.length > 0) await blocked;
      handled.push(...event.Records.map((record) => record.messageId));
      return { batchItemFailures: [] };
    };
    const first = createLocalQueue({ handler, onDeadLetter: () => undefined, concurrency: 1, batchWindowMs: 0, log: await openIngestLog(dir) });
    await first.send(events(0, 25));
    while (handled.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
    const closing = first.close();
    release();
    const { remaining } = await closing;
    expect(handled).toHaveLength(20);
    expect(remaining).toBe(5);

    const replayed: string[] = [];
    const second = createLocalQueue({
      handler: async (event) => {
        replayed.push(...event.Records.map((record) => record.messageId));
        return { batchItemFailures: [] };
      },
      onDeadLetter: () => undefined,
      log: await openIngestLog(dir),
    });
    expect(second.stats()).toMatchObject({ replayed: 5, inFlight: 5 });
    await second.drain();
    expect(replayed).toEqual(['id-20', 'id-21', 'id-22', 'id-23', 'id-24']);
    expect(await second.close()).toEqual({ remaining: 0 });
    expect((await openIngestLog(dir)).replay).toEqual([]);
  });

  it('refuses to send once closed', async () => {
    const queue = createLocalQueue({
      handler: async () => ({ batchItemFailures: [] }),
      onDeadLetter: () => undefined,
      log: await openIngestLog(dir),
    });
    await queue.close();
    await expect(queue.send(events(0, 1))).rejects.toThrow('Queue: closed; the stack is stopping, so nothing more is accepted');
  });
});
