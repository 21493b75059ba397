/**
 * The ingest handler end to end: SQS batch in, the real DynamoDB store on dynalite, and the real SFN,
 * EventBridge and SQS adapters on mocked clients (those are the AWS-only parts, and where failures are injected).
 *
 * The reliability contract at the Lambda boundary: a poison message goes to the DLQ with its reason and the rest
 * of the batch succeeds; a throttled write fails only its record, and the redelivery applies it exactly once.
 */
import { DynamoDBServiceException, ProvisionedThroughputExceededException, ThrottlingException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SQSClient, SendMessageCommand, type SendMessageCommandInput } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { createEventBridgePublisher } from '../../functions/aws/eventbridge-publisher.js';
import { createSfnJourneyStarter } from '../../functions/aws/sfn-journey-starter.js';
import { createSqsDeadLetterSender } from '../../functions/aws/sqs-dead-letter.js';
import { windowStart } from '../../functions/core/ingest.js';
import { userRef } from '../../functions/core/hash.js';
import type { UserEvent } from '../../functions/core/event.js';
import { userKey } from '../../functions/aws/table-schema.js';
import { createIngestHandler, readUserEvent } from '../../functions/handlers/ingest.js';
import { journeyIdsOf } from '../../functions/handlers/runtime.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { testRuleset, testTiers, testTiersFile } from '../helpers/fixtures.js';
import { journeyDocument } from '../helpers/journey-fixtures.js';
import { ManualClock } from '../helpers/memory-ports.js';
import { captureProcessOutput } from '../helpers/captured-output.js';
import { sqsRecord as sqsRecordSentAt } from '../helpers/sqs-records.js';

const dynalite = useDynalite();

const ruleset = testRuleset({
  tiers: testTiersFile({ tiers: testTiers({ member: { journey: 'journeys/member.json' } }) }),
  extra: { 'journeys/member.json': JSON.stringify(journeyDocument()) },
});
const MEMBER_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:StrataJourneyMember';
const DEAD_LETTER_QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/strata-ingest-dlq';
const NOW = '2026-03-02T10:00:00Z';

// Raw ids that look like what producers really send: they must never reach a log line.
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

const awsClientConfig = { region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
const sfnClient = new SFNClient(awsClientConfig);
const eventBridgeClient = new EventBridgeClient(awsClientConfig);
const sqsClient = new SQSClient(awsClientConfig);
const sfn = mockClient(sfnClient);
const eventBridge = mockClient(eventBridgeClient);
const sqs = mockClient(sqsClient);

const output = captureProcessOutput();

beforeEach(() => {
  sfn.reset();
  eventBridge.reset();
  sqs.reset();
  sfn.on(StartExecutionCommand).resolves({ executionArn: `${MEMBER_MACHINE.replace(':stateMachine:', ':execution:')}:x`, startDate: new Date(NOW) });
  eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
    FailedEntryCount: 0,
    Entries: input.Entries.map((_, i) => ({ EventId: `e-${i}` })),
  }));
  sqs.on(SendMessageCommand).resolves({ MessageId: 'dlq-1' });
});

afterEach(() => {
  vi.restoreAllMocks();
});

async function setup() {
  const tableName = await dynalite.freshTable();
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 4, timeZone: ruleset.timezone });
  const clock = new ManualClock(new Date(NOW));
  const handler = createIngestHandler({
    services: {
      ruleset,
      store,
      journeys: createSfnJourneyStarter({ client: sfnClient, stateMachineArns: { member: MEMBER_MACHINE }, journeyIds: journeyIdsOf(ruleset) }),
      publisher: createEventBridgePublisher({ client: eventBridgeClient, eventBusName: 'strata-bus' }),
      clock,
    },
    deadLetters: createSqsDeadLetterSender({ client: sqsClient, queueUrl: DEAD_LETTER_QUEUE }),
    logger: new Logger({ serviceName: 'strata-ingest-test' }),
    metrics: new Metrics({ namespace: 'StrataTest', serviceName: 'strata-ingest-test' }),
  });
  return { handler, store, clock };
}

function sqsRecord(messageId: string, body: string): SQSRecord {
  return sqsRecordSentAt(messageId, body, NOW);
}

