/**
 * Delivers JourneyActions to the channels' HTTP endpoints on one machine, as the deployed EventBridge API
 * destinations do: the same rendered body (core/channels.ts), the channel's rate limit (retries included), and
 * retries with exponential backoff on network errors, 429 and 5xx, until the retry policy's attempts or age run
 * out; then the action becomes a delivery dead letter. Other 4xx answers are not retried (EventBridge does not
 * either): the request itself is wrong.
 *
 * Secrets come from the environment variables channels.json names; a missing one fails the start, not a send.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChannelConfig, type ChannelDefinition, actionTemplateValues, renderChannelBody } from '../core/channels.js';
import type { JourneyAction } from '../core/journey/decide-journey-step.js';

/** Marks a `strata send-test` request, so a provider (or its sandbox) can tell it from a real send. */
export const TEST_SEND_HEADER = 'X-Strata-Test';
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 60_000;

export type DeliveryStatus = 'delivered' | 'retrying' | 'dead-letter';

export interface DeliveryRecord {
  status: DeliveryStatus;
  channel: string;
  actionId: string;
  userId: string;
  stepId: string;
  attempt: number;
  /** The endpoint's answer, when there was one. */
  httpStatus?: number;
  /** Why the attempt failed: the answer's first bytes, or the network error. */
  reason?: string;
  /** For retrying: the wait before the next attempt. */
  retryInMs?: number;
  /** For dead letters: the action, to send again by hand. */
  action?: JourneyAction;
}

export class MissingChannelSecretError extends Error {
  override readonly name = 'MissingChannelSecretError';
  constructor(readonly missing: Array<{ channel: string; env: string }>) {
    super(
      `Channel delivery: ${missing.map((m) => `channel "${m.channel}" needs the environment variable ${m.env}`).join('; ')}; ` +
        'set it in the shell that runs strata (the secret stays out of channels.json and git)',
    );
  }
}

export interface ChannelDeliveryOptions {
  channels: ChannelConfig;
  /** Where the secrets are read: normally process.env. */
  env: Readonly<Record<string, string | undefined>>;
  onDelivery?: (record: DeliveryRecord) => void | Promise<void>;
  /** The first retry's wait; each next one doubles. */
  backoffBaseMs?: number;
}

export interface ChannelDelivery {
  /** True when the channel has an endpoint; other channels only log. */
  delivers(channel: string): boolean;
  /** Resolves when the action is delivered or dead-lettered (or delivery stopped); 'logged' for a channel without endpoint. */
  deliver(action: JourneyAction): Promise<DeliveryStatus | 'logged' | 'stopped'>;
  /** Stops waiting retries; resolves with how many actions were still undelivered. */
  close(): Promise<number>;
}

interface PreparedChannel {
  name: string;
  definition: ChannelDefinition & { endpoint: string };
  url: string;
  headers: Record<string, string>;
  /** The earliest wall time (ms) the next request may start: the rate limit. */
  nextSlotAt: number;
}

function prepareChannel(name: string, definition: ChannelDefinition & { endpoint: string }, secret: string | undefined): PreparedChannel {
  const url = new URL(definition.endpoint);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = definition.auth;
  if (auth && secret !== undefined) {
    switch (auth.type) {
      case 'api-key':
        headers[auth.header.toLowerCase()] = secret;
        break;
      case 'basic':
        headers['authorization'] = 'Basic ' + Buffer.from(`${auth.username}:${secret}`).toString('base64');
        break;
      case 'query-key':
        url.searchParams.set(auth.parameter, secret);
        break;
    }
  }
  return { name, definition, url: url.toString(), headers, nextSlotAt: 0 };
}

function isRetryable(status: number | undefined): boolean {
  return status === undefined || status === 429 || status >= 500;
}

