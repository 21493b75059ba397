/**
 * The embedded stack's event bus: envelopes in, delivered to every target whose rule pattern matches, using the
 * same patterns (and the same matcher) as the rules the CDK stack deploys.
 */
import { randomUUID } from 'node:crypto';
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { type EventPattern, matchesEventPattern } from '../core/event-pattern.js';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'local';

export interface BusTarget {
  name: string;
  pattern: EventPattern;
  deliver(envelope: EventBridgeEnvelope): Promise<void> | void;
}

export interface LocalBus {
  addTarget(target: BusTarget): void;
  put(envelopes: EventBridgeEnvelope[]): Promise<void>;
  /** For Strata's own publishers: the entries they would send to EventBridge, delivered in process. */
  putEntries(entries: PutEventsRequestEntry[]): Promise<void>;
}

export function entryToEnvelope(entry: PutEventsRequestEntry, now: Date): EventBridgeEnvelope {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': entry.DetailType ?? '',
    source: entry.Source ?? '',
    account: LOCAL_ACCOUNT,
    time: (entry.Time ?? now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: LOCAL_REGION,
    resources: entry.Resources ?? [],
    detail: JSON.parse(entry.Detail ?? '{}') as Record<string, unknown>,
  };
}

export function createLocalBus(clock: { now(): Date }): LocalBus {
  const targets: BusTarget[] = [];
  const put = async (envelopes: EventBridgeEnvelope[]): Promise<void> => {
    for (const envelope of envelopes) {
      for (const target of targets) if (matchesEventPattern(target.pattern, envelope)) await target.deliver(envelope);
    }
  };
  return {
    addTarget: (target) => void targets.push(target),
    put,
    putEntries: (entries) => put(entries.map((entry) => entryToEnvelope(entry, clock.now()))),
  };
}
