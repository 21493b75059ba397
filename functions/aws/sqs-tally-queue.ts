/**
 * The tally queue (core/tally-batches.ts) on an SQS standard queue: one message per tally, its body the tally's
 * encoded line. Standard queues deliver at least once and roughly in order; the nightly count drops duplicates by id.
 *
 * The count receives with long polling (so an empty answer means an empty queue, not a sampled one) and a visibility
 * timeout longer than the review Lambda can run, so that one drain never receives a message twice. A message whose
 * body is not a tally is neither counted nor deleted: after the queue's maxReceiveCount it moves to the dead-letter
 * queue, whose alarm calls an operator.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type ReceivedTally, type TallyQueue, type TallySource, decodeTally, encodeTally } from '../core/tally-batches.js';

/** Longer than the review Lambda's 15 minutes: a drain never sees its own messages again. */
export const TALLY_RECEIVE_VISIBILITY_SECONDS = 16 * 60;
const SQS_BATCH = 10;
/** Long polling asks every server (an empty answer is an empty queue), well within the SDK request timeout. */
const LONG_POLL_SECONDS = 1;

export class TallyQueueError extends Error {
  override readonly name = 'TallyQueueError';
}

export interface SqsTallyQueueOptions {
  client: SQSClient;
  queueUrl: string;
  /** A received message that is not a tally (it is left for the dead-letter queue). */
  onUnreadable?: (messageId: string) => void;
}

export function createSqsTallyQueue(options: SqsTallyQueueOptions): TallyQueue & TallySource {
  const { client, queueUrl } = options;

  /**
   * DeleteMessageBatch and ChangeMessageVisibilityBatch take ten entries and report failures per entry: every batch
   * is sent (a failed entry never holds back the others), then the failures are reported.
   */
  async function inBatches(
    receipts: readonly string[],
    send: (entries: Array<{ Id: string; ReceiptHandle: string }>) => Promise<{ Failed?: Array<{ Id?: string; Message?: string }> }>,
    what: string,
  ): Promise<void> {
    const failed: Array<{ Message?: string }> = [];
    for (let i = 0; i < receipts.length; i += SQS_BATCH) {
      const entries = receipts.slice(i, i + SQS_BATCH).map((receipt, j) => ({ Id: String(j), ReceiptHandle: receipt }));
      failed.push(...((await send(entries)).Failed ?? []));
    }
    if (failed.length > 0)
      throw new TallyQueueError(
        `TallyQueue: could not ${what} ${failed.length} message(s) of ${queueUrl} (${failed[0]?.Message ?? 'no reason given'}); the count step is retried`,
      );
  }

  return {
    async enqueue(tally) {
      await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeTally(tally) }));
    },

    async receive(max) {
      const received: ReceivedTally[] = [];
      while (received.length < max) {
        const { Messages } = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(SQS_BATCH, max - received.length),
            WaitTimeSeconds: LONG_POLL_SECONDS,
            VisibilityTimeout: TALLY_RECEIVE_VISIBILITY_SECONDS,
          }),
        );
        if (!Messages || Messages.length === 0) break;
        for (const message of Messages) {
          const tally = message.Body === undefined ? undefined : decodeTally(message.Body);
          if (tally && message.ReceiptHandle) received.push({ receipt: message.ReceiptHandle, tally });
          else options.onUnreadable?.(message.MessageId ?? 'unknown');
        }
      }
      return received;
    },

    remove(receipts) {
      return inBatches(receipts, (Entries) => client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries })), 'delete');
    },

    release(receipts) {
      return inBatches(
        receipts,
        (Entries) =>
          client.send(
            new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: Entries.map((entry) => ({ ...entry, VisibilityTimeout: 0 })) }),
          ),
        'release',
      );
    },

    async waiting() {
      const { Attributes } = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      return (
        Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) +
        Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0)
      );
    },
  };
}
