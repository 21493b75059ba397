/**
 * The import's batch writer: 25 items a request on dynalite, pacing under --max-wcu, and the AWS-only answers
 * dynalite never gives (unprocessed items, a throttled request), which aws-sdk-client-mock stands in for.
 */
import { type AttributeValue, BatchWriteItemCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { ImportTableError, createImportTable } from '../../functions/aws/import-table.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();

const items = (count: number): Array<Record<string, AttributeValue>> =>
  Array.from({ length: count }, (_, i) => ({ pk: { S: `USER#u${i}` }, sk: { S: 'DAY#2026-09-01' }, n_x: { N: '1' } }));

describe('import table', () => {
  it('writes 25 items a request', async () => {
    const tableName = await dynalite.freshTable();
    const table = createImportTable({ client: dynalite.client, tableName });
    await table.writeItems(items(60));
    expect(table.stats).toMatchObject({ writeRequests: 3, itemsWritten: 60, retries: 0 });
    expect(table.stats.writeUnits).toBe(60);
    expect((await dynalite.client.send(new ScanCommand({ TableName: tableName }))).Count).toBe(60);
  });

  it('paces writes to --max-wcu write units a second', async () => {
    const tableName = await dynalite.freshTable();
    const table = createImportTable({ client: dynalite.client, tableName, maxWcu: 50 });
    const started = performance.now();
    // 150 one-unit items at 50 a second, with a bucket of 50 to start from: at least two seconds.
    await table.writeItems(items(150));
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(table.stats.itemsWritten).toBe(150);
  });

  it('retries unprocessed items and throttled requests with backoff, and gives up with a clear error', async () => {
    const dynamo = mockClient(DynamoDBClient);
    const client = new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 't', secretAccessKey: 't' } });
    const slept: number[] = [];
    const sleep = async (ms: number): Promise<void> => void slept.push(ms);
    try {
      const batch = items(25);
      dynamo
        .on(BatchWriteItemCommand)
        .rejectsOnce(Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' }))
        .resolvesOnce({ UnprocessedItems: { t: batch.slice(0, 5).map((Item) => ({ PutRequest: { Item } })) } })
        .resolvesOnce({});
      const table = createImportTable({ client, tableName: 't', sleep });
      await table.writeItems(batch);
      expect(table.stats).toMatchObject({ itemsWritten: 25, retries: 2, writeRequests: 3 });
      expect(slept).toHaveLength(2);
      const sent = dynamo.commandCalls(BatchWriteItemCommand).map((call) => call.args[0].input.RequestItems?.['t']?.length);
      expect(sent).toEqual([25, 25, 5]);

      dynamo.reset();
      dynamo.on(BatchWriteItemCommand).resolves({ UnprocessedItems: { t: [{ PutRequest: { Item: batch[0]! } }] } });
      await expect(createImportTable({ client, tableName: 't', sleep }).writeItems(batch)).rejects.toThrow(ImportTableError);
      await expect(createImportTable({ client, tableName: 't', sleep }).writeItems(batch)).rejects.toThrow(/resumes from its checkpoint/);
    } finally {
      dynamo.restore();
      client.destroy();
    }
  });
});
