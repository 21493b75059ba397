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
import { rememberDynaliteConditionParses } from './dynalite-expression-cache.js';
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
  /** Full garbage collections in the thread dynalite runs in, then freed native memory back (see release-memory.ts). */
  releaseMemory(): void;
  close(): Promise<void>;
}

export async function serveDynalite(options: {
  path?: string;
  port?: number;
}): Promise<DynaliteServer & { listener: (request: IncomingMessage, response: ServerResponse) => void }> {
  if (options.path) await mkdir(options.path, { recursive: true });
  closeDynaliteIteratorsOnReturn();
  rememberDynaliteConditionParses();
  const server = createDynaliteServer({
    ...(options.path ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  try {
    const port = await listen(server, options.port ?? 0);
    return {
      port,
      listener: server.listeners('request')[0] as (request: IncomingMessage, response: ServerResponse) => void,
      releaseMemory: () => void releaseIdleMemory(),
      close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
    };
  } catch (error) {
    throw new DynaliteError(`cannot listen on port ${options.port ?? '(any free port)'}`, { cause: error });
  }
}

/** Messages between startDynalite and functions/local/dynalite-worker.ts. */
export type DynaliteWorkerReply = { kind: 'listening'; port: number } | { kind: 'failed'; message: string } | { kind: 'closed' };
export type DynaliteWorkerRequest = 'release-memory' | 'close' | { kind: 'requests'; port: MessagePort };
export interface DynaliteWorkerData {
  path?: string;
  port?: number;
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
  const reply = (): Promise<DynaliteWorkerReply> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: DynaliteWorkerReply): void => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(message);
      };
      const onError = (error: Error): void => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        reject(new DynaliteError('its worker thread failed', { cause: error }));
      };
      const onExit = (code: number): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        reject(new DynaliteError(`its worker thread exited (code ${code}) unexpectedly`));
      };
      worker.once('message', onMessage);
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
    releaseMemory: () => request('release-memory'),
    async close() {
      const closed = reply();
      request('close');
      const outcome = await closed;
      await worker.terminate();
      if (outcome.kind === 'failed') throw new DynaliteError(outcome.message.replace(/^Dynalite: /, ''));
    },
  };
}
