import { DynamoDBClient, UpdateItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { startDynalite } from './functions/local/dynalite.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = await mkdtemp(join(tmpdir(), 'scratch-'));
const d = await startDynalite({ path: dir });
const variants: Record<string, DynamoDBClient> = {
  default: d.client,
  tuned: new DynamoDBClient({ endpoint: d.endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }) }),
};
async function run(client: DynamoDBClient, ops: number, conc: number, tag: string) {
  let next = 0;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    for (let i = next++; i < ops; i = next++) {
      if (i % 2) await client.send(new UpdateItemCommand({ TableName: d.tableName, Key: { pk: { S: `USER#u${i % 500}` }, sk: { S: `DAY#2026-10-${String(1 + (i % 28)).padStart(2, '0')}` } },
        UpdateExpression: 'ADD #ids :keys, #n :one', ConditionExpression: 'NOT contains(#ids, :key)',
        ExpressionAttributeNames: { '#ids': 'ids', '#n': 'n' }, ExpressionAttributeValues: { ':keys': { SS: [`${tag}${i}`] }, ':key': { S: `${tag}${i}` }, ':one': { N: '1' } } }));
      else await client.send(new QueryCommand({ TableName: d.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: `USER#u${i % 500}` } }, ConsistentRead: true }));
    }
  }));
  const c = process.cpuUsage(c0); const t = performance.now() - t0;
  return `${(ops / (t / 1000)).toFixed(0)} ops/s, cpu ${((c.user + c.system) / 1000 / ops).toFixed(3)} ms/op`;
}
for (const round of [1, 2, 3, 4]) for (const [name, client] of Object.entries(variants)) console.log(round, name, await run(client, 3000, 16, `${round}${name}`));
await d.close();
