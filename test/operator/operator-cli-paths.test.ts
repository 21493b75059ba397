/**
 * The two ways the CLI reaches a user: `--table` (the CLI itself on AWS clients: DynamoDB here is dynalite, the
 * notices go through the real EventBridge client to a local PutEvents endpoint, and Step Functions, which has no
 * local API, is aws-sdk-client-mock) and the local stack (the request goes to the running stack's operator
 * endpoint, found through stack.json).
 */
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { userKey } from '../../functions/aws/table-schema.js';
import { awsOperatorServices, performOnLocalStack } from '../../functions/cli/commands/operate.js';
import { loadValidRuleset } from '../../functions/cli/load-ruleset.js';
import { UsageError } from '../../functions/cli/output.js';
import { addDays, localDate } from '../../functions/core/dates.js';
import type { EventBridgeEnvelope } from '../../functions/core/event-pattern.js';
import { userRef } from '../../functions/core/hash.js';
import { ingestEvent } from '../../functions/core/ingest.js';
import { instantAtLocalTime } from '../../functions/core/local-time.js';
import { performOperatorRequest } from '../../functions/core/operator.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import { createVirtualClock } from '../../functions/local/clock.js';
import { writeStackInfo } from '../../functions/local/local-data.js';
import { startLocalStack } from '../../functions/local/local-stack.js';
import { startOperatorEndpoint } from '../../functions/local/operator-endpoint.js';
import { startPutEventsEndpoint } from '../../functions/local/put-events-endpoint.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();
let ruleset: Ruleset;
const cleanups: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  ruleset = await loadValidRuleset(process.cwd(), 'the ruleset');
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const machineArn = (tier: string): string => `arn:aws:states:eu-west-1:123456789012:stateMachine:strata-${tier}:live`;

async function itemCount(tableName: string, userId: string): Promise<number> {
  const page = await dynalite.client.send(
    new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: userKey(userId) } } }),
  );
  return page.Count ?? 0;
}