function envelope(detail: Record<string, unknown>, detailType = 'UserEvent'): string {
  return JSON.stringify({
    version: '0',
    id: `eb-${String(detail['eventId'] ?? 'none')}`,
    'detail-type': detailType,
    source: 'com.example.app',
    account: '123456789012',
    time: NOW,
    region: 'eu-west-1',
    resources: [],
    detail,
  });
}

function eventRecord(messageId: string, event: Partial<UserEvent> & Record<string, unknown>, detailType?: string): SQSRecord {
  return sqsRecord(messageId, envelope({ properties: {}, ...event }, detailType));
}

const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

/** The EMF metric values published during the test, summed by name. */
function metricTotals(): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const line of output.text().split('\n')) {
    if (!line.includes('"_aws"')) continue;
    const document = JSON.parse(line) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> } };
    for (const { Name } of document._aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics)) {
      const value = document[Name];
      totals[Name] = (totals[Name] ?? 0) + (Array.isArray(value) ? value.reduce((a: number, b: number) => a + b, 0) : Number(value));
    }
  }
  return totals;
}

function expectNoRawUserIds(...userIds: string[]): void {
  const text = output.text();
  expect(text.length).toBeGreaterThan(0);
  for (const userId of userIds) expect(text).not.toContain(userId);
}

async function countersOf(store: ReturnType<typeof createDynamoTierStore>, userId: string): Promise<number[]> {
  const { buckets } = await store.loadUser(userId, windowStart(ruleset, new Date(NOW)));
  return buckets.map((bucket) => Object.values(bucket.counters).reduce((a, b) => a + b, 0));
}

