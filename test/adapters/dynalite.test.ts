import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queryObjects } from 'node:v8';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, PutItemCommand, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { DEFAULT_TABLE_NAME, DynaliteError, createStrataTable, dynaliteIteratorClasses, startDynalite } from '../../functions/local/dynalite.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();

describe('createStrataTable', () => {
  it('creates the table with the layout of table-schema.ts, and is safe to call again', async () => {
    const tableName = await dynalite.freshTable();
    await createStrataTable(dynalite.client, tableName);
    await Promise.all([createStrataTable(dynalite.client, tableName), createStrataTable(dynalite.client, tableName)]);

    const { Table } = await dynalite.client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(Table?.GlobalSecondaryIndexes).toEqual([
      expect.objectContaining({
        IndexName: 'review',
        KeySchema: [
          { AttributeName: 'reviewPk', KeyType: 'HASH' },
          { AttributeName: 'pk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
        IndexStatus: 'ACTIVE',
      }),
    ]);
  });

  it('refuses a table of another layout with a message that says what to do', async () => {
    await dynalite.client.send(
      new CreateTableCommand({
        TableName: 'old-layout',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    const failure = createStrataTable(dynalite.client, 'old-layout');
    await expect(failure).rejects.toBeInstanceOf(DynaliteError);
    await expect(failure).rejects.toThrow(/does not have the Strata layout: its key is \(id:HASH\); it has no "review" index; delete it/);
  });
});

describe('startDynalite', () => {
  let directory: string | undefined;
  afterEach(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('persists to a directory and finds the data again after a restart', async () => {
    directory = await mkdtemp(join(tmpdir(), 'strata-dynalite-'));
    const path = join(directory, '.strata', 'dynamo');
    const first = await startDynalite({ path });
    expect(first.tableName).toBe(DEFAULT_TABLE_NAME);
    expect(first.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const before = createDynamoTierStore({ client: first.client, tableName: first.tableName, shardCount: 1 });
    await before.recordEvent('ada', 'k1', { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] });
    await first.close();

    const second = await startDynalite({ path });
    const after = createDynamoTierStore({ client: second.client, tableName: second.tableName, shardCount: 1 });
    expect((await after.loadUser('ada', '2026-03-01')).buckets).toEqual([{ date: '2026-03-10', counters: { n_visits: 1 } }]);
    expect(await after.recordEvent('ada', 'k1', { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] })).toEqual({ duplicate: true });
    await second.close();
  });

  it('runs in a worker thread on the same data, releases memory there on request, and closes it cleanly', async () => {
    directory = await mkdtemp(join(tmpdir(), 'strata-dynalite-'));
    const path = join(directory, 'dynamo');
    const inWorker = await startDynalite({ path, thread: 'worker' });
    const store = createDynamoTierStore({ client: inWorker.client, tableName: inWorker.tableName, shardCount: 1 });
    await store.recordEvent('ada', 'k1', { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] });
    // Releasing memory (when the stack is idle) is a message too, and must not be taken for a close.
    const released = inWorker.releaseMemory();
    await store.recordEvent('ada', 'k2', { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] });
    await released;
    await inWorker.close();

    // LevelDB admits one opener at a time: this start fails unless the worker really let go of the folder.
    const inMain = await startDynalite({ path });
    const after = createDynamoTierStore({ client: inMain.client, tableName: inMain.tableName, shardCount: 1 });
    expect((await after.loadUser('ada', '2026-03-01')).buckets).toEqual([{ date: '2026-03-10', counters: { n_visits: 2 } }]);
    await inMain.close();
  });

  it.each(['worker', 'main'] as const)(
    'reopens its database to free memory (%s thread) with no request lost or failed, over the channel and over TCP',
    async (thread) => {
      directory = await mkdtemp(join(tmpdir(), 'strata-dynalite-'));
      const path = join(directory, 'dynamo');
      const running = await startDynalite({ path, thread });
      // Another process's client: real HTTP on the port, signed.
      const tcpClient = new DynamoDBClient({ endpoint: running.endpoint, region: 'local', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      const stores = [running.client, running.client, running.client, tcpClient, tcpClient].map((client) =>
        createDynamoTierStore({ client, tableName: running.tableName, shardCount: 1 }),
      );
      const writesEach = 40;
      try {
        const openedFirst = (await readFile(join(path, 'LOG'), 'utf8')).length;
        let writing = true;
        let reopens = 0;
        const written = [0, 0];
        // Each writer goes on until the database has been reopened a few times under it, however fast this machine.
        const writers = stores.map(async (store, writer) => {
          for (let i = 0; i < writesEach || reopens < 3; i++) {
            written[writer % 2]! += 1;
            await store.recordEvent(`user-${writer % 2}`, `w${writer}-${i}`, { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] });
            // Reads too: a Query's iterator must not be open across a reopen.
            await store.loadUser(`user-${writer % 2}`, '2026-03-01');
          }
        });
        const releasing = (async () => {
          while (writing) {
            await running.releaseMemory();
            reopens++;
          }
        })();
        await Promise.all(writers);
        writing = false;
        await releasing;
        expect(reopens).toBeGreaterThanOrEqual(3);
        // LevelDB starts a new LOG file each time it opens the database: it was closed and opened again.
        expect(openedFirst).toBeGreaterThan(0);
        expect(await readFile(join(path, 'LOG.old'), 'utf8')).not.toBe('');
        const totals = await Promise.all(
          [0, 1].map(async (user) => (await stores[0]!.loadUser(`user-${user}`, '2026-03-01')).buckets[0]?.counters['n_visits']),
        );
        // Writers 0, 2, 4 write user-0, writers 1, 3 user-1: each write counted once.
        expect(written[0]).toBeGreaterThanOrEqual(3 * writesEach);
        expect(totals).toEqual(written);
      } finally {
        tcpClient.destroy();
        await running.close();
      }
    },
  );

  it('reports a port that is taken, from a worker thread too', async () => {
    const first = await startDynalite();
    const port = Number(new URL(first.endpoint).port);
    await expect(startDynalite({ port, thread: 'worker' })).rejects.toThrow(/^Dynalite: cannot listen on port \d+$/);
    await first.close();
  });

  it('reports a port that is taken', async () => {
    const first = await startDynalite();
    const port = Number(new URL(first.endpoint).port);
    await expect(startDynalite({ port })).rejects.toThrow(/Dynalite: cannot listen on port \d+/);
    await first.close();
  });

  it('closes the LevelDB iterator of every Query and Scan, so memory does not grow with each read', async () => {
    directory = await mkdtemp(join(tmpdir(), 'strata-dynalite-'));
    const running = await startDynalite({ path: join(directory, 'dynamo') });
    // Live iterator objects after a full garbage collection: an open iterator stays referenced by its database.
    const iteratorClasses = [...new Set(dynaliteIteratorClasses())] as Array<new () => unknown>;
    const liveIterators = (): number => iteratorClasses.reduce((sum, iteratorClass) => sum + queryObjects(iteratorClass, { format: 'count' }), 0);
    try {
      const { client, tableName } = running;
      for (let day = 1; day <= 5; day++) {
        await client.send(
          new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'USER#ada' }, sk: { S: `DAY#2026-03-0${day}` }, n: { N: String(day) } } }),
        );
      }
      const query = new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: 'USER#ada' } },
      });
      // A Limit stops the stream before its end: that path must close its iterator too.
      const limitedQuery = new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: 'USER#ada' } },
        Limit: 2,
      });
      await client.send(query);
      const before = liveIterators();
      const reads = 120;
      for (let i = 0; i < reads; i++) {
        const { Items } = await client.send(i % 3 === 0 ? limitedQuery : query);
        expect(Items?.length).toBe(i % 3 === 0 ? 2 : 5);
      }
      await client.send(new ScanCommand({ TableName: tableName }));
      expect(liveIterators() - before).toBeLessThan(10);
    } finally {
      await running.close();
    }
  });
});
