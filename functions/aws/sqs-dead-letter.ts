/**
 * The dead-letter sender: a message that can never be applied (a poison message) goes to the dead-letter queue
 * with its original body and the reason, so that an operator can read why, fix the producer and redrive it.
 */
import { type SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';

/** SQS message attribute values are limited in size; a reason longer than this is cut, with a marker. */
export const MAX_REASON_LENGTH = 4_000;

export interface DeadLetter {
  /** The message body exactly as it arrived. */
  body: string;
  /** Why it can never be applied, with the JSON pointers of the problems. */
  reason: string;
  /** The event id when it could be read, else the SQS message id: never a user id. */
  eventRef: string;
}

export interface DeadLetterSender {
  sendToDeadLetter(letter: DeadLetter): Promise<void>;
}

export class DeadLetterSendError extends Error {
  override readonly name = 'DeadLetterSendError';
  constructor(eventRef: string, options?: { cause?: unknown }) {
    super(`DeadLetter: cannot send ${eventRef} to the dead-letter queue; the message stays on its queue and is retried`, options);
  }
}

export function truncateReason(reason: string): string {
  return reason.length <= MAX_REASON_LENGTH ? reason : reason.slice(0, MAX_REASON_LENGTH - 1) + '…';
}

export function createSqsDeadLetterSender(options: { client: SQSClient; queueUrl: string }): DeadLetterSender {
  const { client, queueUrl } = options;
  return {
    async sendToDeadLetter(letter: DeadLetter): Promise<void> {
      try {
        await client.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: letter.body,
            MessageAttributes: {
              reason: { DataType: 'String', StringValue: truncateReason(letter.reason) },
              eventRef: { DataType: 'String', StringValue: letter.eventRef || 'unknown' },
            },
          }),
        );
      } catch (error) {
        throw new DeadLetterSendError(letter.eventRef, { cause: error });
      }
    },
  };
}
