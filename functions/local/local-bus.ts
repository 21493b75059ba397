/**
 * The embedded stack's event bus: envelopes in, delivered to every target whose rule pattern matches, using the
 * same patterns (and the same matcher) as the rules the CDK stack deploys.
 */
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { type EventPattern, matchesEventPattern } from '../core/event-pattern.js';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';
import { DEFAULT_ACCOUNT_ID, DEFAULT_REGION, type EnvelopeParts, buildEnvelope } from './put-events-endpoint.js';

const LOCAL_BUS_IDENTITY = { accountId: DEFAULT_ACCOUNT_ID, region: DEFAULT_REGION };

export interface BusTarget {
  name: string;
  pattern: EventPattern;
  deliver(envelope: EventBridgeEnvelope): Promise<void> | void;
  /** When present, a put's matching envelopes arrive in one call (the ingest queue writes them with one fsync). */
  deliverBatch?(envelopes: EventBridgeEnvelope[]): Promise<void>;
}

export interface LocalBus {
  addTarget(target: BusTarget): void;
  put(envelopes: EventBridgeEnvelope[]): Promise<void>;
  /** For Strata's own publishers: the entries they would send to EventBridge, delivered in process. */
  putEntries(entries: PutEventsRequestEntry[]): Promise<void>;
}

/** Strata's own entries (notices, JourneyActions) as the envelopes EventBridge would deliver. */
export function entryToEnvelope(entry: PutEventsRequestEntry, now: Date): EventBridgeEnvelope {
  return localEnvelope({
    source: entry.Source ?? '',
    detailType: entry.DetailType ?? '',
    detail: JSON.parse(entry.Detail ?? '{}') as Record<string, unknown>,
    time: entry.Time ?? now,
    resources: entry.Resources ?? [],
  });
}

export function localEnvelope(parts: EnvelopeParts): EventBridgeEnvelope {
  return buildEnvelope(parts, LOCAL_BUS_IDENTITY);
}

export function createLocalBus(clock: { now(): Date }): LocalBus {
  const targets: BusTarget[] = [];
  const put = async (envelopes: EventBridgeEnvelope[]): Promise<void> => {
    for (const target of targets) {
      const matching = envelopes.filter((envelope) => matchesEventPattern(target.pattern, envelope));
      if (matching.length === 0) continue;
      if (target.deliverBatch) await target.deliverBatch(matching);
      else for (const envelope of matching) await target.deliver(envelope);
    }
  };
  return {
    addTarget: (target) => void targets.push(target),
    put,
    putEntries: (entries) => put(entries.map((entry) => entryToEnvelope(entry, clock.now()))),
  };
}
