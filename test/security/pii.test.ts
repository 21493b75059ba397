/**
 * No raw user id or email in execution names or log lines. Producers often use an email as the user id, so the
 * user here is `ana@example.com`; the names and logs must carry only the pseudonymous userRef.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { createSfnJourneyStarter } from '../../functions/aws/sfn-journey-starter.js';
import { journeyExecutionName } from '../../functions/core/decide.js';
import { userRef } from '../../functions/core/hash.js';
import { createJourneyStepHandler } from '../../functions/handlers/journey-step.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { throttlingError, withFaults } from '../helpers/fault-injection.js';
import { ManualClock } from '../helpers/memory-ports.js';
import { createMemoryJourneyPorts, profileFor } from '../helpers/journey-fixtures.js';
import { batch, createIngestWorld, envelope, ladderWithJourneys, paid, recordsOf, silentMetrics, sqsRecord } from '../reliability/world.js';
import { captureProcessOutput } from '../helpers/captured-output.js';
import { journeyStepSpec } from '../../functions/core/journey/compile-journey.js';

const dynalite = useDynalite();
const EMAIL = 'ana@example.com';
const LOCAL_PART = 'ana@';

const output = captureProcessOutput();

const expectNoPii = (text: string): void => {
  expect(text).not.toContain(EMAIL);
  expect(text).not.toContain(LOCAL_PART);
  expect(text).not.toContain(encodeURIComponent(EMAIL));
};

describe('execution names', () => {
  it('are a tier and a hash, with nothing of the user id in them', () => {
    const name = journeyExecutionName(EMAIL, 'member', '2026-03-10T10:00:00.000Z');
    expect(name).toMatch(/^member-[A-Za-z0-9_-]{22}$/);
    expectNoPii(name);
    expect(name).not.toContain('example');
  });

  it('are what the Step Functions starter sends as the execution name', async () => {
    const client = new SFNClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const sfn = mockClient(client);
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:Member:x', startDate: new Date() });
    const starter = createSfnJourneyStarter({ client, stateMachineArns: { member: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Member' } });
    const executionName = journeyExecutionName(EMAIL, 'member', '2026-03-10T10:00:00.000Z');

    await starter.start({ executionName, tier: 'member', startedAt: '2026-03-10T10:00:00.000Z' }, EMAIL);

    const [call] = sfn.commandCalls(StartExecutionCommand);
    expect(call!.args[0].input.name).toBe(executionName);
    expectNoPii(call!.args[0].input.name!);
  });
});

describe('log lines', () => {
  it("ingest: a tier change, a failed record (with the id in the lower layer's message) and a poison event", async () => {
    const world = await createIngestWorld(dynalite);
    const leaky = withFaults(world.store, [
      {
        operation: 'recordEvent',
        call: 1,
        when: 'before',
        match: ([userId]) => userId === EMAIL,
        error: () => new Error(`store refused the item of ${EMAIL}`),
      },
    ]);
    const logger = new Logger({ serviceName: 'strata-ingest-pii', logLevel: 'DEBUG' });
    const records = [
      ...recordsOf([paid(EMAIL, 150)]),
      sqsRecord('m-poison', envelope({ eventId: `${EMAIL}-1`, userId: EMAIL, type: 'order.paid', occurredAt: 'not a date' })),
    ];
    await world.handler({ store: leaky }, logger)(batch(records));
    await world.handler({}, logger)(batch([records[0]!]));

    const logs = output.text();
    expect(logs).toContain('Event failed; SQS will redeliver it');
    expect(logs).toContain('Poison event sent to the dead-letter queue');
    expect(logs).toContain('Tier changed');
    expect(logs).toContain(userRef(EMAIL));
    expectNoPii(logs);
    // The dead letter keeps the body as sent, for the operator to redrive; that is the DLQ's job, not a log's.
    expect(world.deadLetters.letters[0]!.body).toContain(EMAIL);
  });

  it('journey step: a step that fails with the id in the error, and one that succeeds', async () => {
    const clock = new ManualClock(new Date('2026-03-10T10:00:00Z'));
    const memory = createMemoryJourneyPorts(clock, ladderWithJourneys.timezone);
    memory.setProfile(profileFor(EMAIL, 'member'));
    const journey = ladderWithJourneys.journeys['member']!;
    const store = withFaults(memory.ports.store, [
      { operation: 'recordSend', call: 1, when: 'before', error: () => Object.assign(throttlingError(), { message: `throttled writing ${EMAIL}` }) },
    ]);
    const step = createJourneyStepHandler({
      ruleset: ladderWithJourneys,
      ports: { ...memory.ports, store },
      logger: new Logger({ serviceName: 'strata-journey-step-pii', logLevel: 'DEBUG' }),
      metrics: silentMetrics(),
    });
    const task = {
      ...journeyStepSpec(journey, 'welcome'),
      userId: EMAIL,
      executionName: journeyExecutionName(EMAIL, 'member', '2026-03-10T10:00:00.000Z'),
      startedAt: '2026-03-10T10:00:00.000Z',
    };

    await expect(step(task)).rejects.toThrow(/transient/);
    await expect(step(task)).resolves.toMatchObject({ outcome: 'sent' });

    const logs = output.text();
    expect(logs).toContain('Journey step failed');
    expect(logs).toContain('Journey step done');
    expectNoPii(logs);
  });
});
