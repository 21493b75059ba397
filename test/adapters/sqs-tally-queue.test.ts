/**
 * The tally queue on SQS (functions/aws/sqs-tally-queue.ts), through the real SDK client with its requests answered
 * by a small model of an SQS standard queue (SQS itself cannot run embedded): the nightly count through it stores
 * exactly what the count through the local queue file stores, for the same tallies, duplicates and a failed delete
 * included; it long-polls, hides what it received past the review's run, and leaves a message that is no tally for
 * the dead-letter queue.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityBatchCommand,
  type ChangeMessageVisibilityBatchCommandInput,
  DeleteMessageBatchCommand,
  type DeleteMessageBatchCommandInput,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  SQSClient,
  SendMessageCommand,
  type SendMessageCommandInput,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countLeaseAt } from '../helpers/count-lease.js';
import { createDynamoCounters } from '../../functions/aws/dynamo-counters.js';
import { TALLY_RECEIVE_VISIBILITY_SECONDS, TallyQueueError, createSqsTallyQueue } from '../../functions/aws/sqs-tally-queue.js';
import { COUNTER_NAMES, type ExecutionTally } from '../../functions/core/analytics.js';
import { type TallyQueue, type TallySource, countTallies } from '../../functions/core/tally-batches.js';
import { openLocalTallyQueue } from '../../functions/local/local-tally-queue.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';

const dynalite = useDynalite();
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/strata-tallies';
const client = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 't', secretAccessKey: 't' } });
const sqs = mockClient(client);

interface ModelMessage {
  id: string;
  body: string;
  receipt?: string;
  visibleAt: number;
  receives: number;
}

/** An SQS standard queue as far as the adapter uses it: visibility timeouts, receipt handles, batch deletes. */
function sqsModel(options: { failDeletes?: number } = {}) {
  const messages: ModelMessage[] = [];
  let next = 0;
  let now = 0;
  let failDeletes = options.failDeletes ?? 0;
  sqs.on(SendMessageCommand).callsFake((input: SendMessageCommandInput) => {
    messages.push({ id: `m${next++}`, body: input.MessageBody!, visibleAt: 0, receives: 0 });
    return { MessageId: messages.at(-1)!.id };
  });
  sqs.on(ReceiveMessageCommand).callsFake((input: ReceiveMessageCommandInput) => {
    const visible = messages.filter((message) => message.visibleAt <= now).slice(0, input.MaxNumberOfMessages ?? 1);
    for (const message of visible) {
      message.receipt = `r${next++}`;
      message.receives += 1;
      message.visibleAt = now + (input.VisibilityTimeout ?? 30) * 1000;
    }
    return { Messages: visible.map((message) => ({ MessageId: message.id, ReceiptHandle: message.receipt, Body: message.body })) };
  });
  sqs.on(DeleteMessageBatchCommand).callsFake((input: DeleteMessageBatchCommandInput) => {
    if (failDeletes-- > 0)
      return {
        Successful: [],
        Failed: input.Entries!.map((entry) => ({ Id: entry.Id, SenderFault: false, Code: 'InternalError', Message: 'try again' })),
      };
    for (const entry of input.Entries!) {
      const at = messages.findIndex((message) => message.receipt === entry.ReceiptHandle);
      if (at >= 0) messages.splice(at, 1);
    }
    return { Successful: input.Entries!.map((entry) => ({ Id: entry.Id })), Failed: [] };
  });
  sqs.on(ChangeMessageVisibilityBatchCommand).callsFake((input: ChangeMessageVisibilityBatchCommandInput) => {
    for (const entry of input.Entries!) {
      const message = messages.find((candidate) => candidate.receipt === entry.ReceiptHandle);
      if (message) message.visibleAt = now + (entry.VisibilityTimeout ?? 0) * 1000;
    }
    return { Successful: input.Entries!.map((entry) => ({ Id: entry.Id })), Failed: [] };
  });
  sqs.on(GetQueueAttributesCommand).callsFake(() => ({
    Attributes: {
      ApproximateNumberOfMessages: String(messages.filter((message) => message.visibleAt <= now).length),
      ApproximateNumberOfMessagesNotVisible: String(messages.filter((message) => message.visibleAt > now).length),
      ApproximateNumberOfMessagesDelayed: '0',
    },
  }));
  return {
    messages,
    /** Time passes: received messages become visible again once their timeout has run out. */
    advance(ms: number) {
      now += ms;
    },
  };
}

const sent = COUNTER_NAMES.sent('intro');
const tally = (execution: number, sends: number, date = '2026-04-01'): ExecutionTally => ({
  id: `j${execution}`,
  journeyId: 'visitor-welcome',
  date,
  counts: { [sent]: sends, [COUNTER_NAMES.exited('intro', 'converted')]: 1 },
});
/** Executions 0–29, some enqueued twice, and execution 3 twice with different counts (a stop racing the final Task). */
const ENQUEUED: ExecutionTally[] = [
  ...Array.from({ length: 30 }, (_, i) => tally(i, 1 + (i % 3), i % 2 === 0 ? '2026-04-01' : '2026-03-31')),
  tally(4, 2),
  tally(3, 9),
  ...Array.from({ length: 10 }, (_, i) => tally(i * 3, 1 + ((i * 3) % 3), (i * 3) % 2 === 0 ? '2026-04-01' : '2026-03-31')),
];

