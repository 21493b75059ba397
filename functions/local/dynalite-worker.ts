/**
 * The worker-thread side of `startDynalite({ thread: 'worker' })`: serves dynalite in this thread, says on which
 * port, releases memory when the stack is idle, and closes it (flushing LevelDB) when asked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { answerRequestsOn } from './dynalite-channel.js';
import { type DynaliteWorkerData, type DynaliteWorkerReply, type DynaliteWorkerRequest, serveDynalite } from './dynalite-server.js';
import { releaseMemory } from './release-memory.js';

if (!parentPort) throw new Error('Dynalite worker: run it through startDynalite({ thread: "worker" }), not directly');
const port = parentPort;
const send = (reply: DynaliteWorkerReply): void => port.postMessage(reply);

try {
  const server = await serveDynalite(workerData as DynaliteWorkerData);
  port.on('message', (request: DynaliteWorkerRequest) => {
    if (request === 'release-memory') return releaseMemory();
    if (typeof request === 'object') return answerRequestsOn(request.port, server.listener);
    port.removeAllListeners('message');
    server.close().then(
      () => send({ kind: 'closed' }),
      (error: unknown) => send({ kind: 'failed', message: `cannot close: ${(error as Error).message}` }),
    );
  });
  send({ kind: 'listening', port: server.port });
} catch (error) {
  send({ kind: 'failed', message: (error as Error).message });
}
