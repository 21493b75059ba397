/** What `strata dev` and `strata send-test` share about channel delivery: starting it, and its log lines. */
import type { Ruleset } from '../core/ruleset.js';
import { type ChannelDelivery, type DeliveryRecord, MissingChannelSecretError, createChannelDelivery } from '../local/channel-delivery.js';
import { UsageError } from './output.js';

/** Actions a channel gave up on, one JSON line each, with the action to send again. */
export const CHANNEL_DLQ_FILE = 'channel-dlq.jsonl';

export function startChannelDelivery(
  ruleset: Ruleset,
  command: string,
  onDelivery: (record: DeliveryRecord) => void | Promise<void>,
): ChannelDelivery {
  try {
    return createChannelDelivery({ channels: ruleset.channels, env: process.env, onDelivery });
  } catch (error) {
    if (error instanceof MissingChannelSecretError) {
      throw new UsageError(
        `${command}: ${error.missing.map((m) => `channel "${m.channel}" needs its secret in the environment variable ${m.env}`).join('; ')}`,
        'export it in this shell (channels.json names the variable, never the secret)',
      );
    }
    throw error;
  }
}

export function describeDelivery(record: DeliveryRecord): string {
  const what = `${record.actionId} via ${record.channel} to ${record.userId}`;
  const answer = record.httpStatus !== undefined ? `HTTP ${record.httpStatus}` : (record.reason ?? 'no answer');
  switch (record.status) {
    case 'delivered':
      return `delivered ${what} (${answer}, attempt ${record.attempt})`;
    case 'retrying':
      return `delivery of ${what} failed (${answer}${record.httpStatus !== undefined && record.reason ? `: ${record.reason}` : ''}); retry ${record.attempt} in ${(record.retryInMs! / 1000).toFixed(1)} s`;
    case 'dead-letter':
      return `gave up delivering ${what} after ${record.attempt} attempts (${answer}${record.httpStatus !== undefined && record.reason ? `: ${record.reason}` : ''}); kept in ${CHANNEL_DLQ_FILE}`;
  }
}
