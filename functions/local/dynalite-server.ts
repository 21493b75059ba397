/**
 * The dynalite server itself, apart from the SDK side in dynalite.ts, so that a worker thread can run it without
 * loading the AWS SDK: the iterator fix, listening on 127.0.0.1, and the worker-thread variant.
 */
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startBundledWorker } from './bundled-worker.js';
import { rememberDynaliteExpressionParses } from './dynalite-expression-cache.js';
import { cacheTableDescriptions, type DynaliteTableStore, type TableCacheStats } from './dynalite-table-cache.js';
import { isWriteTarget } from './partition-cache.js';
import { releaseIdleMemory } from './release-memory.js';

interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}

// dynalite is CommonJS and ships no type declarations; this is the one function of it used here.
const requireCommonJs = createRequire(import.meta.url);
const createDynaliteServer = requireCommonJs('dynalite') as (options: DynaliteOptions) => Server;

/** What dynalite's `db.create` returns, as much of it as is used here: its LevelDB (classic-level) database. */
interface DynaliteStore {
  /** dynalite replaces `close` with one that also marks the store closed for good, and keeps LevelDB's as `_original`. */
  db: { open(): Promise<void>; close: (() => Promise<void>) & { _original?: () => Promise<void> } };
  lifecycleManager?: { getPendingOperationCount(): number; getState(): string };
  tableDb: DynaliteTableStore;
}

/** dynalite's server and the store it creates (dynalite keeps the store to itself; its `db` module builds it). */
function createDynaliteServerAndStore(options: DynaliteOptions): { server: Server; store: DynaliteStore | undefined } {
  const storeModule = createRequire(requireCommonJs.resolve('dynalite'))('./db') as { create: (options: DynaliteOptions) => DynaliteStore };
  const create = storeModule.create;
  let store: DynaliteStore | undefined;
  storeModule.create = (createOptions) => (store = create(createOptions));
  try {
    return { server: createDynaliteServer(options), store };
  } finally {
    storeModule.create = create;
  }
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * Calls `done` once when the response is ended. dynalite ends a response once its work is done, even for a client
 * that has gone, which then sees no 'finish': ending, not finishing, marks the request answered.
 */
function whenAnswered(response: ServerResponse, done: () => void): void {
  const end = response.end;
  let answered = false;
  response.end = function endAndReport(this: ServerResponse, ...args: unknown[]) {
    if (!answered) {
      answered = true;
      done();
    }
    return (end as (...endArgs: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['end'];
}

/**
 * dynalite's request listener behind a door that can hold new requests while those being answered finish, so that
 * its database can be closed and opened again under no request. A held request's body is buffered and handed to
 * dynalite, which reads it through 'data' and 'end' events, once the door opens; both the HTTP server and the
 * in-process channel come through here.
 */
function holdableListener(listener: RequestListener): {
  listener: RequestListener;
  /** Holds new requests; resolves true once none is being answered, or false (and opens again) after `ms`. */
  hold(ms: number): Promise<boolean>;
  release(): void;
} {
  let answering = 0;
  let held: Array<() => void> | undefined;
  let onNoneAnswering: (() => void) | undefined;
  const answer: RequestListener = (request, response) => {
    answering++;
    whenAnswered(response, () => {
      if (--answering === 0) onNoneAnswering?.();
    });
    listener(request, response);
  };
  const release = (): void => {
    const waiting = held ?? [];
    held = undefined;
    for (const resume of waiting) resume();
  };
  return {
    listener(request, response) {
      if (!held) return answer(request, response);
      const chunks: Buffer[] = [];
      let complete = false;
      const onData = (chunk: Buffer): void => void chunks.push(chunk);
      const onEnd = (): void => void (complete = true);
      request.on('data', onData);
      request.on('end', onEnd);
      held.push(() => {
        request.off('data', onData);
        request.off('end', onEnd);
        answer(request, response);
        for (const chunk of chunks) request.emit('data', chunk);
        if (complete) request.emit('end');
      });
    },
    hold(ms) {
      held ??= [];
      if (answering === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          onNoneAnswering = undefined;
          release();
          resolve(false);
        }, ms);
        onNoneAnswering = () => {
          clearTimeout(timer);
          onNoneAnswering = undefined;
          resolve(true);
        };
      });
    },
    release,
  };
}

/** How long requests being answered may take to finish before a reopen is given up (they are held meanwhile). */
const REOPEN_WAIT_MS = 2_000;
const REOPEN_ATTEMPTS = 10;
const REOPEN_RETRY_MS = 500;

/**
 * Closes dynalite's LevelDB and opens it again, with requests held at the door meanwhile. Closing frees what
 * LevelDB holds in memory for an open database: its block cache, memtable and table cache, and the table files it
 * maps into memory (19 MB of the process's RSS after 100,000 events); opening reads only the manifest and the log.
 * The port stays open throughout and no request fails: a request that arrives waits a few milliseconds. Given up
 * (nothing closed) if requests in progress do not finish within REOPEN_WAIT_MS or dynalite has work of its own
 * pending.
 */
async function reopenStore(store: DynaliteStore, door: ReturnType<typeof holdableListener>): Promise<void> {
  if (!(await door.hold(REOPEN_WAIT_MS))) return;
  try {
    if ((store.lifecycleManager?.getPendingOperationCount() ?? 0) > 0) return;
    try {
      await (store.db.close._original ?? store.db.close)();
    } catch {
      return; // abstract-level leaves it open when closing fails
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await store.db.open();
        return;
      } catch (error) {
        // Held requests wait; past the attempts they go on, and fail as on any broken database (ingest retries).
        if (attempt >= REOPEN_ATTEMPTS) throw new DynaliteError('cannot open its database again after closing it to free memory', { cause: error });
        await new Promise((resolve) => setTimeout(resolve, REOPEN_RETRY_MS));
      }
    }
  } finally {
    door.release();
  }
}

