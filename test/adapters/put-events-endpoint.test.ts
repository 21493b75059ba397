import { EventBridgeClient, ListRulesCommand, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type EventBridgeEnvelope,
  type PutEventsEndpoint,
  PortInUseError,
  MAX_DETAIL_DEPTH,
  startPutEventsEndpoint,
} from '../../functions/local/put-events-endpoint.js';

const NOW = new Date('2026-11-02T09:30:00.250Z');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let endpoint: PutEventsEndpoint;
let client: EventBridgeClient;
let delivered: EventBridgeEnvelope[][];
let routerFailure: Error | undefined;

beforeEach(async () => {
  delivered = [];
  routerFailure = undefined;
  endpoint = await startPutEventsEndpoint({
    port: 0,
    accountId: '111122223333',
    region: 'eu-west-1',
    now: () => NOW,
    onEvents: (events) => {
      if (routerFailure) throw routerFailure;
      delivered.push(events);
    },
  });
  // Exactly what a producer writes, with dummy credentials: the endpoint does not check signatures.
  client = new EventBridgeClient({
    endpoint: endpoint.url,
    region: 'ap-southeast-2',
    credentials: { accessKeyId: 'dummy', secretAccessKey: 'dummy' },
    maxAttempts: 1,
  });
});

afterEach(async () => {
  client.destroy();
  await endpoint.close();
});

const userEvent = (eventId: string, overrides: Partial<PutEventsRequestEntry> = {}): PutEventsRequestEntry => ({
  Source: 'com.example.app',
  DetailType: 'UserEvent',
  Detail: JSON.stringify({ eventId, userId: 'u-1', type: 'lesson.completed', occurredAt: '2026-11-02T09:00:00Z' }),
  ...overrides,
});

