/**
 * The AWS-only adapters the handlers use, on mocked SDK clients: the Step Functions journey starter, the
 * EventBridge publishers and the SQS dead-letter sender.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_ENTRIES_PER_PUT, PublishFailedError, createEventBridgePublisher } from '../../functions/aws/eventbridge-publisher.js';
import {
  JourneyStarterError,
  createSfnJourneyStarter,
  executionArn,
  parseStateMachineArns,
  tierOfExecutionName,
} from '../../functions/aws/sfn-journey-starter.js';
import { DeadLetterSendError, MAX_REASON_LENGTH, createSqsDeadLetterSender } from '../../functions/aws/sqs-dead-letter.js';
import { journeyExecutionName } from '../../functions/core/decide.js';
import type { TierNotice } from '../../functions/core/state.js';

const config = { region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
const sfnClient = new SFNClient(config);
const eventBridgeClient = new EventBridgeClient(config);
const sqsClient = new SQSClient(config);
const sfn = mockClient(sfnClient);
const eventBridge = mockClient(eventBridgeClient);
const sqs = mockClient(sqsClient);

const MACHINES = {
  member: 'arn:aws:states:eu-west-1:123456789012:stateMachine:StrataJourneyMember',
  'core-plus': 'arn:aws:states:eu-west-1:123456789012:stateMachine:StrataJourneyCorePlus',
};
const serviceError = <T extends Error>(error: T): T => error;
/** The error a promise rejects with (fails the test if it resolves). */
async function rejectionOf<T extends Error>(promise: Promise<unknown>): Promise<T> {
  try {
    await promise;
  } catch (error) {
    return error as T;
  }
  throw new Error('expected a rejection');
}

beforeEach(() => {
  sfn.reset();
  eventBridge.reset();
  sqs.reset();
});

describe('Step Functions journey starter', () => {
  const starter = createSfnJourneyStarter({ client: sfnClient, stateMachineArns: MACHINES, journeyIds: { member: 'member-nurture' } });
  const name = journeyExecutionName('user-1', 'core-plus', '2026-03-02T10:00:00.000Z');

  it("starts the tier's machine under the outbox's name, with the input the compiled journeys read", async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn', startDate: new Date() });
    const journey = { executionName: journeyExecutionName('user-1', 'member', 'x'), tier: 'member', startedAt: 'x' };
    expect(await starter.start(journey, 'user-1')).toBe('started');
    const input = sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ stateMachineArn: MACHINES.member, name: journey.executionName });
    expect(JSON.parse(input.input!)).toEqual({ userId: 'user-1', tier: 'member', journeyId: 'member-nurture', executionName: journey.executionName });
  });

  it('counts an existing execution of the same name as done', async () => {
    sfn.on(StartExecutionCommand).rejects(serviceError(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} })));
    expect(await starter.start({ executionName: name, tier: 'core-plus', startedAt: 'x' }, 'user-1')).toBe('already-exists');
  });

  it('wraps any other failure in a named error with its cause, and never names the user', async () => {
    const cause = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    sfn.on(StartExecutionCommand).rejects(cause);
    const error = await rejectionOf(starter.start({ executionName: name, tier: 'core-plus', startedAt: 'x' }, 'user-1@example.com'));
    expect(error).toBeInstanceOf(JourneyStarterError);
    expect(error.cause).toBe(cause);
    expect(error.message).not.toContain('user-1@example.com');
    await expect(starter.start({ executionName: 'gold-x', tier: 'gold', startedAt: 'x' }, 'u')).rejects.toThrow(
      /no journey state machine for tier "gold"/,
    );
  });

  it('stops by the execution ARN derived from the name, even with hyphens in the tier id', async () => {
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED', startDate: new Date() } as never);
    await starter.stop(name);
    expect(sfn.commandCalls(StopExecutionCommand)[0]!.args[0].input.executionArn).toBe(
      `arn:aws:states:eu-west-1:123456789012:execution:StrataJourneyCorePlus:${name}`,
    );
    expect(tierOfExecutionName(name, Object.keys(MACHINES))).toBe('core-plus');
    expect(executionArn(MACHINES.member, 'member-abc')).toBe('arn:aws:states:eu-west-1:123456789012:execution:StrataJourneyMember:member-abc');
    // Executions start on the machine's alias; their ARN names the machine, never the alias.
    expect(executionArn(`${MACHINES.member}:live`, 'member-abc')).toBe(
      'arn:aws:states:eu-west-1:123456789012:execution:StrataJourneyMember:member-abc',
    );
  });

  it('returns where a stopped execution was, from the newest state its history shows, for its journey counters', async () => {
    const startDate = new Date('2026-03-02T10:00:00.000Z');
    const data = { userId: 'user-1', results: { welcome: { outcome: 'sent', at: 'x', actionId: 'a' } } };
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'ABORTED', startDate } as never);
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        { id: 9, type: 'ExecutionAborted', timestamp: new Date() },
        { id: 8, type: 'WaitStateEntered', timestamp: new Date(), stateEnteredEventDetails: { name: 'pause', input: JSON.stringify(data) } },
      ],
    } as never);
    expect(await starter.stop(name)).toEqual({ tier: 'core-plus', startedAt: startDate.toISOString(), data });
    expect(sfn.commandCalls(GetExecutionHistoryCommand)[0]!.args[0].input).toMatchObject({ reverseOrder: true });
  });

  it('counts an unknown or finished execution as stopped', async () => {
    sfn.on(StopExecutionCommand).rejectsOnce(new ExecutionDoesNotExist({ message: 'Execution Does Not Exist', $metadata: {} }));
    await expect(starter.stop(name)).resolves.toBeUndefined();

    sfn.on(StopExecutionCommand).rejects(Object.assign(new Error('execution is not running'), { name: 'ValidationException' }));
    sfn.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED' } as never);
    const describesBefore = sfn.commandCalls(DescribeExecutionCommand).length;
    await expect(starter.stop(name)).resolves.toBeUndefined();
    // One read tells both that it has ended and that it was not stopped (so has no steps to count here).
    expect(sfn.commandCalls(DescribeExecutionCommand).length - describesBefore).toBe(1);

    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' } as never);
    await expect(starter.stop(name)).rejects.toThrow(JourneyStarterError);

    // A tier that no longer has a journey has nothing running to stop.
    sfn.reset();
    await starter.stop(journeyExecutionName('user-1', 'visitor', 'x'));
    expect(sfn.calls()).toHaveLength(0);
  });

  it('reads the tier → ARN map from its env var, or says what is wrong', () => {
    expect(parseStateMachineArns(JSON.stringify(MACHINES), 'VAR')).toEqual(MACHINES);
    expect(() => parseStateMachineArns('member=arn', 'VAR')).toThrow(/VAR is not JSON/);
    expect(() => parseStateMachineArns('[]', 'VAR')).toThrow(/JSON object/);
    expect(() => parseStateMachineArns('{"member": "arn:aws:lambda:x"}', 'VAR')).toThrow(/tier "member" is not a state machine ARN/);
  });
});