describe('ingest handler: poison messages', () => {
  it('sends each poison message to the DLQ with its reason, and the rest of the batch succeeds', async () => {
    const { handler, store } = await setup();
    const notJson = sqsRecord('m-not-json', '{"detail": ');
    const notEnvelope = sqsRecord('m-not-envelope', JSON.stringify({ hello: 'world' }));
    const invalid = eventRecord('m-invalid', { eventId: 'evt-bad', type: 'app.opened', occurredAt: 'yesterday', userId: '' });
    // An event id built from the user id: fine in the DLQ attribute, never in a log line.
    const leaky = eventRecord('m-leaky', { eventId: `${ALICE}#signup`, userId: ALICE, type: 'Signed Up', occurredAt: NOW });
    const response = await handler(
      batch(
        eventRecord('m-alice', { eventId: 'evt-a', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:00:00Z' }),
        notJson,
        invalid,
        notEnvelope,
        leaky,
        // No `type` in the detail: the envelope's detail-type names it.
        eventRecord('m-bob', { eventId: 'evt-b', userId: BOB, occurredAt: '2026-03-02T09:30:00Z' }, 'content.completed'),
      ),
    );

    expect(response.batchItemFailures).toEqual([]);
    const sent = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input as SendMessageCommandInput);
    expect(sent).toHaveLength(4);
    const byRef = Object.fromEntries(sent.map((input) => [input.MessageAttributes?.['eventRef']?.StringValue, input]));
    expect(Object.keys(byRef).sort()).toEqual([`${ALICE}#signup`, 'evt-bad', 'm-not-envelope', 'm-not-json']);
    expect(byRef[`${ALICE}#signup`]!.MessageAttributes!['reason']!.StringValue).toContain('/type');
    for (const input of sent) expect(input.QueueUrl).toBe(DEAD_LETTER_QUEUE);
    // The original body, untouched, so that the message can be fixed and redriven.
    expect(byRef['evt-bad']!.MessageBody).toBe(invalid.body);
    expect(byRef['m-not-json']!.MessageBody).toBe(notJson.body);
    // The reason names the JSON pointer of each problem.
    const reason = byRef['evt-bad']!.MessageAttributes!['reason']!.StringValue!;
    expect(reason).toContain('/occurredAt');
    expect(reason).toContain('/userId');
    expect(byRef['m-not-json']!.MessageAttributes!['reason']!.StringValue).toMatch(/not JSON/);
    expect(byRef['m-not-envelope']!.MessageAttributes!['reason']!.StringValue).toMatch(/\/detail/);

    expect(await countersOf(store, ALICE)).toEqual([1]);
    expect(await countersOf(store, BOB)).toEqual([2]); // content.completed counts as a day and as a lesson
    expect(metricTotals()).toMatchObject({ EventsIngested: 2, PoisonEvents: 4, DuplicateEvents: 0 });
    expect(output.text()).toContain(`${userRef(ALICE)}#signup`);
    expectNoRawUserIds(ALICE, BOB);
  });

  it('dead-letters at once, with the reason and the event id, an event the core or the store refuses for its content', async () => {
    const { handler, store } = await setup();
    const records = [
      // A summed property that is not a number: dayIncrements throws InvalidEventError.
      eventRecord('m-string-amount', {
        eventId: 'evt-string-amount',
        userId: ALICE,
        type: 'order.paid',
        occurredAt: '2026-03-02T09:00:00Z',
        properties: { amount: '199' },
      }),
      // An attribute of the wrong type: applyEventToAttributes throws InvalidEventError, after the day write.
      eventRecord('m-plan', {
        eventId: 'evt-plan',
        userId: BOB,
        type: 'questionnaire.answered',
        occurredAt: '2026-03-02T09:00:00Z',
        properties: { plan: 5 },
      }),
      eventRecord('m-good', { eventId: 'evt-good', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:10:00Z' }),
    ];
    const response = await handler(batch(...records));

    // Nothing is left for SQS to redeliver: a retry could not change the event.
    expect(response.batchItemFailures).toEqual([]);
    const sent = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input as SendMessageCommandInput);
    const reasonOf = Object.fromEntries(
      sent.map((input) => [input.MessageAttributes!['eventRef']!.StringValue!, input.MessageAttributes!['reason']!.StringValue!]),
    );
    expect(Object.keys(reasonOf).sort()).toEqual(['evt-plan', 'evt-string-amount']);
    expect(reasonOf['evt-string-amount']).toBe('Event evt-string-amount: /properties/amount: must be a number (a metric adds it up), found "199"');
    expect(reasonOf['evt-plan']).toBe('Event evt-plan: /properties/plan: must be a string (it sets attribute "plan"), found 5');
    expect(sent.find((input) => input.MessageAttributes!['eventRef']!.StringValue === 'evt-plan')!.MessageBody).toBe(records[1]!.body);
    expect(await countersOf(store, ALICE)).toEqual([1]);
    expect(metricTotals()).toMatchObject({ PoisonEvents: 2, EventsIngested: 1 });
    expectNoRawUserIds(ALICE, BOB);
  });

  it('dead-letters at once an event whose values DynamoDB refuses (ValidationException), but retries throttling', async () => {
    const { handler } = await setup();
    // dynalite does not enforce DynamoDB's number range on ADD, so the refusal real DynamoDB gives is injected.
    const dynamo = mockClient(dynalite.client);
    try {
      dynamo.send.callThrough();
      const overflow = new DynamoDBServiceException({
        name: 'ValidationException',
        $fault: 'client',
        message: 'Number overflow. Attempting to store a number with magnitude larger than supported range',
        $metadata: { httpStatusCode: 400 },
      });
      dynamo.on(UpdateItemCommand, { Key: { pk: { S: userKey('carol') } } }).rejects(overflow);
      dynamo
        .on(UpdateItemCommand, { Key: { pk: { S: userKey(BOB) } } })
        .rejectsOnce(new ThrottlingException({ message: 'Rate exceeded', $metadata: {} }));
      const response = await handler(
        batch(
          eventRecord('m-big', {
            eventId: 'evt-big',
            userId: 'carol',
            type: 'order.paid',
            occurredAt: '2026-03-02T09:00:00Z',
            properties: { amount: 9e125 },
          }),
          eventRecord('m-bob', { eventId: 'evt-b', userId: BOB, type: 'app.opened', occurredAt: '2026-03-02T09:10:00Z' }),
        ),
      );
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm-bob' }]);
      const sent = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input as SendMessageCommandInput);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.MessageAttributes!['eventRef']!.StringValue).toBe('evt-big');
      expect(sent[0]!.MessageAttributes!['reason']!.StringValue).toMatch(/^Ingest: DynamoDB refused the event's values: .*Number overflow/);
    } finally {
      dynamo.restore();
    }
  });

  it('dead-letters an event dated implausibly early or too far ahead, or without a time zone, saying which', async () => {
    const { handler } = await setup();
    const response = await handler(
      batch(
        eventRecord('m-1970', { eventId: 'evt-1970', userId: ALICE, type: 'app.opened', occurredAt: '1970-01-01T00:00:00Z' }),
        eventRecord('m-2100', { eventId: 'evt-2100', userId: ALICE, type: 'app.opened', occurredAt: '2100-01-01T00:00:00Z' }),
        eventRecord('m-no-zone', { eventId: 'evt-no-zone', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:00:00' }),
        eventRecord('m-huge', {
          eventId: 'evt-huge',
          userId: ALICE,
          type: 'order.paid',
          occurredAt: '2026-03-02T09:00:00Z',
          properties: { amount: 1e308 },
        }),
        eventRecord('m-soon', { eventId: 'evt-soon', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-03T09:00:00Z' }),
      ),
    );
    expect(response.batchItemFailures).toEqual([]);
    const reasonOf = Object.fromEntries(
      sqs
        .commandCalls(SendMessageCommand)
        .map((call) => [
          call.args[0].input.MessageAttributes!['eventRef']!.StringValue!,
          call.args[0].input.MessageAttributes!['reason']!.StringValue!,
        ]),
    );
    expect(reasonOf).toEqual({
      'evt-1970': expect.stringContaining('/occurredAt: 1970-01-01T00:00:00Z is before 2000-01-01'),
      'evt-2100': expect.stringContaining(
        `/occurredAt: 2100-01-01T00:00:00Z is more than 24 h ahead of the receiving clock (${new Date(NOW).toISOString()})`,
      ),
      'evt-no-zone': expect.stringContaining('/occurredAt: "2026-03-02T09:00:00" has no time zone: add Z for UTC or an offset such as +08:00'),
      'evt-huge': expect.stringContaining('/properties/amount: 1e+308 is outside the range DynamoDB can store'),
    });
  });

  it('keeps a poison message on its queue when the DLQ cannot take it', async () => {
    const { handler } = await setup();
    sqs.on(SendMessageCommand).rejects(Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailable', $fault: 'server' }));
    const response = await handler(
      batch(
        sqsRecord('m-poison', '[]'),
        eventRecord('m-alice', { eventId: 'evt-a', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:00:00Z' }),
      ),
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm-poison' }]);
  });

  it('reads the event out of the envelope, refusing what is not one', () => {
    expect(readUserEvent(envelope({ eventId: 'e1', userId: 'u', occurredAt: NOW, properties: {} }, 'order.paid'), 'm1')).toEqual({
      event: { eventId: 'e1', userId: 'u', type: 'order.paid', occurredAt: NOW, properties: {} },
    });
    expect(readUserEvent(envelope({ eventId: 'e1', userId: 'u', type: 'app.opened', occurredAt: NOW }, 'Ignored'), 'm1')).toMatchObject({
      event: { type: 'app.opened' },
    });
    expect(readUserEvent('"text"', 'm2')).toMatchObject({ poison: { eventRef: 'm2' } });
    expect(readUserEvent(JSON.stringify({ detail: [1] }), 'm3')).toMatchObject({ poison: { eventRef: 'm3' } });
    const pollutes = `{"detail-type":"app.opened","detail":{"eventId":"e4","userId":"u","occurredAt":"${NOW}","__proto__":{"admin":true}}}`;
    const result = readUserEvent(pollutes, 'm4');
    expect(result).toMatchObject({ poison: { eventRef: 'e4' } });
    expect('poison' in result && result.poison.reason).toContain('/__proto__');
  });
});

describe('ingest handler: throttling', () => {
  it.each([
    [
      'ProvisionedThroughputExceededException',
      () =>
        new ProvisionedThroughputExceededException({
          message: 'The level of configured provisioned throughput for the table was exceeded',
          $metadata: {},
        }),
    ],
    ['ThrottlingException', () => new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput', $metadata: {} })],
  ])('a %s on a write fails only that record, and the redelivery applies it once', async (_name, throttle) => {
    const { handler, store } = await setup();
    // The real dynalite client, with one write of Bob's refused once: the SDK's own retries are behind `send`,
    // so this is what the handler sees after they are spent.
    const dynamo = mockClient(dynalite.client);
    try {
      dynamo.send.callThrough();
      dynamo.on(UpdateItemCommand, { Key: { pk: { S: userKey(BOB) } } }).rejectsOnce(throttle());
      const alice = eventRecord('m-alice', { eventId: 'evt-a', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:00:00Z' });
      const bob = eventRecord('m-bob', { eventId: 'evt-b', userId: BOB, type: 'app.opened', occurredAt: '2026-03-02T09:10:00Z' });

      const first = await handler(batch(alice, bob));
      expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm-bob' }]);
      expect(await countersOf(store, ALICE)).toEqual([1]);
      expect(await countersOf(store, BOB)).toEqual([]);

      // SQS redelivers the failed record after its visibility timeout.
      const retry = await handler(batch(bob));
      expect(retry.batchItemFailures).toEqual([]);
      expect(await countersOf(store, BOB)).toEqual([1]);

      // A redelivery of the whole batch (at-least-once) changes nothing.
      const again = await handler(batch(alice, bob));
      expect(again.batchItemFailures).toEqual([]);
      expect(await countersOf(store, ALICE)).toEqual([1]);
      expect(await countersOf(store, BOB)).toEqual([1]);
      expect(metricTotals()).toMatchObject({ EventsIngested: 4, DuplicateEvents: 2 });
      expectNoRawUserIds(ALICE, BOB);
      expect(output.text()).toContain(userRef(BOB));
    } finally {
      dynamo.restore();
    }
  });
});

describe('ingest handler: tier changes', () => {
  it('promotes, starts the journey under its deterministic name, and publishes the notice', async () => {
    const { handler, store } = await setup();
    // Member: active on two distinct days within 7.
    const first = await handler(
      batch(eventRecord('m1', { eventId: 'evt-1', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-01T09:00:00Z' })),
    );
    expect(first.batchItemFailures).toEqual([]);
    const second = await handler(
      batch(eventRecord('m2', { eventId: 'evt-2', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:00:00Z' })),
    );
    expect(second.batchItemFailures).toEqual([]);

    const { profile } = await store.loadUser(ALICE, windowStart(ruleset, new Date(NOW)));
    expect(profile?.tier).toBe('member');
    expect(profile?.pendingJourney).toBeUndefined(); // the outbox was flushed and cleared

    const starts = sfn.commandCalls(StartExecutionCommand).map((call) => call.args[0].input);
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatchObject({ stateMachineArn: MEMBER_MACHINE, name: profile!.journey!.executionName });
    expect(starts[0]!.name).toMatch(/^member-[A-Za-z0-9_-]{22}$/);
    expect(JSON.parse(starts[0]!.input!)).toEqual({ userId: ALICE, tier: 'member', journeyId: 'member-nurture', executionName: starts[0]!.name });

    const entries = eventBridge.commandCalls(PutEventsCommand).flatMap((call) => call.args[0].input.Entries ?? []);
    const tierChanged = entries.filter((entry) => entry.DetailType === 'TierChanged');
    expect(tierChanged.map((entry) => entry.Source)).toContain('strata.tiers');
    expect(tierChanged.some((entry) => JSON.parse(entry.Detail!).toTier === 'member')).toBe(true);
    expect(metricTotals()['TierChanges']).toBeGreaterThanOrEqual(1);
    expectNoRawUserIds(ALICE);
  });

  it('does not fail the record when StartExecution and PutEvents fail after the profile was saved; the outbox waits for a retry', async () => {
    const { handler, store } = await setup();
    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $fault: 'client' }));
    eventBridge.on(PutEventsCommand).rejects(Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailable', $fault: 'server' }));
    await handler(batch(eventRecord('m1', { eventId: 'evt-1', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-01T09:00:00Z' })));

    const response = await handler(
      batch(eventRecord('m2', { eventId: 'evt-2', userId: ALICE, type: 'app.opened', occurredAt: '2026-03-02T09:00:00Z' })),
    );

    // A failed record would be redelivered five times and dead-lettered, though the event is applied.
    expect(response.batchItemFailures).toEqual([]);
    const { profile } = await store.loadUser(ALICE, windowStart(ruleset, new Date(NOW)));
    expect(profile?.tier).toBe('member');
    expect(profile?.outboxRetryAt).toBeDefined();
    expect(profile?.pendingJourney?.start?.tier).toBe('member');
    expect(metricTotals()['OutboxFlushFailures']).toBe(1);
    expect(output.text()).toContain('Outbox flush failed');
    expectNoRawUserIds(ALICE);
  });
});
