/**
 * The ingest Lambda: SQS (filled by an EventBridge rule) → parse → ingestEvent → adapters.
 *
 * Each record is settled on its own (partial batch response):
 * - a poison message (not an EventBridge envelope, an event that fails validation, or one the core or the store
 *   refuses for its content, such as `amount: "999"`) goes to the dead-letter queue with its reason and event id
 *   and counts as done, so it never blocks or retries the batch;
 * - any other failure (throttling that outlasted the SDK's own retries, a version conflict storm, a bus outage)
 *   fails only that record, and SQS redelivers it; the core makes the redelivery safe.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type DeadLetterSender, createSqsDeadLetterSender } from '../aws/sqs-dead-letter.js';
import { InvalidEventError } from '../core/errors.js';
import { type EventTimeBounds, type UserEvent, parseUserEvent } from '../core/event.js';
import { userRef } from '../core/hash.js';
import { type TierServices, ingestEvent } from '../core/ingest.js';
import {
  ENV,
  HandlerOutsideBundleError,
  bakedProjectFiles,
  createHandlerMetrics,
  createSqsClient,
  loadRulesetOrFail,
  optionalPositiveNumberEnv,
  redactUserId,
  requireEnv,
} from './runtime.js';
import { tierServicesFromEnvironment } from './tier-services.js';

export const INGEST_SERVICE_NAME = 'strata-ingest';
export const METRICS_NAMESPACE = 'Strata';

export interface IngestDependencies {
  services: TierServices;
  deadLetters: DeadLetterSender;
  logger?: Logger;
  metrics?: Metrics;
  /** How far ahead of the clock an event may be stamped; the core's default (one day) when absent. */
  maxEventFutureMs?: number;
}

export type IngestHandler = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;

/** Why a message can never be applied, and the reference to log and attach (an event id, never a user id). */
export interface PoisonMessage {
  reason: string;
  eventRef: string;
  /** The user id, when the broken event had one: only so that it can be kept out of the log line. */
  userId?: string;
}

/**
 * Reads the user event out of an SQS body holding an EventBridge envelope. The event is `detail`; producers may
 * leave its `type` out and let the envelope's `detail-type` name it.
 */
export function readUserEvent(body: string, messageId: string, timeBounds?: EventTimeBounds): { event: UserEvent } | { poison: PoisonMessage } {
  let envelope: unknown;
  try {
    envelope = JSON.parse(body);
  } catch (error) {
    return { poison: { reason: `Ingest: the message body is not JSON (${(error as Error).message})`, eventRef: messageId } };
  }
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) {
    return { poison: { reason: 'Ingest: the message body is not an EventBridge event (expected an object with "detail")', eventRef: messageId } };
  }
  const { detail, 'detail-type': detailType } = envelope as { detail?: unknown; 'detail-type'?: unknown };
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) {
    return { poison: { reason: 'Ingest: /detail is missing or not an object; it must hold the user event', eventRef: messageId } };
  }
  const candidate = { ...(detail as Record<string, unknown>) };
  if (candidate['type'] === undefined && typeof detailType === 'string') candidate['type'] = detailType;
  try {
    return { event: parseUserEvent(candidate, messageId, timeBounds) };
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    const userId = typeof candidate['userId'] === 'string' && candidate['userId'] !== '' ? candidate['userId'] : undefined;
    return { poison: { reason: error.message, eventRef: error.eventRef, ...(userId ? { userId } : {}) } };
  }
}

interface IngestTally {
  ingested: number;
  duplicates: number;
  tierChanges: number;
  poison: number;
  outboxFailures: number;
}