describe('EventBridge publisher', () => {
  const publisher = createEventBridgePublisher({ client: eventBridgeClient, eventBusName: 'strata-bus' });
  const notice = (i: number): TierNotice => ({
    noticeId: `n${i}`,
    detailType: i % 2 ? 'TierChanged' : 'GraceStarted',
    userRef: `u_${i}`,
    userId: `user-${i}`,
    kind: 'promoted',
    toTier: 'member',
    at: '2026-03-02T10:00:00.000Z',
    rulesetVersion: 'abc',
  });
  const accepted = (input: { Entries: PutEventsRequestEntry[] }) => ({ FailedEntryCount: 0, Entries: input.Entries.map(() => ({ EventId: 'e' })) });

  it('puts notices in batches of at most 10, from strata.tiers', async () => {
    eventBridge.on(PutEventsCommand).callsFake(accepted);
    await publisher.publishNotices(Array.from({ length: 23 }, (_, i) => notice(i)));
    const batches = eventBridge.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries!);
    expect(batches.map((entries) => entries.length)).toEqual([10, 10, 3]);
    expect(batches.flat().every((entry) => entry.Source === 'strata.tiers' && entry.EventBusName === 'strata-bus')).toBe(true);
    expect(batches[0]![1]).toMatchObject({ DetailType: 'TierChanged' });
    expect(JSON.parse(batches[0]![1]!.Detail!)).toMatchObject({ noticeId: 'n1', userId: 'user-1' });
    expect(MAX_ENTRIES_PER_PUT).toBe(10);
  });

  it("throws a retryable error naming the failed entries' codes when any entry is refused", async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 2,
      Entries: [{ EventId: 'e1' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }, { ErrorCode: 'InternalFailure' }],
    });
    const error = await rejectionOf<PublishFailedError>(publisher.publishNotices([notice(0), notice(1), notice(2)]));
    expect(error).toBeInstanceOf(PublishFailedError);
    expect(error.retryable).toBe(true);
    expect(error.failures).toEqual([
      { detailType: 'TierChanged', errorCode: 'ThrottlingException' },
      { detailType: 'GraceStarted', errorCode: 'InternalFailure' },
    ]);
    expect(error.message).toContain('ThrottlingException');
  });

  it('puts journey actions from strata.journeys as JourneyAction', async () => {
    eventBridge.on(PutEventsCommand).callsFake(accepted);
    await publisher.publishJourneyAction({
      actionId: 'a1',
      userId: 'user-1',
      journeyId: 'member-nurture',
      tier: 'member',
      stepId: 'welcome',
      executionName: 'member-x',
      channel: 'email',
      at: '2026-03-02T10:00:00.000Z',
      kind: 'content',
      templateId: 'welcome-pack',
    });
    expect(eventBridge.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries).toEqual([
      expect.objectContaining({ Source: 'strata.journeys', DetailType: 'JourneyAction', Time: new Date('2026-03-02T10:00:00.000Z') }),
    ]);
  });
});

describe('SQS dead-letter sender', () => {
  const sender = createSqsDeadLetterSender({ client: sqsClient, queueUrl: 'https://sqs/dlq' });

  it('sends the original body with reason and eventRef attributes', async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
    await sender.sendToDeadLetter({ body: '{"x":1}', reason: 'r'.repeat(MAX_REASON_LENGTH + 50), eventRef: 'evt-1' });
    const input = sqs.commandCalls(SendMessageCommand)[0]!.args[0].input;
    expect(input.MessageBody).toBe('{"x":1}');
    expect(input.MessageAttributes?.['eventRef']).toEqual({ DataType: 'String', StringValue: 'evt-1' });
    expect(input.MessageAttributes?.['reason']?.StringValue).toHaveLength(MAX_REASON_LENGTH);
  });

  it('fails with a named error when SQS refuses, so the message stays on its queue', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('AccessDenied'));
    await expect(sender.sendToDeadLetter({ body: 'b', reason: 'r', eventRef: 'evt-2' })).rejects.toThrow(DeadLetterSendError);
  });
});
