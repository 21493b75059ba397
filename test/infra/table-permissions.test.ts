/**
 * The table actions each function's role grants (infra/bindings.ts TABLE_ACCESS) against the DynamoDB calls its code
 * really makes. The grants are written by hand, and a call the role lacks fails only in AWS, with AccessDenied on
 * the first heavy day or resend in production; so the paths that make the rarer calls run here on dynalite, and
 * every command the client sent must be granted.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDynamoCounters } from '../../functions/aws/dynamo-counters.js';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { addDays } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { type TierServices, ingestEvent } from '../../functions/core/ingest.js';
import { runReview } from '../../functions/core/review.js';
import { TABLE_ACCESS, type TableAccess } from '../../infra/bindings.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { testRuleset } from '../helpers/fixtures.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';

const dynalite = useDynalite();
const SHARDS = 4;
const NOW = '2026-03-10T10:00:00.000Z';

/** The IAM actions of the commands a client sends while `recording` is on (`QueryCommand` → `dynamodb:Query`). */
function recordActions(client: DynamoDBClient): { actions: Set<string>; stop(): void } {
  const actions = new Set<string>();
  const name = `record-actions-${Math.random()}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      actions.add(`dynamodb:${String(context.commandName).replace(/Command$/, '')}`);
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { actions, stop: () => client.middlewareStack.remove(name) };
}

function granted(access: TableAccess): string[] {
  return [...TABLE_ACCESS[access].actions];
}

describe('each function is granted every table action its code makes', () => {
  let services: TierServices;
  let recording: ReturnType<typeof recordActions>;

  beforeEach(async () => {
    const tableName = await dynalite.freshTable();
    const ruleset = testRuleset();
    const client = dynalite.client;
    services = {
      ruleset,
      store: createDynamoTierStore({ client, tableName, shardCount: SHARDS, timeZone: ruleset.timezone }),
      journeys: new RecordingJourneyStarter(),
      publisher: new RecordingPublisher(),
      clock: new ManualClock(new Date(NOW)),
      counters: createDynamoCounters({ client, tableName }),
    };
    recording = recordActions(client);
  });
  afterEach(() => recording.stop());

  const event = (eventId: string, type: string, occurredAt: string, properties: Record<string, unknown> = {}): UserEvent => ({
    eventId,
    userId: 'heavy-user',
    type,
    occurredAt,
    properties,
  });

  it('ingest: light and heavy days, a resend with another date, tier changes and conversions', async () => {
    const day = NOW.slice(0, 10);
    // More events in one day than a light day holds, so the day turns heavy and its guards are read and written.
    for (let i = 0; i < 40; i++) await ingestEvent(services, event(`e-${i}`, 'app.opened', `${day}T0${i % 10}:0${i % 6}:00.000Z`));
    await ingestEvent(services, event('paid-1', 'order.paid', `${day}T09:30:00.000Z`, { amount: 500, product: 'pm-course', currency: 'CNY' }));
    // The same events resent with other dates: settled across days.
    const earlier = addDays(day, -3);
    await ingestEvent(services, event('e-1', 'app.opened', `${earlier}T08:00:00.000Z`));
    await ingestEvent(services, event('late-1', 'app.opened', `${earlier}T09:00:00.000Z`));
    await ingestEvent(services, event('late-1', 'app.opened', `${addDays(day, -1)}T09:00:00.000Z`));
    expect(recording.actions.size).toBeGreaterThan(0);
    expect([...recording.actions].filter((action) => !granted('ingest').includes(action))).toEqual([]);
  });

  it('review: the nightly review of due users, with its checkpoint and census snapshot', async () => {
    const day = NOW.slice(0, 10);
    await ingestEvent(services, event('paid-1', 'order.paid', `${day}T09:30:00.000Z`, { amount: 500, product: 'pm-course', currency: 'CNY' }));
    recording.actions.clear();
    (services.clock as ManualClock).set(`${addDays(day, 40)}T03:30:00.000Z`);
    await runReview(services, SHARDS);
    expect(recording.actions.size).toBeGreaterThan(0);
    expect([...recording.actions].filter((action) => !granted('review').includes(action))).toEqual([]);
  });
});