describe('--table: the CLI on AWS clients', () => {
  it('locks with history and a TierChanged notice, then forgets: executions stopped, items gone, UserForgotten with the reference only', async () => {
    const sfn = mockClient(SFNClient);
    cleanups.push(() => sfn.restore());
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'x', startDate: new Date() });
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });
    const published: EventBridgeEnvelope[] = [];
    const endpoint = await startPutEventsEndpoint({ port: 0, busName: 'strata-prod', onEvents: (events) => void published.push(...events) });
    cleanups.push(() => endpoint.close());
    const eventBridge = new EventBridgeClient({
      endpoint: endpoint.url,
      region: 'eu-west-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    });
    const sfnClient = new SFNClient({ region: 'eu-west-1' });
    cleanups.push(
      () => eventBridge.destroy(),
      () => sfnClient.destroy(),
    );
    const tableName = await dynalite.freshTable();
    const stateMachines = JSON.stringify(Object.fromEntries(ruleset.tiers.map((t) => [t.id, machineArn(t.id)])));
    const services = awsOperatorServices(
      ruleset,
      { dynamo: dynalite.client, sfn: sfnClient, eventBridge },
      { tableName, eventBusName: 'strata-prod', stateMachines, reviewShards: 16 },
    );

    const now = new Date().toISOString();
    await ingestEvent(services, { eventId: 'e1', userId: 'aws-1', type: 'app.opened', occurredAt: now, properties: {} });
    const visitorExecution = (await services.store.loadUser('aws-1', addDays(localDate(now, ruleset.timezone), -1))).profile!.journey!.executionName;

    const until = addDays(localDate(new Date(), ruleset.timezone), 30);
    const locked = await performOperatorRequest(services, { action: 'lock', userId: 'aws-1', lock: { tier: 'core', until, reason: 'VIP' } });
    expect(locked).toEqual({ action: 'lock', userId: 'aws-1', tier: 'core', transitions: ['locked'] });
    const [entry] = await services.store.listHistory('aws-1', 1);
    expect(entry!.explanation.note).toBe('locked: VIP');
    expect(published.map((e) => [e['detail-type'], (e.detail as { kind?: string }).kind])).toEqual([
      ['TierChanged', 'entered'],
      ['TierChanged', 'locked'],
    ]);
    const coreExecution = (await services.store.loadUser('aws-1', until)).profile!.journey!.executionName;
    expect(sfn.commandCalls(StopExecutionCommand).map((c) => c.args[0].input.executionArn)).toEqual([
      `arn:aws:states:eu-west-1:123456789012:execution:strata-visitor:${visitorExecution}`,
    ]);

    const forgotten = await performOperatorRequest(services, { action: 'forget', userId: 'aws-1' });
    expect(forgotten).toMatchObject({ action: 'forget', userRef: userRef('aws-1'), stoppedExecutions: [coreExecution] });
    expect((forgotten as { deleted: number }).deleted).toBeGreaterThanOrEqual(4);
    expect(await itemCount(tableName, 'aws-1')).toBe(0);
    expect(sfn.commandCalls(StopExecutionCommand).at(-1)!.args[0].input.executionArn).toContain(coreExecution);
    const last = published.at(-1)!;
    expect(last['detail-type']).toBe('UserForgotten');
    expect(Object.keys(last.detail).sort()).toEqual(['at', 'detailType', 'userRef']);
    expect(JSON.stringify(last)).not.toContain('aws-1');

    // Repeating is harmless.
    expect(await performOperatorRequest(services, { action: 'forget', userId: 'aws-1' })).toMatchObject({ deleted: 0, stoppedExecutions: [] });
  });

  it('deletes users with more items than one batch holds (every item under the key, any kind)', async () => {
    const { store, tableName } = await dynalite.freshStore();
    for (let day = 0; day < 60; day++)
      await store.recordEvent('many-1', `k${day}`, { date: addDays('2026-01-01', day), counters: { n_x: 1 }, signals: [] });
    expect(await itemCount(tableName, 'many-1')).toBe(60);
    expect(await store.deleteUserItems('many-1')).toEqual({ deleted: 60 });
    expect(await itemCount(tableName, 'many-1')).toBe(0);
  });
});

describe('local: the CLI through the running stack', () => {
  it('sends lock and forget to the stack in stack.json and reports refusals as usage errors', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-operate-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const clock = createVirtualClock(instantAtLocalTime('2026-03-02', 600, ruleset.timezone));
    const stack = await startLocalStack({ ruleset, clock, batchWindowMs: 0 });
    cleanups.push(async () => void (await stack.close()));
    const endpoint = await startOperatorEndpoint(stack.operator);
    cleanups.push(() => endpoint.close());
    await writeStackInfo(dataDir, {
      dynamoEndpoint: stack.dynalite.endpoint,
      tableName: stack.dynalite.tableName,
      eventsEndpoint: 'http://127.0.0.1:1',
      operatorEndpoint: endpoint.url,
      pid: process.pid,
    });

    await ingestEvent(stack.services, {
      eventId: 'e1',
      userId: 'local-1',
      type: 'app.opened',
      occurredAt: clock.now().toISOString(),
      properties: {},
    });
    expect(await performOnLocalStack({ action: 'lock', userId: 'local-1', lock: { tier: 'member', reason: 'beta tester' } }, dataDir)).toEqual({
      action: 'lock',
      userId: 'local-1',
      tier: 'member',
      transitions: ['locked'],
    });
    await expect(performOnLocalStack({ action: 'unlock', userId: 'nobody' }, dataDir)).rejects.toThrow(UsageError);
    await expect(performOnLocalStack({ action: 'lock', userId: 'local-1', lock: { tier: 'gold', reason: 'x' } }, dataDir)).rejects.toThrow(
      /"gold" is not a tier/,
    );
    expect(await performOnLocalStack({ action: 'forget', userId: 'local-1' }, dataDir)).toMatchObject({
      action: 'forget',
      userRef: userRef('local-1'),
    });
    expect(await itemCount(stack.dynalite.tableName, 'local-1')).toBe(0);
  });
});
