import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { type DynaliteServer, serveDynalite } from '../../functions/local/dynalite-server.js';

/** An answer or an error, without what differs between two servers (request ids, dates, table ids). */
async function outcome(send: () => Promise<unknown>): Promise<unknown> {
  try {
    const { $metadata: _metadata, ...output } = (await send()) as { $metadata: unknown };
    return { output: JSON.parse(JSON.stringify(output, (key, value: unknown) => (/DateTime$|^TableId$/.test(key) ? 'differs' : value))) };
  } catch (error) {
    const { name, message } = error as Error;
    return { error: { name, message } };
  }
}

/** Every kind of table change between item requests, so that a remembered description would show if it went stale. */
async function exercise(client: DynamoDBClient): Promise<unknown[]> {
  const TableName = 'cached';
  const key = { pk: { S: 'USER#1' }, sk: { S: 'PROFILE' } };
  const create = () =>
    client.send(
      new CreateTableCommand({
        TableName,
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PROVISIONED',
        ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
      }),
    );
  const describe = () => client.send(new DescribeTableCommand({ TableName }));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20)); // dynalite's status changes land on a timer
  const answers: unknown[] = [];
  const record = async (send: () => Promise<unknown>) => answers.push(await outcome(send));
  await record(() => client.send(new GetItemCommand({ TableName, Key: key })));
  await record(create);
  await settle();
  for (let round = 0; round < 2; round++) {
    await record(describe);
    await record(() => client.send(new PutItemCommand({ TableName, Item: { ...key, n: { N: String(round) } } })));
    await record(() =>
      client.send(
        new UpdateItemCommand({
          TableName,
          Key: key,
          UpdateExpression: 'ADD n :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    await record(() =>
      client.send(new QueryCommand({ TableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': key.pk } })),
    );
  }
  await record(() => client.send(new UpdateTableCommand({ TableName, ProvisionedThroughput: { ReadCapacityUnits: 7, WriteCapacityUnits: 9 } })));
  await record(describe);
  await settle();
  await record(describe);
  await record(() => client.send(new PutItemCommand({ TableName, Item: key, ReturnConsumedCapacity: 'TOTAL' })));
  await record(() => client.send(new DeleteTableCommand({ TableName })));
  await record(() => client.send(new PutItemCommand({ TableName, Item: key })));
  await settle();
  await record(describe);
  await record(() => client.send(new GetItemCommand({ TableName, Key: key })));
  await record(() => client.send(new ListTablesCommand({})));
  await record(create);
  await settle();
  await record(() => client.send(new GetItemCommand({ TableName, Key: key, ConsistentRead: true })));
  await record(describe);
  return answers;
}

describe("dynalite's table descriptions remembered between requests", () => {
  const servers: Array<DynaliteServer & { tableCache?: { hits: number; reads: number } }> = [];
  const clients: DynamoDBClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });
  const clientOf = async (cacheTables: boolean): Promise<DynamoDBClient> => {
    const server = await serveDynalite({ cacheTables });
    servers.push(server);
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${server.port}`,
      region: 'local',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    clients.push(client);
    return client;
  };

  it('answers every request as dynalite does without them, through creation, update and deletion of the table', async () => {
    const [remembered, readEachTime] = await Promise.all([exercise(await clientOf(true)), exercise(await clientOf(false))]);
    expect(remembered).toEqual(readEachTime);
    // The sequence met the table missing, present, updated and deleted, so the comparison covers each.
    const text = JSON.stringify(readEachTime);
    expect(servers[0]!.tableCache!.hits).toBeGreaterThan(10);
    expect(servers[0]!.tableCache!.reads).toBeGreaterThan(3); // read again after each change
    expect(servers[1]!.tableCache).toBeUndefined();
    for (const seen of ['ResourceNotFoundException', '"ReadCapacityUnits":7', '"TableStatus":"ACTIVE"', '"n":{"N":"2"}', '"TableNames":[]'])
      expect(text).toContain(seen);
  });
});