interface LevelIterator {
  close(): Promise<void>;
  return?: () => Promise<IteratorReturnResult<undefined>>;
}

/**
 * The abstract-level module each of dynalite's stores (LevelDB on disk, memory-level in memory) builds its
 * iterators from, found the way Node resolves it from dynalite's own folder.
 */
export function dynaliteIteratorClasses(): Array<{ prototype: LevelIterator }> {
  const fromDynalite = createRequire(requireCommonJs.resolve('dynalite'));
  const fromLevel = createRequire(fromDynalite.resolve('level'));
  const stores = [createRequire(fromLevel.resolve('classic-level')), createRequire(fromDynalite.resolve('memory-level'))];
  return stores.flatMap((requireFromStore) => {
    const level = requireFromStore('abstract-level') as Record<
      'AbstractIterator' | 'AbstractKeyIterator' | 'AbstractValueIterator',
      { prototype: LevelIterator }
    >;
    return [level.AbstractIterator, level.AbstractKeyIterator, level.AbstractValueIterator];
  });
}

/**
 * dynalite 4.0.0 ends its read streams (every Query and Scan) by calling `iterator.return()`, which the
 * abstract-level 3 iterators it gets do not have: they are closed with `close()`. So no iterator was ever closed.
 * Each stayed registered with the database, holding its buffered items (about 2 KB per query) and a LevelDB
 * snapshot that stops compaction from dropping overwritten versions: memory and the data folder grew without
 * bound. Giving the iterators the `return()` dynalite calls closes them where dynalite meant to. Done at run time
 * rather than by patching node_modules on install, so that it holds however the packages were installed.
 */
export function closeDynaliteIteratorsOnReturn(): void {
  for (const { prototype } of dynaliteIteratorClasses()) {
    if (typeof prototype.return === 'function') continue;
    Object.defineProperty(prototype, 'return', {
      configurable: true,
      writable: true,
      value: async function closeOnReturn(this: LevelIterator): Promise<IteratorReturnResult<undefined>> {
        await this.close();
        return { done: true, value: undefined };
      },
    });
  }
}

export class DynaliteError extends Error {
  override readonly name = 'DynaliteError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`Dynalite: ${message}`, options);
  }
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** A dynalite HTTP server listening on 127.0.0.1, in whichever thread calls this. */
export interface DynaliteServer {
  port: number;
  /**
   * With dynalite in a worker thread: a port that carries this process's own requests to it without TCP (see
   * dynalite-channel.ts). Undefined when dynalite runs in this thread.
   */
  requestPort?: MessagePort;
  /**
   * For an idle stack: dynalite's database closed and opened again (on disk), full garbage collections in the thread
   * dynalite runs in, then freed native memory back (see release-memory.ts). Resolves when done.
   */
  releaseMemory(): Promise<void>;
  close(): Promise<void>;
}

