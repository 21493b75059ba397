/**
 * The journey-step handler: the Task that the compiled journeys call, wired to the DynamoDB store on dynalite and
 * to the EventBridge publisher on a mocked client (where the bus's partial failures are injected).
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { PublishFailedError, createEventBridgePublisher } from '../../functions/aws/eventbridge-publisher.js';
import { type TierServices, ingestEvent, windowStart } from '../../functions/core/ingest.js';
import { journeyStepSpec } from '../../functions/core/journey/compile-journey.js';
import { TRANSIENT_ERROR } from '../../functions/core/journey/journey-task.js';
import { InvalidJourneyTaskError, createJourneyStepHandler, journeyStepStore } from '../../functions/handlers/journey-step.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { testRuleset, testTiers, testTiersFile, userEvent } from '../helpers/fixtures.js';
import { journeyDocument } from '../helpers/journey-fixtures.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';
import { captureProcessOutput } from '../helpers/captured-output.js';

const dynalite = useDynalite();
const ruleset = testRuleset({
  tiers: testTiersFile({ tiers: testTiers({ member: { journey: 'journeys/member.json' } }) }),
  extra: { 'journeys/member.json': JSON.stringify(journeyDocument()) },
});
const USER = 'fatima@example.com';

const eventBridgeClient = new EventBridgeClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const eventBridge = mockClient(eventBridgeClient);

const output = captureProcessOutput();
beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
    FailedEntryCount: 0,
    Entries: input.Entries.map((_, i) => ({ EventId: `e-${i}` })),
  }));
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** A member whose member journey has just started (the outbox named the execution). */
async function memberWithJourney() {
  const tableName = await dynalite.freshTable();
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 4, timeZone: ruleset.timezone });
  const clock = new ManualClock(new Date('2026-03-02T10:00:00Z'));
  const services: TierServices = { ruleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock };
  await ingestEvent(services, userEvent({ userId: USER, occurredAt: '2026-03-01T09:00:00Z' }));
  await ingestEvent(services, userEvent({ userId: USER, occurredAt: '2026-03-02T09:00:00Z' }));
  const { profile } = await store.loadUser(USER, windowStart(ruleset, clock.now()));
  expect(profile?.journey?.tier).toBe('member');
  const handler = createJourneyStepHandler({
    ruleset,
    ports: {
      store: journeyStepStore(store),
      publisher: createEventBridgePublisher({ client: eventBridgeClient, eventBusName: 'strata-bus' }),
      clock,
    },
    logger: new Logger({ serviceName: 'strata-journey-step-test' }),
    metrics: new Metrics({ namespace: 'StrataTest', serviceName: 'strata-journey-step-test' }),
  });
  const task = {
    ...journeyStepSpec(ruleset.journeys['member']!, 'welcome'),
    userId: USER,
    executionName: profile!.journey!.executionName,
    startedAt: profile!.journey!.startedAt,
  };
  return { handler, store, task, clock };
}

describe('journey-step handler', () => {
  it('sends: records the send and publishes a JourneyAction on the bus', async () => {
    const { handler, store, task } = await memberWithJourney();
    const result = await handler(task);
    expect(result).toMatchObject({ outcome: 'sent' });

    const entries = eventBridge.commandCalls(PutEventsCommand).flatMap((call) => call.args[0].input.Entries ?? []);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ Source: 'strata.journeys', DetailType: 'JourneyAction', EventBusName: 'strata-bus' });
    const action = JSON.parse(entries[0]!.Detail!);
    expect(action).toMatchObject({
      kind: 'content',
      userId: USER,
      journeyId: 'member-nurture',
      stepId: 'welcome',
      templateId: 'beginner-live-session-replay',
    });
    expect(result).toMatchObject({ actionId: action.actionId });

    // The state machine retries a Task whose result it never saw: the send is counted once, and published again
    // under the same actionId for the channels to drop.
    expect(await handler(task)).toMatchObject({ outcome: 'sent', actionId: action.actionId });
    const { buckets } = await store.loadUserForJourney(USER, '2026-03-01');
    expect(buckets.reduce((sum, bucket) => sum + (bucket.sends ?? 0), 0)).toBe(1);
    expect(output.text()).not.toContain(USER);
  });

  it('turns a bus failure into Strata.Transient, which the compiled journey retries', async () => {
    const { handler, task } = await memberWithJourney();
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] });
    const failure = await handler(task).catch((error: unknown) => error as Error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).name).toBe(TRANSIENT_ERROR);
    expect((failure as Error).cause).toBeInstanceOf(PublishFailedError);
    expect(((failure as Error).cause as PublishFailedError).failures).toEqual([{ detailType: 'JourneyAction', errorCode: 'ThrottlingException' }]);
    expect(output.text()).not.toContain(USER);
  });

  it("sends what the execution's own journey version says, even when the deployed journey no longer has the step", async () => {
    const { handler, task } = await memberWithJourney();
    const olderVersion = {
      ...task,
      journeyId: 'member-nurture-2025',
      stepId: 'old_welcome',
      step: { type: 'content', templateId: 'old-replay', channel: 'sms' },
    };
    expect(await handler(olderVersion)).toMatchObject({ outcome: 'sent' });
    const action = JSON.parse(eventBridge.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries![0]!.Detail!);
    expect(action).toMatchObject({ journeyId: 'member-nurture-2025', stepId: 'old_welcome', templateId: 'old-replay', channel: 'sms' });
  });

  it('refuses input that no compiled journey sends', async () => {
    const { handler, task } = await memberWithJourney();
    const { userId: _userId, ...withoutUser } = task;
    await expect(handler(withoutUser)).rejects.toThrow(InvalidJourneyTaskError);
    await expect(handler({ ...task, sinceSentAt: 7 })).rejects.toThrow(/sinceSentAt/);
    await expect(handler({ ...task, step: { type: 'content', channel: 'Carrier Pigeon' } })).rejects.toThrow(
      /step\.templateId.*step\.channel|step\.channel/,
    );
    const { step: _step, ...withoutStep } = task;
    await expect(handler(withoutStep)).rejects.toThrow(/step: .*compileJourney/);
    await expect(handler('welcome')).rejects.toThrow(/not an object/);
  });
});