export function createChannelDelivery(options: ChannelDeliveryOptions): ChannelDelivery {
  const backoffBaseMs = options.backoffBaseMs ?? 1000;
  const missing: Array<{ channel: string; env: string }> = [];
  const prepared = new Map<string, PreparedChannel>();
  for (const [name, definition] of Object.entries(options.channels.channels)) {
    if (definition.endpoint === undefined) continue;
    const secret = definition.auth ? options.env[definition.auth.secret.env] : undefined;
    if (definition.auth && !secret) missing.push({ channel: name, env: definition.auth.secret.env });
    prepared.set(name, prepareChannel(name, { ...definition, endpoint: definition.endpoint }, secret));
  }
  if (missing.length > 0) throw new MissingChannelSecretError(missing);

  const stopping = new AbortController();
  const pending = new Set<Promise<unknown>>();
  const report = async (record: DeliveryRecord): Promise<void> => {
    await options.onDelivery?.(record);
  };

  /** Waits for the channel's next free slot; a retry takes a slot like any request, as on an API destination. */
  async function takeSlot(channel: PreparedChannel): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, channel.nextSlotAt);
    channel.nextSlotAt = slot + 1000 / channel.definition.rateLimitPerSecond;
    if (slot > now) await sleep(slot - now, undefined, { signal: stopping.signal });
  }

  async function attempt(channel: PreparedChannel, action: JourneyAction, body: string): Promise<{ status?: number; reason?: string }> {
    const headers = action.test ? { ...channel.headers, [TEST_SEND_HEADER.toLowerCase()]: 'true' } : channel.headers;
    try {
      const response = await fetch(channel.url, {
        method: channel.definition.method,
        headers,
        body,
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      const text = response.ok ? '' : (await response.text()).slice(0, 200);
      if (response.ok) await response.body?.cancel();
      return { status: response.status, ...(response.ok ? {} : { reason: text || response.statusText }) };
    } catch (error) {
      return { reason: (error as Error).message };
    }
  }

  async function run(channel: PreparedChannel, action: JourneyAction): Promise<DeliveryStatus | 'stopped'> {
    const template = channel.definition.body;
    const body = JSON.stringify(template === undefined ? action : renderChannelBody(template, actionTemplateValues(action)));
    const { attempts: retries, maxAgeSeconds } = channel.definition.retry;
    const firstAt = Date.now();
    const base = { channel: channel.name, actionId: action.actionId, userId: action.userId, stepId: action.stepId };
    for (let number = 1; ; number++) {
      try {
        await takeSlot(channel);
      } catch {
        return 'stopped';
      }
      if (stopping.signal.aborted) return 'stopped';
      const result = await attempt(channel, action, body);
      const answered = result.status !== undefined ? { httpStatus: result.status } : {};
      if (result.status !== undefined && result.status < 300) {
        await report({ ...base, status: 'delivered', attempt: number, ...answered });
        return 'delivered';
      }
      if (stopping.signal.aborted) return 'stopped';
      const wait = Math.min(MAX_BACKOFF_MS, backoffBaseMs * 2 ** (number - 1));
      const tooOld = Date.now() + wait - firstAt > maxAgeSeconds * 1000;
      if (!isRetryable(result.status) || number > retries || tooOld) {
        await report({ ...base, status: 'dead-letter', attempt: number, ...answered, reason: result.reason ?? 'failed', action });
        return 'dead-letter';
      }
      await report({ ...base, status: 'retrying', attempt: number, ...answered, reason: result.reason ?? 'failed', retryInMs: wait });
      try {
        await sleep(wait, undefined, { signal: stopping.signal });
      } catch {
        return 'stopped';
      }
    }
  }

  return {
    delivers: (channel) => prepared.has(channel),
    deliver(action) {
      const channel = prepared.get(action.channel);
      if (!channel) return Promise.resolve('logged');
      const delivery = run(channel, action);
      pending.add(delivery);
      void delivery.finally(() => pending.delete(delivery));
      return delivery;
    },
    async close() {
      const undelivered = pending.size;
      stopping.abort();
      await Promise.allSettled([...pending]);
      return undelivered;
    },
  };
}
