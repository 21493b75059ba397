/**
 * The running `strata dev`'s door for operator commands. Journeys run inside that process, so `strata lock`,
 * `unlock` and `forget` on the local stack are sent here (its URL is in `<data>/stack.json`) and performed with the
 * stack's own services: the same core calls the `--table` path makes against AWS. Loopback only.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { OperatorError, type OperatorServices, parseOperatorRequest, performOperatorRequest } from '../core/operator.js';

export const OPERATOR_PATH = '/operator';
const MAX_BODY_BYTES = 64 * 1024;

export interface OperatorEndpoint {
  url: string;
  close(): Promise<void>;
}

/** What the endpoint answers on a refused request: the CLI prints it as a usage error. */
export interface OperatorFailure {
  message: string;
  hint?: string;
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new OperatorError('the request is larger than 64 KiB', 'send one user at a time');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new OperatorError('the request body is not JSON', 'send a JSON object', { cause: error });
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

export async function startOperatorEndpoint(services: OperatorServices): Promise<OperatorEndpoint> {
  const server = createServer((request, response) => {
    if (request.method !== 'POST' || request.url !== OPERATOR_PATH) {
      send(response, 404, { message: `no ${request.method} ${request.url} here`, hint: `POST ${OPERATOR_PATH}` } satisfies OperatorFailure);
      return;
    }
    readBody(request)
      .then((body) => performOperatorRequest(services, parseOperatorRequest(body)))
      .then(
        (outcome) => send(response, 200, outcome),
        (error: unknown) => {
          if (error instanceof OperatorError) send(response, 400, { message: error.message, hint: error.hint } satisfies OperatorFailure);
          else
            send(response, 500, {
              message: `Operator endpoint: the stack failed (${error instanceof Error ? error.message : String(error)})`,
            } satisfies OperatorFailure);
        },
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}${OPERATOR_PATH}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
