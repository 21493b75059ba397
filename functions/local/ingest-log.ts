/**
 * The embedded stack's durable ingest log: what makes "accepted" mean "on disk".
 *
 * An append-only file of JSON lines in the data folder. PutEvents appends its accepted events and answers only
 * after the write is fsync'd (one fsync per request; concurrent requests share one). The ingest queue is fed from
 * here, and an event leaves the log (a `done` line) only once it is applied or dead-lettered. On start every
 * event without a `done` line is replayed; ingest is idempotent per eventId, so replaying one that was applied
 * just before a crash changes nothing.
 *
 *   {"id":"<envelope id>","event":{...the EventBridge envelope...}}
 *   {"done":"<envelope id>"}
 *
 * `done` lines are not fsync'd: losing one to a crash means one more (harmless) replay. The file is rewritten
 * with only the pending events when it opens (which also drops a line torn by a crash mid-write: its request was
 * never answered) and whenever enough events are done, so it does not grow without bound.
 */
import { type FileHandle, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const INGEST_LOG_FILE = 'ingest-log.jsonl';
/** Rewrite the log once this many events are done since the last rewrite. */
export const DEFAULT_COMPACT_AFTER_DONE = 5_000;
/** `done` lines wait at most this long before they are written. */
const DONE_FLUSH_MS = 50;

export interface LoggedEvent {
  /** The envelope id: also the queue's message id, so an ack names the line to retire. */
  id: string;
  body: string;
}

export interface IngestLog {
  /** Events accepted earlier and not yet applied, oldest first, as found when the log was opened. */
  readonly replay: LoggedEvent[];
  /** Appends and fsyncs; resolves once the events are durable. */
  append(events: LoggedEvent[]): Promise<void>;
  /** The event was applied or dead-lettered: it will not be replayed. */
  markDone(id: string): void;
  /** How many appended events are not yet done. */
  pendingCount(): number;
  /** Writes outstanding `done` lines and closes the file; resolves with how many events stay for the next start. */
  close(): Promise<number>;
}

export class IngestLogError extends Error {
  override readonly name = 'IngestLogError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`IngestLog: ${message}`, options);
  }
}

interface PendingWrite {
  text: string;
  sync: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export async function openIngestLog(dataDir: string, options: { compactAfterDone?: number } = {}): Promise<IngestLog> {
  const path = join(dataDir, INGEST_LOG_FILE);
  const compactAfterDone = options.compactAfterDone ?? DEFAULT_COMPACT_AFTER_DONE;
  await mkdir(dirname(path), { recursive: true });
  const pending = await readPending(path);
  let file = await rewrite(path, pending);
  const replay = [...pending.entries()].map(([id, body]) => ({ id, body }));

  let queued: PendingWrite[] = [];
  let doneLines: string[] = [];
  let doneSinceRewrite = 0;
  let writing: Promise<void> | undefined;
  let doneTimer: NodeJS.Timeout | undefined;
  let closed = false;

  /** One write and at most one fsync for everything queued meanwhile: group commit. */
  async function writeQueued(): Promise<void> {
    while (queued.length > 0 || doneLines.length > 0) {
      const batch = queued;
      queued = [];
      const text = doneLines.join('') + batch.map((write) => write.text).join('');
      doneLines = [];
      try {
        await file.write(text);
        if (batch.some((write) => write.sync)) await file.datasync();
        for (const write of batch) write.resolve();
      } catch (error) {
        for (const write of batch)
          write.reject(new IngestLogError(`cannot write ${path} (${(error as Error).message}); the events were not accepted`, { cause: error }));
      }
      if (doneSinceRewrite >= compactAfterDone) {
        doneSinceRewrite = 0;
        await file.close();
        try {
          file = await rewrite(path, pending);
        } catch {
          // The rename is atomic, so the old log is intact: keep appending to it and compact another time.
          file = await open(path, 'a');
        }
      }
    }
  }

  function startWriting(): Promise<void> {
    // A failed append is reported to its own caller; nothing else may crash the stack from here.
    writing ??= writeQueued()
      .catch(() => undefined)
      .finally(() => {
        writing = undefined;
        if (queued.length > 0 || doneLines.length > 0) void startWriting();
      });
    return writing;
  }

  return {
    replay,
    append(events) {
      if (closed) return Promise.reject(new IngestLogError('the log is closed; the stack is stopping'));
      for (const event of events) pending.set(event.id, event.body);
      const text = events.map((event) => acceptedLine(event.id, event.body)).join('');
      return new Promise<void>((resolve, reject) => {
        queued.push({ text, sync: true, resolve, reject });
        void startWriting();
      }).catch((error: unknown) => {
        for (const event of events) pending.delete(event.id);
        throw error;
      });
    },
    markDone(id) {
      if (!pending.delete(id)) return;
      doneLines.push(`{"done":${JSON.stringify(id)}}\n`);
      doneSinceRewrite += 1;
      if (!doneTimer && !closed) {
        doneTimer = setTimeout(() => {
          doneTimer = undefined;
          void startWriting();
        }, DONE_FLUSH_MS);
      }
    },
    pendingCount: () => pending.size,
    async close() {
      closed = true;
      if (doneTimer) clearTimeout(doneTimer);
      while (writing) await writing;
      await writeQueued();
      await file.datasync();
      await file.close();
      return pending.size;
    },
  };
}

function acceptedLine(id: string, body: string): string {
  return `{"id":${JSON.stringify(id)},"event":${body}}\n`;
}

/** The events without a `done` line, in the order they were accepted. A torn or unreadable line is skipped. */
async function readPending(path: string): Promise<Map<string, string>> {
  const pending = new Map<string, string>();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return pending;
    throw new IngestLogError(`cannot read ${path} (${(error as Error).message})`, { cause: error });
  }
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let record: { id?: unknown; event?: unknown; done?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      continue; // only a crash mid-write leaves a partial line, and that request was never acknowledged
    }
    if (typeof record.done === 'string') pending.delete(record.done);
    else if (typeof record.id === 'string' && record.event !== undefined) pending.set(record.id, JSON.stringify(record.event));
  }
  return pending;
}

/** Replaces the log with just the pending events: written beside it, fsync'd, then renamed over it. */
async function rewrite(path: string, pending: ReadonlyMap<string, string>): Promise<FileHandle> {
  const next = `${path}.next`;
  await rm(next, { force: true });
  const handle = await open(next, 'w');
  try {
    await handle.write([...pending].map(([id, body]) => acceptedLine(id, body)).join(''));
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(next, path);
  await syncFolder(dirname(path));
  return open(path, 'a');
}

/** A rename is durable only once its folder is synced (POSIX); Windows cannot open a folder, and needs no sync. */
async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch {
    // best effort: the rename itself is atomic
  } finally {
    await handle?.close();
  }
}
