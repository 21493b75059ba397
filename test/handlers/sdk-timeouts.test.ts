/**
 * Every AWS SDK client the handlers create gives up on a request that hangs: a real client against a loopback
 * server that accepts the connection and never answers (the way a half-open connection behaves), so the call
 * fails with a TimeoutError after the configured bound instead of holding the function until Lambda kills it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListEventBusesCommand } from '@aws-sdk/client-eventbridge';
import { ListStateMachinesCommand } from '@aws-sdk/client-sfn';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_TIMEOUTS, createDynamoDbClient, createEventBridgeClient, createSfnClient, createSqsClient } from '../../functions/handlers/runtime.js';

let server: Server;
let endpoint: string;
const sockets = new Set<Socket>();

beforeAll(async () => {
  // Reads the request and never writes a byte back.
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const local = () => ({
  endpoint,
  region: 'eu-west-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  // One attempt: the test is about one request's bound, not about the retries around it.
  maxAttempts: 1,
});

const CLIENTS = {
  DynamoDB: { call: () => createDynamoDbClient(local()).send(new ListTablesCommand({})), bound: SDK_TIMEOUTS.dynamoDbRequestTimeoutMs },
  'Step Functions': { call: () => createSfnClient(local()).send(new ListStateMachinesCommand({})), bound: SDK_TIMEOUTS.requestTimeoutMs },
  EventBridge: { call: () => createEventBridgeClient(local()).send(new ListEventBusesCommand({})), bound: SDK_TIMEOUTS.requestTimeoutMs },
  SQS: { call: () => createSqsClient(local()).send(new ListQueuesCommand({})), bound: SDK_TIMEOUTS.requestTimeoutMs },
};

describe('SDK request timeouts', () => {
  it('bounds the requests of every client the handlers create', async () => {
    const outcomes = await Promise.all(
      Object.entries(CLIENTS).map(async ([name, { call, bound }]) => {
        const started = performance.now();
        const error = await call().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        return { name, bound, error, elapsed: performance.now() - started };
      }),
    );
    for (const { name, bound, error, elapsed } of outcomes) {
      expect(error, name).toMatchObject({ name: 'TimeoutError' });
      expect(elapsed, name).toBeGreaterThanOrEqual(bound - 50);
      expect(elapsed, name).toBeLessThan(bound + 2_000);
    }
  }, 15_000);

  it("keeps every bound well inside the functions' timeouts, with a short connect timeout", () => {
    expect(SDK_TIMEOUTS.connectionTimeoutMs).toBeLessThanOrEqual(1_000);
    expect(SDK_TIMEOUTS.dynamoDbRequestTimeoutMs).toBeLessThanOrEqual(SDK_TIMEOUTS.requestTimeoutMs);
    // The ingest and journey-step functions time out at 30 s.
    expect(SDK_TIMEOUTS.requestTimeoutMs * 3).toBeLessThan(30_000);
  });
});
