/**
 * The worker-thread side of `startDynalite({ thread: 'worker' })`: serves dynalite in this thread, says on which
 * port, releases memory when the stack is idle (and says when that is done), and closes it (flushing LevelDB) when
 * asked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { answerRequestsOn } from './dynalite-channel.js';
import { type DynaliteWorkerData, type DynaliteWorkerReply, type DynaliteWorkerRequest, serveDynalite } from './dynalite-server.js';
import { boundBusyHeap } from './release-memory.js';

/**
 * dynalite's live heap is about 10 MB, yet under full ingest V8 let this thread's heap reach 55 MB between
 * collections. Past this, a growing heap is collected.
 */
const BUSY_HEAP_BOUND_BYTES = 32 * 1024 * 1024;
const BUSY_HEAP_CHECK_MS = 2_000;

if (!parentPort) throw new Error('Dynalite worker: run it through startDynalite({ thread: "worker" }), not directly');
const port = parentPort;
const send = (reply: DynaliteWorkerReply): void => port.postMessage(reply);

try {
  const server = await serveDynalite(workerData as DynaliteWorkerData);
  port.on('message', (request: DynaliteWorkerRequest) => {
    if (request === 'release-memory') {
      server.releaseMemory().then(
        () => send({ kind: 'released' }),
        (error: unknown) => send({ kind: 'released', failure: (error as Error).message }),
      );
      return;
    }
    if (typeof request === 'object') return answerRequestsOn(request.port, server.listener);
    port.removeAllListeners('message');
    heapBound.stop();
    server.close().then(
      () => send({ kind: 'closed' }),
      (error: unknown) => send({ kind: 'failed', message: `cannot close: ${(error as Error).message}` }),
    );
  });
  const heapBound = boundBusyHeap({ heapBytes: BUSY_HEAP_BOUND_BYTES, checkMs: BUSY_HEAP_CHECK_MS });
  send({ kind: 'listening', port: server.port });
} catch (error) {
  send({ kind: 'failed', message: (error as Error).message });
}