describe('PutEvents endpoint', () => {
  it('accepts a good batch from the real SDK and delivers it as EventBridge envelopes', async () => {
    const response = await client.send(
      new PutEventsCommand({
        Entries: [
          userEvent('e-1', { EventBusName: 'strata', Time: new Date('2026-11-01T08:00:00.900Z'), Resources: ['arn:aws:example:course/1'] }),
          userEvent('e-2', { EventBusName: 'arn:aws:events:eu-west-1:111122223333:event-bus/strata' }),
          userEvent('e-3'),
        ],
      }),
    );

    expect(response.FailedEntryCount).toBe(0);
    expect(response.Entries).toHaveLength(3);
    for (const entry of response.Entries ?? []) expect(entry.EventId).toMatch(UUID);

    expect(delivered).toHaveLength(1);
    const envelopes = delivered[0]!;
    expect(envelopes.map((envelope) => envelope.id)).toEqual(response.Entries?.map((entry) => entry.EventId));
    expect(envelopes[0]).toEqual({
      version: '0',
      id: response.Entries?.[0]?.EventId,
      'detail-type': 'UserEvent',
      source: 'com.example.app',
      account: '111122223333',
      time: '2026-11-01T08:00:00Z',
      region: 'eu-west-1',
      resources: ['arn:aws:example:course/1'],
      detail: { eventId: 'e-1', userId: 'u-1', type: 'lesson.completed', occurredAt: '2026-11-02T09:00:00Z' },
    });
    // With no Time, the event is stamped with the endpoint's clock, to the second.
    expect(envelopes[2]?.time).toBe('2026-11-02T09:30:00Z');
    expect(envelopes[2]?.resources).toEqual([]);
  });

  it('fails bad entries at their own index and accepts the good ones in the same call', async () => {
    const response = await client.send(
      new PutEventsCommand({
        Entries: [
          userEvent('e-1'),
          userEvent('e-2', { Detail: '{"eventId": "e-2", ' }),
          userEvent('e-3', { DetailType: undefined }),
          userEvent('e-4', { Detail: '["not", "an", "object"]' }),
          userEvent('e-5', { Source: '' }),
          userEvent('e-6', { Detail: undefined }),
          userEvent('e-7', { EventBusName: 'orders' }),
          userEvent('e-8', { Source: 'strata.tiers' }),
        ],
      }),
    );

    expect(response.FailedEntryCount).toBe(6);
    expect(response.Entries?.map((entry) => (entry.EventId ? 'accepted' : { ErrorCode: entry.ErrorCode, ErrorMessage: entry.ErrorMessage }))).toEqual(
      [
        'accepted',
        { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' },
        { ErrorCode: 'InvalidArgument', ErrorMessage: 'Parameter DetailType is not valid. Reason: DetailType is a required argument.' },
        { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' },
        { ErrorCode: 'InvalidArgument', ErrorMessage: 'Parameter Source is not valid. Reason: Source is a required argument.' },
        { ErrorCode: 'InvalidArgument', ErrorMessage: 'Parameter Detail is not valid. Reason: Detail is a required argument.' },
        { ErrorCode: 'ResourceNotFoundException', ErrorMessage: 'Event bus orders does not exist. (The local bus is "strata".)' },
        // EventBridge accepts Strata's reserved sources from anyone; the ingest rule is what ignores them.
        'accepted',
      ],
    );
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.map((envelope) => (envelope.detail as { eventId: string }).eventId)).toEqual(['e-1', 'e-8']);
    expect(delivered[0]?.map((envelope) => envelope.id)).toEqual([response.Entries?.[0]?.EventId, response.Entries?.[7]?.EventId]);
  });

  it('refuses more than 10 entries as a whole, which the SDK throws as a ValidationException', async () => {
    const entries = Array.from({ length: 11 }, (_, index) => userEvent(`e-${index}`));
    const error = await client.send(new PutEventsCommand({ Entries: entries })).catch((caught: unknown) => caught);
    expect(error).toMatchObject({
      name: 'ValidationException',
      message:
        "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10 (this call has 11 entries)",
      $metadata: { httpStatusCode: 400 },
    });
    expect(delivered).toEqual([]);
  });

  it('refuses a call whose entries total more than 256 KB', async () => {
    const padding = 'x'.repeat(100 * 1024);
    const entries = [1, 2, 3].map((n) => userEvent(`e-${n}`, { Detail: JSON.stringify({ eventId: `e-${n}`, padding }) }));
    await expect(client.send(new PutEventsCommand({ Entries: entries }))).rejects.toMatchObject({
      name: 'ValidationException',
      message: 'Total size of the entries in the request is over the limit.',
    });
    // Two of them fit.
    const response = await client.send(new PutEventsCommand({ Entries: entries.slice(0, 2) }));
    expect(response.FailedEntryCount).toBe(0);
  });

  it('reports the entries as InternalFailure when the router fails, so the producer resends them', async () => {
    routerFailure = new Error('dynalite is not answering');
    const response = await client.send(new PutEventsCommand({ Entries: [userEvent('e-1'), userEvent('e-2', { DetailType: '' })] }));
    expect(response.FailedEntryCount).toBe(2);
    expect(response.Entries?.[0]).toEqual({
      ErrorCode: 'InternalFailure',
      ErrorMessage: 'Internal Failure: the local router failed: dynalite is not answering',
    });
    expect(response.Entries?.[1]?.ErrorCode).toBe('InvalidArgument');
  });

  it('answers any other operation with UnknownOperationException', async () => {
    await expect(client.send(new ListRulesCommand({}))).rejects.toMatchObject({
      name: 'UnknownOperationException',
      message: 'Strata\'s local EventBridge endpoint only serves AWSEvents.PutEvents; got "AWSEvents.ListRules".',
    });
    const response = await fetch(`${endpoint.url}/other`, { method: 'GET' });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    expect(await response.json()).toEqual({
      __type: 'UnknownOperationException',
      message: "Strata's local EventBridge endpoint only serves AWSEvents.PutEvents; got GET /other.",
    });
  });

  it('answers a malformed body with SerializationException', async () => {
    const post = (body: string) =>
      fetch(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSEvents.PutEvents' },
        body,
      });
    const notJson = await post('{"Entries": [');
    expect(notJson.status).toBe(400);
    expect(notJson.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await notJson.json()).toMatchObject({
      __type: 'SerializationException',
      message: expect.stringMatching(/^The request body is not valid JSON: /),
    });

    const wrongShape = await post('{"Entries": [{"Source": 5, "DetailType": "x", "Detail": "{}"}]}');
    expect(await wrongShape.json()).toEqual({ __type: 'SerializationException', message: 'Entries[0].Source must be a string.' });

    const noEntries = await post('{}');
    expect(await noEntries.json()).toEqual({
      __type: 'ValidationException',
      message: "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
    });
    expect(delivered).toEqual([]);
  });

  it('rejects with PortInUseError when the port is taken, telling the user to pass --port', async () => {
    const second = startPutEventsEndpoint({ port: endpoint.port, onEvents: () => undefined });
    await expect(second).rejects.toBeInstanceOf(PortInUseError);
    await expect(second).rejects.toThrow(
      `PutEvents endpoint: port ${endpoint.port} is already in use on 127.0.0.1 (is another Strata stack running?); pass --port to use a different port`,
    );
  });

  describe('one entry at a time', () => {
    /** An endpoint whose onEvents serialises each envelope, as the embedded stack does to write its ingest log. */
    async function serialisingEndpoint(capacity?: () => number): Promise<{ client: EventBridgeClient; logged: string[]; close(): Promise<void> }> {
      const logged: string[] = [];
      const own = await startPutEventsEndpoint({
        port: 0,
        now: () => NOW,
        onEvents: (events) => void logged.push(...events.map((event) => JSON.stringify(event))),
        ...(capacity ? { capacity } : {}),
      });
      const ownClient = new EventBridgeClient({
        endpoint: own.url,
        region: 'eu-west-1',
        credentials: { accessKeyId: 'dummy', secretAccessKey: 'dummy' },
        maxAttempts: 1,
      });
      return {
        client: ownClient,
        logged,
        close: async () => {
          ownClient.destroy();
          await own.close();
        },
      };
    }

    it('fails an entry whose Detail nests 100,000 levels deep alone, with MalformedDetail; its neighbours are accepted', async () => {
      const own = await serialisingEndpoint();
      try {
        const deep = `{"eventId":"deep","userId":"u-1","properties":{"p":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
        const response = await own.client.send(
          new PutEventsCommand({ Entries: [userEvent('before'), userEvent('deep', { Detail: deep }), userEvent('after')] }),
        );
        expect(response.FailedEntryCount).toBe(1);
        expect(response.Entries?.[1]).toEqual({
          ErrorCode: 'MalformedDetail',
          ErrorMessage: `Detail is malformed: it nests objects or arrays more than ${MAX_DETAIL_DEPTH} levels deep; flatten it (a user event needs only a few levels).`,
        });
        expect(own.logged.map((body) => (JSON.parse(body) as EventBridgeEnvelope).detail['eventId'])).toEqual(['before', 'after']);
      } finally {
        await own.close();
      }
    });

    it('answers ThrottlingException for the entries beyond the backlog bound, as EventBridge does over its quota', async () => {
      let room = 2;
      const own = await serialisingEndpoint(() => room);
      try {
        const response = await own.client.send(
          new PutEventsCommand({
            Entries: [userEvent('e-1'), userEvent('bad', { DetailType: '' }), userEvent('e-2'), userEvent('e-3'), userEvent('e-4')],
          }),
        );
        expect(response.FailedEntryCount).toBe(3);
        expect(response.Entries?.map((entry) => entry.ErrorCode ?? 'accepted')).toEqual([
          'accepted',
          'InvalidArgument',
          'accepted',
          'ThrottlingException',
          'ThrottlingException',
        ]);
        expect(response.Entries?.[3]?.ErrorMessage).toMatch(/^Rate exceeded\./);
        room = 0;
        const full = await own.client.send(new PutEventsCommand({ Entries: [userEvent('e-3')] }));
        expect(full.Entries?.[0]?.ErrorCode).toBe('ThrottlingException');
        room = 10;
        const resent = await own.client.send(new PutEventsCommand({ Entries: [userEvent('e-3'), userEvent('e-4')] }));
        expect(resent.FailedEntryCount).toBe(0);
        expect(own.logged).toHaveLength(4);
      } finally {
        await own.close();
      }
    });
  });
});