export function createIngestHandler(dependencies: IngestDependencies): IngestHandler {
  const { services, deadLetters } = dependencies;
  const logger = dependencies.logger ?? new Logger({ serviceName: INGEST_SERVICE_NAME });
  const metrics = dependencies.metrics ?? new Metrics({ namespace: METRICS_NAMESPACE, serviceName: INGEST_SERVICE_NAME });

  async function deadLetter(record: SQSRecord, poison: PoisonMessage, tally: IngestTally): Promise<void> {
    const { reason, eventRef, userId } = poison;
    await deadLetters.sendToDeadLetter({ body: record.body, reason, eventRef });
    tally.poison += 1;
    const ref = userId ? userRef(userId) : undefined;
    logger.warn('Poison event sent to the dead-letter queue', {
      eventRef: ref ? redactUserId(eventRef, userId, ref) : eventRef,
      reason: ref ? redactUserId(reason, userId, ref) : reason,
      ...(ref ? { userRef: ref } : {}),
    });
  }

  async function processRecord(record: SQSRecord, tally: IngestTally): Promise<void> {
    const timeBounds: EventTimeBounds = {
      now: services.clock.now(),
      ...(dependencies.maxEventFutureMs !== undefined ? { maxFutureMs: dependencies.maxEventFutureMs } : {}),
    };
    const read = readUserEvent(record.body, record.messageId, timeBounds);
    if ('poison' in read) return deadLetter(record, read.poison, tally);
    const { event } = read;
    const ref = userRef(event.userId);
    // Producers sometimes build event ids from user ids; the log line keeps the ref instead.
    const eventRef = redactUserId(event.eventId, event.userId, ref);
    try {
      const result = await ingestEvent(services, event);
      tally.ingested += 1;
      if (result.duplicate) tally.duplicates += 1;
      if (result.outboxError !== undefined) {
        // The event is applied and the profile saved; failing the record would dead-letter it. The outbox is retried.
        tally.outboxFailures += 1;
        const cause = result.outboxError as Error;
        logger.warn('Outbox flush failed; the next event or the nightly review retries it', {
          userRef: ref,
          eventRef,
          errorName: cause?.name,
          errorMessage: redactUserId(String(cause?.message ?? cause), event.userId, ref),
        });
      }
      if (result.decision?.tierChanged) {
        tally.tierChanges += 1;
        logger.info('Tier changed', { userRef: ref, eventRef, toTier: result.profile?.tier });
      }
    } catch (error) {
      // Retrying cannot change the event's content: send it to the DLQ now, with the reason, not after 5 receives.
      const refused = contentRefusal(error);
      if (refused) return deadLetter(record, { reason: refused, eventRef: event.eventId, userId: event.userId }, tally);
      const err = error as Error;
      logger.error('Event failed; SQS will redeliver it', {
        userRef: ref,
        eventRef,
        errorName: err.name,
        errorMessage: redactUserId(err.message, event.userId, ref),
      });
      throw new IngestRecordError(eventRef, { cause: error });
    }
  }

  return async (event, context) => {
    // One processor per invocation: it keeps the batch's outcomes, and the embedded stack may run batches at once.
    const processor = new BatchProcessor(EventType.SQS);
    if (context) logger.addContext(context);
    const tally: IngestTally = { ingested: 0, duplicates: 0, tierChanges: 0, poison: 0, outboxFailures: 0 };
    try {
      return await processPartialResponse(event, (record: SQSRecord) => processRecord(record, tally), processor, {
        ...(context ? { context } : {}),
        // A batch where every record failed is still a partial response: SQS redelivers exactly those.
        throwOnFullBatchFailure: false,
      });
    } finally {
      metrics.addMetric('EventsIngested', MetricUnit.Count, tally.ingested);
      metrics.addMetric('DuplicateEvents', MetricUnit.Count, tally.duplicates);
      metrics.addMetric('TierChanges', MetricUnit.Count, tally.tierChanges);
      metrics.addMetric('PoisonEvents', MetricUnit.Count, tally.poison);
      metrics.addMetric('OutboxFlushFailures', MetricUnit.Count, tally.outboxFailures);
      metrics.publishStoredMetrics();
    }
  };
}

/**
 * The reason an event can never be applied, when a failure is about the event's content: an InvalidEventError
 * from the core (a property of the wrong type for a metric or attribute), or DynamoDB refusing a value
 * (ValidationException, for example a sum beyond its number range). Anything else (throttling, conflicts, an
 * outage, a missing table or permission) is left to SQS redelivery. Looks through `cause` chains.
 */
export function contentRefusal(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if (current instanceof InvalidEventError) return current.message;
    if (current.name === 'ValidationException') return `Ingest: DynamoDB refused the event's values: ${current.message}`;
  }
  return undefined;
}

/** One record failed for a reason worth retrying; only that record is reported to SQS. */
export class IngestRecordError extends Error {
  override readonly name = 'IngestRecordError';
  constructor(eventRef: string, options?: { cause?: unknown }) {
    super(`Ingest: event ${eventRef} failed and will be redelivered`, options);
  }
}

/** The production wiring, built once per cold start from the env and the baked-in ruleset. */
export function ingestDependenciesFromEnvironment(files = bakedProjectFiles()): IngestDependencies {
  if (!files) throw new HandlerOutsideBundleError('ingest', 'createIngestHandler');
  const ruleset = loadRulesetOrFail(files);
  const deadLetterQueueUrl = requireEnv(ENV.deadLetterQueueUrl, 'the dead-letter queue for poison events');
  const maxFutureHours = optionalPositiveNumberEnv(ENV.maxEventFutureHours, 'how many hours ahead of now an event may be stamped');
  return {
    ...(maxFutureHours !== undefined ? { maxEventFutureMs: maxFutureHours * 3_600_000 } : {}),
    services: tierServicesFromEnvironment(ruleset).services,
    deadLetters: createSqsDeadLetterSender({ client: createSqsClient(), queueUrl: deadLetterQueueUrl }),
    metrics: createHandlerMetrics(INGEST_SERVICE_NAME),
  };
}

/** The Lambda entry point. Outside a bundle it only explains itself, so importing this module stays harmless. */
export const handler: IngestHandler = bakedProjectFiles()
  ? createIngestHandler(ingestDependenciesFromEnvironment())
  : () => Promise.reject(new HandlerOutsideBundleError('ingest', 'createIngestHandler'));
