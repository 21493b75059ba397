/**
 * An in-process stand-in for the SQS queue between the bus and the ingest function, with the semantics the
 * handler relies on: batches of up to `batchSize`, partial batch failures, redelivery of failed records after a
 * visibility timeout, and a dead-letter sink after `maxReceives` attempts. Delivery is at least once, as in SQS.
 */
import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export interface QueueDeadLetter {
  body: string;
  reason: string;
  eventRef: string;
}

export interface LocalQueueOptions {
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
  onDeadLetter: (letter: QueueDeadLetter) => Promise<void> | void;
  batchSize?: number;
  /** How long a batch may wait to fill up. */
  batchWindowMs?: number;
  /** How long a failed record stays invisible before it is retried. */
  visibilityTimeoutMs?: number;
  maxReceives?: number;
  /** Batches handled at once (Lambda concurrency). */
  concurrency?: number;
}

interface Message {
  messageId: string;
  body: string;
  receiveCount: number;
  visibleAt: number;
}

export interface LocalQueue {
  send(body: string): void;
  /** Resolves when every message sent so far has been handled or dead-lettered. */
  drain(): Promise<void>;
  stats(): { sent: number; handled: number; retried: number; deadLettered: number; inFlight: number };
  close(): Promise<void>;
}

export function createLocalQueue(options: LocalQueueOptions): LocalQueue {
  const batchSize = options.batchSize ?? 10;
  const batchWindowMs = options.batchWindowMs ?? 5;
  const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 200;
  const maxReceives = options.maxReceives ?? 5;
  const concurrency = options.concurrency ?? 4;
  const waiting: Message[] = [];
  let inFlight = 0;
  let running = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const counters = { sent: 0, handled: 0, retried: 0, deadLettered: 0 };
  let drainWaiters: Array<() => void> = [];

  const settleIfIdle = (): void => {
    if (inFlight === 0) {
      const waiters = drainWaiters;
      drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  let timerDue = Infinity;
  const schedule = (delayMs: number): void => {
    if (closed) return;
    const due = Date.now() + delayMs;
    if (timer && timerDue <= due) return;
    if (timer) clearTimeout(timer);
    timerDue = due;
    timer = setTimeout(() => {
      timer = undefined;
      timerDue = Infinity;
      pump();
    }, delayMs);
  };

  const toRecord = (message: Message): SQSRecord =>
    ({
      messageId: message.messageId,
      receiptHandle: message.messageId,
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: '0',
        SenderId: 'strata-local',
        ApproximateFirstReceiveTimestamp: '0',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:local:000000000000:strata-ingest',
      awsRegion: 'local',
    }) as SQSRecord;

  async function handleBatch(batch: Message[]): Promise<void> {
    let failedIds: Set<string>;
    try {
      const response = await options.handler({ Records: batch.map(toRecord) });
      failedIds = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    } catch {
      failedIds = new Set(batch.map((m) => m.messageId)); // a crashed invocation fails the whole batch
    }
    for (const message of batch) {
      if (!failedIds.has(message.messageId)) {
        counters.handled += 1;
        inFlight -= 1;
      } else if (message.receiveCount >= maxReceives) {
        counters.deadLettered += 1;
        await options.onDeadLetter({ body: message.body, reason: `Queue: not processed after ${message.receiveCount} attempts`, eventRef: message.messageId });
        inFlight -= 1;
      } else {
        counters.retried += 1;
        waiting.push({ ...message, visibleAt: Date.now() + visibilityTimeoutMs });
      }
    }
  }

  function pump(): void {
    if (closed) return;
    const now = Date.now();
    while (running < concurrency) {
      const visible = waiting.filter((m) => m.visibleAt <= now);
      if (visible.length === 0) break;
      const batch = visible.slice(0, batchSize);
      for (const message of batch) {
        waiting.splice(waiting.indexOf(message), 1);
        message.receiveCount += 1;
      }
      running += 1;
      void handleBatch(batch).finally(() => {
        running -= 1;
        settleIfIdle();
        pump();
      });
    }
    if (waiting.length > 0) {
      const next = Math.min(...waiting.map((m) => m.visibleAt));
      schedule(Math.max(1, next - Date.now()));
    }
    settleIfIdle();
  }

  return {
    send(body) {
      if (closed) throw new Error('Queue: closed');
      counters.sent += 1;
      inFlight += 1;
      waiting.push({ messageId: randomUUID(), body, receiveCount: 0, visibleAt: 0 });
      schedule(batchWindowMs);
    },
    drain() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => drainWaiters.push(resolve));
    },
    stats: () => ({ ...counters, inFlight }),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      while (running > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    },
  };
}
