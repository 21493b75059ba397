/**
 * An in-process stand-in for the SQS queue between the bus and the ingest function, with the semantics the
 * handler relies on: batches of up to `batchSize`, partial batch failures, redelivery of failed records after a
 * visibility timeout, and a dead-letter sink after `maxReceives` attempts. Delivery is at least once, as in SQS.
 *
 * With a durable log (see ingest-log.ts) the queue is fed from the data folder: `send` resolves once the messages
 * are fsync'd, a message leaves the log only when it is handled or dead-lettered, and whatever the log still holds
 * when the queue is created (the backlog of a stopped or crashed run) is delivered first.
 */
import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { IngestLog } from './ingest-log.js';

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
  /**
   * Batches handled at once (Lambda concurrency): the knob for the applied rate. More batches at once overlap
   * their DynamoDB round trips; events of one user in different batches then race, which the store's version
   * condition resolves by retrying.
   */
  concurrency?: number;
  /** Makes the queue durable: messages are written here before `send` resolves, and replayed from it. */
  log?: IngestLog;
}

interface Message {
  messageId: string;
  body: string;
  receiveCount: number;
  visibleAt: number;
}

export interface LocalQueueStats {
  sent: number;
  handled: number;
  retried: number;
  deadLettered: number;
  /** Messages sent (or replayed) and not yet handled or dead-lettered: the backlog. */
  inFlight: number;
  /** Messages found in the durable log at start, from an earlier run. */
  replayed: number;
}

export interface LocalQueue {
  /** Enqueues messages; with a durable log, resolves only once they are on disk. `id` defaults to a new UUID. */
  send(messages: Array<{ body: string; id?: string }>): Promise<void>;
  /** Resolves when every message sent so far has been handled or dead-lettered. */
  drain(): Promise<void>;
  stats(): LocalQueueStats;
  /** Stops taking batches, waits for the running ones, and resolves with how many messages are left for next time. */
  close(): Promise<{ remaining: number }>;
}

export class QueueClosedError extends Error {
  override readonly name = 'QueueClosedError';
  constructor() {
    super('Queue: closed; the stack is stopping, so nothing more is accepted');
  }
}

export function createLocalQueue(options: LocalQueueOptions): LocalQueue {
  const batchSize = options.batchSize ?? 10;
  const batchWindowMs = options.batchWindowMs ?? 5;
  const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 200;
  const maxReceives = options.maxReceives ?? 5;
  const concurrency = options.concurrency ?? 4;
  const { log } = options;
  /** First deliveries, oldest first; `head` avoids shifting a long array. */
  let fresh: Message[] = [];
  let head = 0;
  /** Failed records waiting out their visibility timeout. */
  let retries: Message[] = [];
  let inFlight = 0;
  let running = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const counters = { sent: 0, handled: 0, retried: 0, deadLettered: 0, replayed: 0 };
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

  const settle = (message: Message): void => {
    inFlight -= 1;
    log?.markDone(message.messageId);
  };

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
        settle(message);
      } else if (message.receiveCount >= maxReceives) {
        counters.deadLettered += 1;
        await options.onDeadLetter({
          body: message.body,
          reason: `Queue: not processed after ${message.receiveCount} attempts (the ingest log shows each failure)`,
          eventRef: eventIdIn(message.body) ?? message.messageId,
        });
        settle(message);
      } else {
        counters.retried += 1;
        retries.push({ ...message, visibleAt: Date.now() + visibilityTimeoutMs });
      }
    }
  }

  function takeBatch(now: number): Message[] {
    const batch: Message[] = [];
    if (retries.length > 0) {
      const due = retries.filter((m) => m.visibleAt <= now).slice(0, batchSize);
      if (due.length > 0) retries = retries.filter((m) => !due.includes(m));
      batch.push(...due);
    }
    while (batch.length < batchSize && head < fresh.length) batch.push(fresh[head++]!);
    if (head > 1024 && head * 2 > fresh.length) {
      fresh = fresh.slice(head);
      head = 0;
    }
    return batch;
  }

  function pump(): void {
    if (closed) return;
    const now = Date.now();
    while (running < concurrency) {
      const batch = takeBatch(now);
      if (batch.length === 0) break;
      for (const message of batch) message.receiveCount += 1;
      running += 1;
      void handleBatch(batch).finally(() => {
        running -= 1;
        settleIfIdle();
        pump();
      });
    }
    // Fresh messages left over wait for a running batch to finish, which pumps again; retries wait for their time.
    if (running < concurrency && retries.length > 0) schedule(Math.max(1, Math.min(...retries.map((m) => m.visibleAt)) - now));
    settleIfIdle();
  }

  const enqueue = (messages: Array<{ id: string; body: string }>): void => {
    for (const { id, body } of messages) fresh.push({ messageId: id, body, receiveCount: 0, visibleAt: 0 });
    inFlight += messages.length;
    schedule(batchWindowMs);
  };

  if (log && log.replay.length > 0) {
    counters.replayed = log.replay.length;
    enqueue(log.replay);
  }

  return {
    async send(messages) {
      if (closed) throw new QueueClosedError();
      const identified = messages.map((message) => ({ id: message.id ?? randomUUID(), body: message.body }));
      if (log) await log.append(identified);
      if (closed) return; // on disk: the next start delivers them
      counters.sent += identified.length;
      enqueue(identified);
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
      // Without a log, what is still waiting is dropped, as in an in-memory simulation it should be.
      return { remaining: log ? await log.close() : inFlight };
    },
  };
}

/** The event id inside an EventBridge envelope's detail, for a dead letter's reference. */
function eventIdIn(body: string): string | undefined {
  try {
    const eventId = (JSON.parse(body) as { detail?: { eventId?: unknown } }).detail?.eventId;
    return typeof eventId === 'string' && eventId !== '' ? eventId.slice(0, 128) : undefined;
  } catch {
    return undefined;
  }
}