let dataDir: string;
beforeEach(async () => {
  sqs.reset();
  dataDir = await mkdtemp(join(tmpdir(), 'strata-sqs-tally-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Enqueues ENQUEUED, counts it on 2026-04-01 (and retries a failed count, as the state machine does), and reads back. */
async function countThrough(queue: TallyQueue & TallySource) {
  const tableName = await dynalite.freshTable();
  const batches = createDynamoCounters({ client: dynalite.client, tableName });
  for (const queued of ENQUEUED) await queue.enqueue(queued);
  let failures = 0;
  for (;;) {
    try {
      await countTallies(
        { source: queue, batches },
        { drainDate: '2026-04-01', lease: countLeaseAt('test-review', new Date('2026-04-01T02:00:00Z')), hasTimeLeft: () => true, roundSize: 10 },
      );
      break;
    } catch (error) {
      if (!(error instanceof TallyQueueError) || ++failures > 3) throw error;
    }
  }
  return { failures, days: await batches.readJourneyDays('visitor-welcome', '2026-03-31'), waiting: await queue.waiting() };
}

describe('the tally queue on SQS', () => {
  it('counts exactly what the local queue file counts, through duplicates, a conflicting version and a failed delete', async () => {
    const model = sqsModel({ failDeletes: 1 });
    const onSqs = await countThrough(createSqsTallyQueue({ client, queueUrl: QUEUE_URL }));
    const local = await openLocalTallyQueue(dataDir);
    const onFile = await countThrough(local);
    await local.close();
    expect(onSqs.failures).toBe(1);
    expect(onSqs.waiting).toBe(0);
    expect(model.messages).toEqual([]);
    expect(onSqs.days).toEqual(onFile.days);
    // And both are the first tally of each execution, summed by entry date.
    const firsts = new Map<string, ExecutionTally>();
    for (const queued of ENQUEUED) if (!firsts.has(queued.id)) firsts.set(queued.id, queued);
    const expected: Record<string, number> = {};
    for (const first of firsts.values()) expected[first.date] = (expected[first.date] ?? 0) + first.counts[sent]!;
    expect(Object.fromEntries(onSqs.days.map((day) => [day.date, day.counts[sent]]))).toEqual(expected);
  });

  it('long-polls, hides what it received past the review Lambda, and releases what a failed count received', async () => {
    const model = sqsModel();
    const queue = createSqsTallyQueue({ client, queueUrl: QUEUE_URL });
    for (let i = 0; i < 15; i++) await queue.enqueue(tally(i, 1));
    const received = await queue.receive(12);
    expect(received).toHaveLength(12);
    const receives = sqs.commandCalls(ReceiveMessageCommand).map((call) => call.args[0].input);
    expect(receives.map((input) => input.MaxNumberOfMessages)).toEqual([10, 2]);
    for (const input of receives) {
      expect(input.WaitTimeSeconds).toBeGreaterThanOrEqual(1);
      expect(input.VisibilityTimeout).toBe(TALLY_RECEIVE_VISIBILITY_SECONDS);
    }
    expect(TALLY_RECEIVE_VISIBILITY_SECONDS).toBeGreaterThan(15 * 60);
    // Not received twice by the same drain, even when it lasts as long as a Lambda can.
    model.advance(15 * 60 * 1000);
    expect((await queue.receive(20)).map((r) => r.tally.id)).toEqual(['j12', 'j13', 'j14']);
    await queue.release(received.slice(0, 2).map((r) => r.receipt));
    expect((await queue.receive(20)).map((r) => r.tally.id)).toEqual(['j0', 'j1']);
    expect(await queue.waiting()).toBe(15);
  });

  it('neither counts nor deletes a message that is no tally: it goes to the dead-letter queue after its receives', async () => {
    const model = sqsModel();
    const unreadable: string[] = [];
    const queue = createSqsTallyQueue({ client, queueUrl: QUEUE_URL, onUnreadable: (id) => unreadable.push(id) });
    await queue.enqueue(tally(1, 1));
    await client.send(new SendMessageCommand({ QueueUrl: QUEUE_URL, MessageBody: '{"not":"a tally"}' }));
    const tableName = await dynalite.freshTable();
    const result = await countTallies(
      { source: queue, batches: createDynamoCounters({ client: dynalite.client, tableName }) },
      { drainDate: '2026-04-01', lease: countLeaseAt('test-review', new Date('2026-04-01T02:00:00Z')), hasTimeLeft: () => true },
    );
    expect(result).toMatchObject({ received: 1, counted: 1, done: true });
    expect(unreadable).toEqual(['m1']);
    expect(model.messages.map((message) => [message.body, message.receives])).toEqual([['{"not":"a tally"}', 1]]);
  });
});
