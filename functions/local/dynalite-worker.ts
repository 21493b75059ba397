/**
 * The worker-thread side of `startDynalite({ thread: 'worker' })`: serves dynalite in this thread, says on which
 * port, and closes it (flushing LevelDB) when asked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type DynaliteWorkerData, type DynaliteWorkerReply, serveDynalite } from './dynalite-server.js';

if (!parentPort) throw new Error('Dynalite worker: run it through startDynalite({ thread: "worker" }), not directly');
const port = parentPort;
const send = (reply: DynaliteWorkerReply): void => port.postMessage(reply);

try {
  const server = await serveDynalite(workerData as DynaliteWorkerData);
  port.once('message', () => {
    server.close().then(
      () => send({ kind: 'closed' }),
      (error: unknown) => send({ kind: 'failed', message: `cannot close: ${(error as Error).message}` }),
    );
  });
  send({ kind: 'listening', port: server.port });
} catch (error) {
  send({ kind: 'failed', message: (error as Error).message });
}
