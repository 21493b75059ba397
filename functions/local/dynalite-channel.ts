/**
 * The embedded stack's own DynamoDB requests to dynalite's worker thread, carried over a MessagePort instead of TCP.
 *
 * The SDK client is the real one, with its serialisation, signing, retries and deserialisation; only its transport
 * (the `requestHandler`) differs. Through HTTP on 127.0.0.1 every request cost both threads a socket write, HTTP
 * framing and parsing: about a fifth of the main thread's CPU under full ingest. Here the signed request reaches
 * dynalite's own HTTP request listener as it would from a socket (method, path, headers, body), and its answer
 * comes back the same way. dynalite still listens on its port for every other process (`strata user`, import).
 *
 * No SDK import: the worker side runs in dynalite's thread, which loads no AWS SDK.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MessagePort } from 'node:worker_threads';

export interface ChannelRequest {
  id: number;
  method: string;
  /** Path and query, as in an HTTP request line. */
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface ChannelResponse {
  id: number;
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * Messages on the port carry every request (or answer) issued in one turn of the event loop, not one each: a
 * postMessage costs both threads a wake-up, a serialisation and a MessagePort event, about 4 % of the main thread
 * under full ingest when each request had its own. Order within a batch is the order of issue.
 */
function batchedPoster<T>(port: MessagePort): (item: T) => void {
  let batch: T[] | undefined;
  const flush = (): void => {
    const items = batch!;
    batch = undefined;
    port.postMessage(items);
  };
  return (item) => {
    if (batch) return void batch.push(item);
    batch = [item];
    // After the I/O callbacks and promise jobs of this turn, so that everything they issue goes together.
    setImmediate(flush);
  };
}

/**
 * The worker side: hands each request on `port` to an HTTP request listener (dynalite's), with the parts of
 * IncomingMessage and ServerResponse a JSON API handler uses, and posts the answer back.
 */
export function answerRequestsOn(port: MessagePort, listener: RequestListener): void {
  const reply = batchedPoster<ChannelResponse>(port);
  const answer = (message: ChannelRequest): void => {
    const request = Object.assign(new EventEmitter(), { method: message.method, url: message.url, headers: message.headers });
    const headers: Record<string, string> = {};
    let answered = false;
    const response = {
      statusCode: 200,
      setHeader(name: string, value: number | string | readonly string[]) {
        headers[name.toLowerCase()] = String(value);
        return response;
      },
      end(body?: string | Buffer) {
        if (answered) return response;
        answered = true;
        reply({ id: message.id, statusCode: response.statusCode, headers, body: body === undefined ? '' : body.toString() });
        return response;
      },
    };
    listener(request as unknown as IncomingMessage, response as unknown as ServerResponse);
    if (message.body !== '') request.emit('data', Buffer.from(message.body, 'utf8'));
    request.emit('end');
  };
  port.on('message', (messages: ChannelRequest[]) => {
    for (const message of messages) answer(message);
  });
}

/** The shape of a Smithy HTTP request, as much of it as a JSON protocol fills in. */
export interface ChannelHttpRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

export interface ChannelHttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

export class DynaliteChannelError extends Error {
  override readonly name = 'DynaliteChannelError';
  constructor(message: string) {
    super(`Dynalite: ${message}`);
  }
}

/**
 * The main-thread side: an SDK `requestHandler` that posts each request to `port` and resolves with the answer.
 * `destroy` (called by the client's `destroy()`) closes the port; requests still waiting then fail.
 */
export function channelRequestHandler(port: MessagePort): {
  handle(request: ChannelHttpRequest, options?: { abortSignal?: AbortSignal }): Promise<{ response: ChannelHttpResponse }>;
  updateHttpClientConfig(): void;
  httpHandlerConfigs(): Record<string, never>;
  destroy(): void;
} {
  let nextId = 0;
  let closed = false;
  const waiting = new Map<number, { resolve: (response: ChannelHttpResponse) => void; reject: (error: Error) => void }>();
  const failAll = (reason: string): void => {
    for (const { reject } of waiting.values()) reject(new DynaliteChannelError(reason));
    waiting.clear();
  };
  const post = batchedPoster<ChannelRequest>(port);
  port.on('message', (replies: ChannelResponse[]) => {
    for (const reply of replies) {
      const pending = waiting.get(reply.id);
      if (!pending) continue;
      waiting.delete(reply.id);
      pending.resolve({ statusCode: reply.statusCode, headers: reply.headers, body: Buffer.from(reply.body, 'utf8') });
    }
    if (waiting.size === 0) port.unref(); // an idle channel must not keep the process alive
  });
  port.on('close', () => {
    closed = true;
    failAll('its worker thread stopped before answering a request');
  });
  port.unref();
  return {
    handle(request, options) {
      if (closed) return Promise.reject(new DynaliteChannelError('the connection to its worker thread is closed (the stack is stopping)'));
      const signal = options?.abortSignal;
      if (signal?.aborted) return Promise.reject(abortError());
      const body = bodyText(request.body);
      const id = nextId++;
      const message: ChannelRequest = { id, method: request.method, url: request.path + queryString(request.query), headers: request.headers, body };
      return new Promise((resolve, reject) => {
        const onAbort = (): void => {
          waiting.delete(id);
          reject(abortError());
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waiting.set(id, {
          resolve: (response) => {
            signal?.removeEventListener('abort', onAbort);
            resolve({ response });
          },
          reject,
        });
        port.ref();
        post(message);
      });
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy() {
      if (closed) return;
      closed = true;
      failAll('the client was destroyed before a request was answered');
      port.close();
    },
  };
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  throw new DynaliteChannelError('a streamed request body cannot be sent to its worker thread; DynamoDB requests are JSON');
}

function queryString(query: ChannelHttpRequest['query']): string {
  if (!query) return '';
  const parts = Object.entries(query).flatMap(([key, value]) =>
    value === null
      ? [encodeURIComponent(key)]
      : (Array.isArray(value) ? value : [value]).map((v) => `${encodeURIComponent(key)}=${encodeURIComponent(v)}`),
  );
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

function abortError(): Error {
  const error = new Error('Request aborted');
  error.name = 'AbortError';
  return error;
}
