import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { DEFAULT_TABLE_NAME, DynaliteError, createStrataTable, startDynalite } from '../../functions/local/dynalite.js';
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
    expect(await after.loadUser('ada', '2026-03-01')).toEqual({ buckets: [{ date: '2026-03-10', counters: { n_visits: 1 } }] });
    expect(await after.recordEvent('ada', 'k1', { date: '2026-03-10', counters: { n_visits: 1 }, signals: [] })).toEqual({ duplicate: true });
    await second.close();
  });

  it('reports a port that is taken', async () => {
    const first = await startDynalite();
    const port = Number(new URL(first.endpoint).port);
    await expect(startDynalite({ port })).rejects.toThrow(/Dynalite: cannot listen on port \d+/);
    await first.close();
  });
});
