/**
 * Publishers on EventBridge PutEvents: tier notices (source `strata.tiers`) and journey actions (source
 * `strata.journeys`) for the delivery channels.
 *
 * PutEvents takes at most 10 entries and can fail some of them while accepting the rest, so each call is checked
 * entry by entry. A partial failure throws a retryable error: the caller (the outbox flush, or a journey Task) is
 * retried as a whole, and consumers recognise a republished entry by its deterministic id.
 */
import { type EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { JourneyAction } from '../core/journey/decide-journey-step.js';
import type { JourneyActionPublisher } from '../core/journey/run-journey-step.js';
import type { ErasurePublisher, UserForgottenNotice } from '../core/operator.js';
import type { NoticePublisher } from '../core/ports.js';
import type { TierNotice } from '../core/state.js';

export const TIER_SOURCE = 'strata.tiers';
export const JOURNEY_SOURCE = 'strata.journeys';
export const JOURNEY_ACTION_DETAIL_TYPE = 'JourneyAction';
/** The PutEvents limit on entries per call. */
export const MAX_ENTRIES_PER_PUT = 10;

/** Some entries were refused (throttled, internal failure, …); the whole publish may be retried. */
export class PublishFailedError extends Error {
  override readonly name = 'PublishFailedError';
  readonly retryable = true;
  constructor(
    readonly failures: Array<{ detailType: string; errorCode: string }>,
    options?: { cause?: unknown },
  ) {
    super(
      `EventBridgePublisher: ${failures.length} entr${failures.length === 1 ? 'y' : 'ies'} not accepted (` +
        failures.map((f) => `${f.detailType}: ${f.errorCode}`).join(', ') +
        ')',
      options,
    );
  }
}

export interface EventBridgePublisherOptions {
  client: EventBridgeClient;
  eventBusName: string;
}

export interface EventBridgePublisher extends NoticePublisher, JourneyActionPublisher, ErasurePublisher {
  publishJourneyActions(actions: JourneyAction[]): Promise<void>;
}

export function noticeEntry(eventBusName: string, notice: TierNotice): PutEventsRequestEntry {
  return {
    EventBusName: eventBusName,
    Source: TIER_SOURCE,
    DetailType: notice.detailType,
    // The raw user id travels in the detail on purpose: the delivery channels need it to reach the person.
    Detail: JSON.stringify(notice),
    Time: new Date(notice.at),
  };
}

/** The erasure notice: same source as tier notices, and only the pseudonymous reference in the detail. */
export function userForgottenEntry(eventBusName: string, notice: UserForgottenNotice): PutEventsRequestEntry {
  return {
    EventBusName: eventBusName,
    Source: TIER_SOURCE,
    DetailType: notice.detailType,
    Detail: JSON.stringify(notice),
    Time: new Date(notice.at),
  };
}

export function journeyActionEntry(eventBusName: string, action: JourneyAction): PutEventsRequestEntry {
  return {
    EventBusName: eventBusName,
    Source: JOURNEY_SOURCE,
    DetailType: JOURNEY_ACTION_DETAIL_TYPE,
    // The action carries the raw user id for the channel that delivers it; its actionId is stable per send.
    Detail: JSON.stringify(action),
    Time: new Date(action.at),
  };
}

export async function putAllEntries(client: EventBridgeClient, entries: PutEventsRequestEntry[]): Promise<void> {
  const failures: Array<{ detailType: string; errorCode: string }> = [];
  for (let start = 0; start < entries.length; start += MAX_ENTRIES_PER_PUT) {
    const batch = entries.slice(start, start + MAX_ENTRIES_PER_PUT);
    let response;
    try {
      response = await client.send(new PutEventsCommand({ Entries: batch }));
    } catch (error) {
      throw new PublishFailedError(
        batch.map((entry) => ({ detailType: entry.DetailType ?? '?', errorCode: (error as Error).name })),
        { cause: error },
      );
    }
    if (!response.FailedEntryCount) continue;
    // Result entries line up with request entries; a failed one carries an ErrorCode instead of an EventId.
    (response.Entries ?? []).forEach((result, i) => {
      if (result.ErrorCode) failures.push({ detailType: batch[i]?.DetailType ?? '?', errorCode: result.ErrorCode });
    });
    if (failures.length === 0) failures.push({ detailType: '?', errorCode: `FailedEntryCount=${response.FailedEntryCount}` });
  }
  if (failures.length > 0) throw new PublishFailedError(failures);
}

export function createEventBridgePublisher(options: EventBridgePublisherOptions): EventBridgePublisher {
  const { client, eventBusName } = options;
  return {
    async publishNotices(notices: TierNotice[]): Promise<void> {
      await putAllEntries(
        client,
        notices.map((notice) => noticeEntry(eventBusName, notice)),
      );
    },
    async publishJourneyActions(actions: JourneyAction[]): Promise<void> {
      await putAllEntries(
        client,
        actions.map((action) => journeyActionEntry(eventBusName, action)),
      );
    },
    async publishJourneyAction(action: JourneyAction): Promise<void> {
      await putAllEntries(client, [journeyActionEntry(eventBusName, action)]);
    },
    async publishUserForgotten(notice: UserForgottenNotice): Promise<void> {
      await putAllEntries(client, [userForgottenEntry(eventBusName, notice)]);
    },
  };
}