export async function serveDynalite(options: {
  path?: string;
  port?: number;
  /** Counted here: write requests over TCP, before dynalite reads them and after it answers (see partition-cache.ts). */
  externalWrites?: SharedArrayBuffer;
  /** Remember table descriptions between requests (dynalite-table-cache.ts); on unless false. */
  cacheTables?: boolean;
}): Promise<DynaliteServer & { listener: (request: IncomingMessage, response: ServerResponse) => void; tableCache?: TableCacheStats }> {
  if (options.path) await mkdir(options.path, { recursive: true });
  closeDynaliteIteratorsOnReturn();
  rememberDynaliteExpressionParses();
  const { server, store } = createDynaliteServerAndStore({
    ...(options.path ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  const tableCache =
    store && options.cacheTables !== false
      ? cacheTableDescriptions(store.tableDb, () => (store.lifecycleManager?.getState() ?? 'open') === 'open')
      : undefined;
  const door = holdableListener(server.listeners('request')[0] as RequestListener);
  server.removeAllListeners('request');
  server.on('request', door.listener);
  try {
    // Only requests over TCP pass this listener (the channel calls door.listener directly): other processes' writes.
    if (options.externalWrites) countWriteRequests(server, new Int32Array(options.externalWrites));
    const port = await listen(server, options.port ?? 0);
    return {
      port,
      listener: door.listener,
      ...(tableCache ? { tableCache } : {}),
      async releaseMemory() {
        // Only a database on disk: an in-memory one is its data.
        if (options.path && store) await reopenStore(store, door);
        await releaseIdleMemory();
      },
      close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
    };
  } catch (error) {
    throw new DynaliteError(`cannot listen on port ${options.port ?? '(any free port)'}`, { cause: error });
  }
}

function countWriteRequests(server: Server, counters: Int32Array): void {
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!isWriteTarget(request.headers['x-amz-target'] as string | undefined)) return;
    Atomics.add(counters, 0, 1);
    whenAnswered(response, () => Atomics.add(counters, 1, 1));
  });
}

/** Messages between startDynalite and functions/local/dynalite-worker.ts. */
export type DynaliteWorkerReply =
  | { kind: 'listening'; port: number }
  | { kind: 'failed'; message: string }
  | { kind: 'closed' }
  | { kind: 'released'; failure?: string };
export type DynaliteWorkerRequest = 'release-memory' | 'close' | { kind: 'requests'; port: MessagePort };
export interface DynaliteWorkerData {
  path?: string;
  port?: number;
  externalWrites?: SharedArrayBuffer;
}

/**
 * Runs dynalite in a worker thread: LevelDB reads, writes and dynalite's request parsing then use the second core
 * while the SDK clients and the handlers use the first. The worker loads TypeScript through tsx, as the CLI does.
 */
/**
 * dynalite's objects live for one request, yet V8 grew the worker's young generation to 32 MB of resident memory
 * (its live heap is about 10 MB); a smaller one means more, shorter scavenges on a thread that idles more than half
 * the time under full ingest.
 */
const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 8 };

function startWorkerThread(data: DynaliteWorkerData): Worker {
  return startBundledWorker('dynalite-worker', import.meta.url, data, WORKER_RESOURCE_LIMITS);
}

export async function serveDynaliteInWorker(data: DynaliteWorkerData): Promise<DynaliteServer> {
  const worker = startWorkerThread(data);
  // Releases answer on their own ('released', in the order asked); every other reply answers the one awaited.
  const releases: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  worker.on('message', (message: DynaliteWorkerReply) => {
    if (message.kind !== 'released') return;
    const waiting = releases.shift();
    if (message.failure === undefined) waiting?.resolve();
    else waiting?.reject(new DynaliteError(message.failure.replace(/^Dynalite: /, '')));
  });
  worker.on('exit', () => {
    for (const waiting of releases.splice(0)) waiting.reject(new DynaliteError('its worker thread stopped before releasing memory'));
  });
  const reply = (): Promise<Exclude<DynaliteWorkerReply, { kind: 'released' }>> =>
    new Promise((resolve, reject) => {
      const detach = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (message: DynaliteWorkerReply): void => {
        if (message.kind === 'released') return;
        detach();
        resolve(message);
      };
      const onError = (error: Error): void => {
        detach();
        reject(new DynaliteError('its worker thread failed', { cause: error }));
      };
      const onExit = (code: number): void => {
        detach();
        reject(new DynaliteError(`its worker thread exited (code ${code}) unexpectedly`));
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  const started = await reply();
  if (started.kind !== 'listening') {
    await worker.terminate();
    throw new DynaliteError(started.kind === 'failed' ? started.message.replace(/^Dynalite: /, '') : 'its worker thread closed before it started');
  }
  const request = (message: DynaliteWorkerRequest): void => worker.postMessage(message);
  const channel = new MessageChannel();
  worker.postMessage({ kind: 'requests', port: channel.port2 } satisfies DynaliteWorkerRequest, [channel.port2]);
  return {
    port: started.port,
    requestPort: channel.port1,
    releaseMemory: () =>
      new Promise<void>((resolve, reject) => {
        releases.push({ resolve, reject });
        request('release-memory');
      }),
    async close() {
      const closed = reply();
      request('close');
      const outcome = await closed;
      await worker.terminate();
      if (outcome.kind === 'failed') throw new DynaliteError(outcome.message.replace(/^Dynalite: /, ''));
    },
  };
}
