import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { type RunningDynalite, startDynalite } from '../../functions/local/dynalite.js';

/** Every answer and every error of a client, without what differs per request (request ids, timings, attempts). */
async function outcome(send: () => Promise<unknown>): Promise<unknown> {
  try {
    const { $metadata: _metadata, ...output } = (await send()) as { $metadata: unknown };
    return { output };
  } catch (error) {
    const { name, message } = error as Error;
    return { error: { name, message, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode } };
  }
}

/** One sequence of requests that covers success, conditions, returned values, queries and validation errors. */
async function exercise(client: DynamoDBClient, tableName: string, pk: string): Promise<unknown[]> {
  const key = { pk: { S: pk }, sk: { S: 'PROFILE' } };
  return [
    await outcome(() => client.send(new PutItemCommand({ TableName: tableName, Item: { ...key, n: { N: '1' }, text: { S: 'Grüße, 東京' } } }))),
    await outcome(() => client.send(new PutItemCommand({ TableName: tableName, Item: key, ConditionExpression: 'attribute_not_exists(pk)' }))),
    await outcome(() =>
      client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: key,
          UpdateExpression: 'ADD #n :one',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':one': { N: '1' } },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    ),
    await outcome(() => client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }))),
    await outcome(() =>
      client.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: pk } } })),
    ),
    await outcome(() => client.send(new UpdateItemCommand({ TableName: tableName, Key: key, UpdateExpression: 'SET #missing = :v' }))),
    await outcome(() => client.send(new GetItemCommand({ TableName: 'no-such-table', Key: key }))),
  ];
}

describe('the in-process channel to a worker-thread dynalite', () => {
  let directory: string | undefined;
  let running: RunningDynalite | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('answers every request exactly as dynalite answers it over HTTP', async () => {
    directory = await mkdtemp(join(tmpdir(), 'strata-dynalite-channel-'));
    running = await startDynalite({ path: join(directory, 'dynamo'), thread: 'worker' });
    const overHttp = new DynamoDBClient({
      endpoint: running.endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    } satisfies DynamoDBClientConfig);
    try {
      const viaChannel = await exercise(running.client, running.tableName, 'USER#channel');
      const viaHttp = await exercise(overHttp, running.tableName, 'USER#channel-http');
      const samePk = (answers: unknown[], pk: string): unknown => JSON.parse(JSON.stringify(answers).replaceAll(pk, 'USER#?'));
      expect(samePk(viaChannel, 'USER#channel')).toEqual(samePk(viaHttp, 'USER#channel-http'));
      // The sequence really met each kind of outcome, so the comparison covers them.
      expect(viaChannel.map((answer) => Object.keys(answer as object)[0])).toEqual([
        'output',
        'error',
        'output',
        'output',
        'output',
        'error',
        'error',
      ]);
      expect(JSON.stringify(viaChannel)).toContain('Grüße, 東京');
      // Both reach the same database: what one wrote the other reads.
      const seenOverHttp = await overHttp.send(
        new GetItemCommand({ TableName: running.tableName, Key: { pk: { S: 'USER#channel' }, sk: { S: 'PROFILE' } }, ConsistentRead: true }),
      );
      expect(seenOverHttp.Item?.['n']).toEqual({ N: '2' });
    } finally {
      overHttp.destroy();
    }
  });

  it('carries the store under concurrent load, and fails requests clearly once closed', async () => {
    running = await startDynalite({ thread: 'worker' });
    const store = createDynamoTierStore({ client: running.client, tableName: running.tableName, shardCount: 1 });
    const increments = Array.from({ length: 70 }, (_, i) =>
      store.recordEvent(`user-${i % 7}`, `key-${i}`, { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] }),
    );
    expect((await Promise.all(increments)).every((result) => !result.duplicate)).toBe(true);
    const totals = await Promise.all(Array.from({ length: 7 }, (_, u) => store.loadUser(`user-${u}`, '2026-03-01')));
    expect(totals.reduce((sum, read) => sum + (read.buckets[0]?.counters['n_visits'] ?? 0), 0)).toBe(70);

    const client = running.client;
    await running.close();
    running = undefined;
    await expect(client.send(new GetItemCommand({ TableName: 'strata', Key: { pk: { S: 'x' }, sk: { S: 'y' } } }))).rejects.toThrow(
      /^Dynalite: the connection to its worker thread is closed/,
    );
  });
});
