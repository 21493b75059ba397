/**
 * The reliability contract (DESIGN.md), one scenario per fault, numbered as in the issue so that a reader can map
 * them: the real ingest handler fed SQS-shaped records, the real DynamoDB store on dynalite, and recording
 * stand-ins for Step Functions and the bus. Faults are injected through the ports (test/helpers/fault-injection.ts);
 * aws-sdk-client-mock is used only where the path exists only in AWS (ExecutionAlreadyExists, the SQS DLQ).
 *
 * Every scenario asserts the exact final state: profile tier and version, tier history, executions started and
 * notices published. Scenarios 12 and 13 (journeys) are in journey-scenarios.test.ts.
 */
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { SQSClient, SendMessageCommand, type SendMessageCommandInput } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { createSfnJourneyStarter } from '../../functions/aws/sfn-journey-starter.js';
import { createSqsDeadLetterSender } from '../../functions/aws/sqs-dead-letter.js';
import { OUTBOX_LEASE_MS } from '../../functions/core/ingest.js';
import { runReview } from '../../functions/core/review.js';
import { createIngestHandler } from '../../functions/handlers/ingest.js';
import { journeyIdsOf } from '../../functions/handlers/runtime.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { STORE_WRITES, SimulatedCrash, throttleEveryAttempt, throttlingError, withClientFaults, withFaults } from '../helpers/fault-injection.js';
import { testRuleset, testRules, testTiersFile } from '../helpers/fixtures.js';
import {
  NOW,
  SHARDS,
  batch,
  createIngestWorld,
  daysAgo,
  envelope,
  event,
  expectConsistent,
  failedIds,
  opened,
  paid,
  recordsOf,
  silentLogger,
  silentMetrics,
  sqsRecord,
  userState,
} from './world.js';

const dynalite = useDynalite();

/** The spend fact of the test ladder (core needs 100 in 30 days). */
/** The state of a user promoted once, visitor to core: one history entry, one journey, one notice, nothing pending. */
const promotedOnceToCore = (version = 1) => ({
  tier: 'core',
  version,
  history: ['visitor→core'],
  executions: ['core'],
  tierChanges: ['new→core'],
  outboxEmpty: true,
});
const spendOf = (state: { facts: Record<string, unknown> }): unknown => state.facts['spend30'];

describe('reliability scenarios', () => {
  it('1. the same SQS message delivered twice is applied once', async () => {
    const world = await createIngestWorld(dynalite);
    const records = recordsOf([paid('ana', 120)]);

    expect(failedIds(await world.handler()(batch(records)))).toEqual([]);
    expect(failedIds(await world.handler()(batch(records)))).toEqual([]);

    expect(await userState(world, 'ana')).toMatchObject(promotedOnceToCore());
    expect(spendOf(await userState(world, 'ana'))).toBe(120);
    expect(world.sfn.started.size).toBe(1);
  });

  it('2. a producer resend (same eventId, new EventBridge id and SQS message) is applied once', async () => {
    const world = await createIngestWorld(dynalite);
    const order = paid('ben', 120);
    await world.handler()(batch([sqsRecord('m-first', envelope(order, 'eb-first'))]));
    const resent = await world.handler()(batch([sqsRecord('m-resend', envelope(order, 'eb-resend'))]));

    expect(failedIds(resent)).toEqual([]);
    const state = await userState(world, 'ben');
    expect(state).toMatchObject(promotedOnceToCore());
    expect(spendOf(state)).toBe(120);
  });

  it('3. the same event in two concurrent batches is applied once', async () => {
    const world = await createIngestWorld(dynalite);
    const shared = paid('cai', 70);
    const first = [sqsRecord('a-1', envelope(shared, 'eb-a')), ...recordsOf([paid('cai', 10), opened('dan', daysAgo(1))])];
    const second = [sqsRecord('b-1', envelope(shared, 'eb-b')), ...recordsOf([paid('cai', 20), opened('dan', daysAgo(0))])];

    const responses = await Promise.all([world.handler()(batch(first)), world.handler()(batch(second))]);

    expect(responses.map(failedIds)).toEqual([[], []]);
    const cai = await userState(world, 'cai');
    // 70 once + 10 + 20: the shared event counted twice would have made 170 (and still core, so check the sum).
    expect(spendOf(cai)).toBe(100);
    // Whether cai's first profile write saw 10, 70 or more decides whether it entered at visitor or straight at core.
    expectConsistent(cai, world.ruleset, 'core');
    expect(cai.executions).toEqual(['core']);
    const dan = await userState(world, 'dan');
    expectConsistent(dan, world.ruleset, 'member');
    expect(dan.executions).toEqual(['member']);
    expect(dan.facts['days7']).toBe(2);
  });

  it('4. 100 concurrent events for one user: the metrics sum exactly', async () => {
    const world = await createIngestWorld(dynalite);
    // Amounts 1..100 over the last 3 days, in 10 batches of 10 delivered at once (each batch is processed in parallel too).
    const orders = Array.from({ length: 100 }, (_, i) => paid('eve', i + 1, daysAgo(i % 3, 8)));
    const batches = Array.from({ length: 10 }, (_, b) => batch(recordsOf(orders.slice(b * 10, b * 10 + 10))));

    const responses = await Promise.all(batches.map((b) => world.handler()(b)));

    expect(responses.flatMap(failedIds)).toEqual([]);
    const state = await userState(world, 'eve');
    expect(state.facts).toMatchObject({ spend30: 5050, days7: 3, lessons7: 0 });
    // days7 = 3 qualifies for member, spend for core; whichever the races decided first, the end is core, and every
    // tier change started its journey exactly once.
    expectConsistent(state, world.ruleset, 'core');
    expect(new Set(world.sfn.startCalls).size).toBe(world.sfn.started.size);
  });

  describe('5. out-of-order events', () => {
    const stream = () => [
      opened('fay', daysAgo(6)),
      opened('fay', daysAgo(5)),
      opened('fay', daysAgo(3)),
      opened('fay', daysAgo(1)),
      event('fay', 'content.completed', daysAgo(1)),
    ];

    it('reach the same final tier and facts as in order', async () => {
      const inOrder = await createIngestWorld(dynalite);
      const reversed = await createIngestWorld(dynalite);
      const events = stream();
      for (const e of events) await inOrder.handler()(batch(recordsOf([e])));
      for (const e of [...events].reverse()) await reversed.handler()(batch(recordsOf([e])));

      const expected = await userState(inOrder, 'fay');
      const actual = await userState(reversed, 'fay');
      expect(expected).toMatchObject({
        tier: 'active',
        version: 3,
        history: ['visitor→visitor', 'visitor→member', 'member→active'],
        executions: ['member', 'active'],
      });
      expect(actual.tier).toBe(expected.tier);
      expect(actual.facts).toEqual(expected.facts);
      // Promotion on arrival: the reversed stream reaches member on its 2nd event and active on its 4th, the same chain here.
      expect(actual.history).toEqual(expected.history);
    });

    it('a stale event never rolls a tier back', async () => {
      const world = await createIngestWorld(dynalite);
      await world.handler()(batch(recordsOf([paid('gus', 150)])));
      await world.handler()(batch(recordsOf([event('gus', 'questionnaire.answered', daysAgo(0), { plan: 'pro', interests: ['data'] })])));
      const before = await userState(world, 'gus');
      expect(before).toMatchObject({ tier: 'core', version: 2, history: ['visitor→core'] });

      // Weeks late: an old app open (outside every window) and an older questionnaire answer (tags left out: they
      // accumulate, so a stale tag is rightly added).
      const stale = [opened('gus', daysAgo(60)), event('gus', 'questionnaire.answered', daysAgo(40), { plan: 'free' })];
      expect(failedIds(await world.handler()(batch(recordsOf(stale))))).toEqual([]);

      const after = await userState(world, 'gus');
      expect(after).toMatchObject({ tier: 'core', history: ['visitor→core'], executions: ['core'], tierChanges: ['new→core'] });
      // The newer answer wins over the stale one.
      expect(after.facts['plan']).toBe('pro');
      expect(after.version).toBe(before.version);
    });
  });

  it('6. one failing record in a batch of 10: only it is retried', async () => {
    const world = await createIngestWorld(dynalite);
    const orders = Array.from({ length: 10 }, (_, i) => paid(`user-${i}`, 120));
    const records = recordsOf(orders);
    const flaky = withFaults(world.store, [
      {
        operation: 'saveProfile',
        call: 1,
        when: 'before',
        times: Infinity,
        match: ([profile]) => (profile as { userId: string }).userId === 'user-6',
        error: throttlingError,
      },
    ]);

    const response = await world.handler({ store: flaky })(batch(records));

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[6]!.messageId }]);
    for (let i = 0; i < 10; i++) {
      if (i === 6) continue;
      expect(await userState(world, `user-${i}`)).toMatchObject({ tier: 'core', version: 1, history: ['visitor→core'], executions: ['core'] });
    }
    // The failed record left its day write but no tier change; SQS redelivers just it.
    expect(await userState(world, 'user-6')).toMatchObject({ tier: undefined, history: [], executions: [], tierChanges: [] });
    expect(failedIds(await world.handler()(batch([records[6]!])))).toEqual([]);
    const healed = await userState(world, 'user-6');
    expect(healed).toMatchObject(promotedOnceToCore());
    expect(spendOf(healed)).toBe(120);
  });

  it('7. the process killed mid-batch: the whole batch is redelivered and the remainder applied once', async () => {
    const events = () => {
      const early = paid('hal', 60);
      return [
        early,
        paid('hal', 70),
        opened('ivy', daysAgo(2)),
        opened('ivy', daysAgo(0)),
        event('jo', 'content.completed', daysAgo(0)),
        paid('jo', 20),
        early,
      ];
    };
    const users = ['hal', 'ivy', 'jo'];
    const stream = events();
    const clean = await createIngestWorld(dynalite);
    for (const e of stream) await clean.handler()(batch(recordsOf([e])));
    const expected = await Promise.all(users.map((u) => userState(clean, u)));
    expect(expected.map((s) => s.tier)).toEqual(['core', 'member', 'visitor']);

    // Every write point count, from the first write to the last one of a clean run.
    for (const crashAfterWrites of [1, 2, 4, 7, 11]) {
      const world = await createIngestWorld(dynalite);
      const records = recordsOf(stream).map((record, i) => ({ ...record, messageId: `${record.messageId}-${i}` }));
      // After N writes every further store call fails: the process is gone, nothing else it does lands.
      let writes = 0;
      const isWrite = (operation: string): boolean => (STORE_WRITES as readonly string[]).includes(operation);
      const dying = withFaults(world.store, [
        {
          operation: '*',
          call: 1,
          when: 'before',
          times: Infinity,
          match: (_args, operation) => (isWrite(operation) ? ++writes : writes) > crashAfterWrites,
        },
      ]);
      await world
        .handler({ store: dying })(batch(records))
        .catch(() => undefined);
      expect(dying.faults.fired.length, `crash after ${crashAfterWrites} writes`).toBeGreaterThan(0);

      // SQS redelivers the whole batch (the invocation never answered) to a fresh Lambda on the same table.
      expect(failedIds(await world.handler()(batch(records)))).toEqual([]);

      // The batch runs its records in parallel, so whether hal entered at visitor first depends on timing; what
      // must hold is the same end, the same facts (each event counted once), and each tier change applied once.
      for (const [i, user] of users.entries()) {
        const state = await userState(world, user);
        expect(state.facts, `${user}, crash after ${crashAfterWrites} writes`).toEqual(expected[i]!.facts);
        expectConsistent(state, world.ruleset, expected[i]!.tier!);
      }
    }
  });

  describe('8. a crash between the tier write and StartExecution: exactly one execution', () => {
    it('the record does not fail (the event is applied); a delivery after the outbox lease starts it', async () => {
      const world = await createIngestWorld(dynalite);
      const records = recordsOf([paid('kim', 150)]);
      const crashing = withFaults(world.sfn, [{ operation: 'start', call: 1, when: 'before' }]);

      expect(failedIds(await world.handler({ journeys: crashing })(batch(records)))).toEqual([]);
      const crashed = await world.store.loadUser('kim', '2026-01-01');
      expect(crashed.profile).toMatchObject({ tier: 'core', pendingJourney: { start: { tier: 'core' } } });
      expect(world.sfn.started.size).toBe(0);

      world.clock.set(new Date(world.clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
      expect(failedIds(await world.handler()(batch(records)))).toEqual([]);
      // Version 2: taking over the outbox's run-out lease is a profile write.
      expect(await userState(world, 'kim')).toMatchObject(promotedOnceToCore(2));
      expect([...world.sfn.started.keys()]).toEqual([crashed.profile!.pendingJourney!.start!.executionName]);
    });

    it('started by the nightly review when no redelivery comes, and a late redelivery adds nothing', async () => {
      const world = await createIngestWorld(dynalite);
      await world.store.setReviewCheckpoint('2026-03-10');
      const records = recordsOf([paid('lea', 150)]);
      await world.handler({ journeys: withFaults(world.sfn, [{ operation: 'start', call: 1, when: 'before' }]) })(batch(records));
      expect(world.sfn.started.size).toBe(0);

      world.clock.set('2026-03-11T02:00:00Z');
      await runReview(world.services(), SHARDS);
      expect(await userState(world, 'lea')).toMatchObject({ tier: 'core', history: ['visitor→core'], executions: ['core'], outboxEmpty: true });

      expect(failedIds(await world.handler()(batch(records)))).toEqual([]);
      expect(world.sfn.started.size).toBe(1);
      expect(world.sfn.startCalls).toHaveLength(1);
    });

    it("a crash just after StartExecution: the redelivery's start is refused by name and counts as done", async () => {
      const world = await createIngestWorld(dynalite);
      const records = recordsOf([paid('max', 150)]);
      await world.handler({ journeys: withFaults(world.sfn, [{ operation: 'start', call: 1, when: 'after' }]) })(batch(records));
      world.clock.set(new Date(world.clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
      await world.handler()(batch(records));

      expect(world.sfn.startCalls).toHaveLength(2);
      expect(new Set(world.sfn.startCalls).size).toBe(1);
      expect(await userState(world, 'max')).toMatchObject({
        tier: 'core',
        version: 2,
        history: ['visitor→core'],
        executions: ['core'],
        outboxEmpty: true,
      });
    });
  });

  it('9. StartExecution replayed (ExecutionAlreadyExists from Step Functions) is treated as done', async () => {
    const world = await createIngestWorld(dynalite);
    const sfnClient = new SFNClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const sfn = mockClient(sfnClient);
    sfn
      .on(StartExecutionCommand)
      .resolvesOnce({ executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:Core:x', startDate: new Date(NOW) })
      .rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} }));
    const starter = createSfnJourneyStarter({
      client: sfnClient,
      stateMachineArns: {
        member: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Member',
        active: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Active',
        core: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Core',
      },
      journeyIds: journeyIdsOf(world.ruleset),
    });
    const records = recordsOf([paid('ned', 150)]);

    // Step Functions took the start, then the flush failed before clearing the outbox; the event itself is applied.
    expect(
      failedIds(await world.handler({ journeys: withFaults(starter, [{ operation: 'start', call: 1, when: 'after' }]) })(batch(records))),
    ).toEqual([]);
    // A later delivery for this user (here an SQS duplicate), once the outbox lease has run out, finishes the flush.
    world.clock.set(new Date(world.clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
    expect(failedIds(await world.handler({ journeys: starter })(batch(records)))).toEqual([]);

    const starts = sfn.commandCalls(StartExecutionCommand).map((call) => call.args[0].input.name);
    expect(starts).toHaveLength(2);
    expect(new Set(starts).size).toBe(1);
    const { profile } = await world.store.loadUser('ned', '2026-01-01');
    expect(profile).toMatchObject({ tier: 'core', version: 2, journey: { executionName: starts[0] } });
    expect(profile?.pendingJourney).toBeUndefined();
    expect(await userState(world, 'ned')).toMatchObject({ history: ['visitor→core'], tierChanges: ['new→core'], outboxEmpty: true });
  });

  describe('10. throttling on the table', () => {
    it("inside the SDK's retries: the record succeeds, every write lands once", async () => {
      const world = await createIngestWorld(dynalite);
      // Every UpdateItem and PutItem is throttled once before it goes through (the SDK backs off ~0.5 s per throttle).
      const throttled = await throttleEveryAttempt(dynalite.client, { commands: ['UpdateItemCommand', 'PutItemCommand'], failures: 1 });
      const store = createDynamoTierStore({
        client: throttled.client,
        tableName: world.tableName,
        shardCount: SHARDS,
        timeZone: world.ruleset.timezone,
      });
      try {
        expect(failedIds(await world.handler({ store })(batch(recordsOf([paid('ola', 150)]))))).toEqual([]);
      } finally {
        throttled.client.destroy();
      }
      expect(throttled.throttled()).toBe(4);
      const state = await userState(world, 'ola');
      expect(state).toMatchObject(promotedOnceToCore());
      expect(spendOf(state)).toBe(150);
    });

    // The history entry is written ahead of the profile write that commits it. A failure once the profile is saved
    // (the outbox clear) does not fail the record: the event is applied, and the next delivery after the lease
    // finishes the outbox.
    it.each([
      ['the day write (UpdateItem #1)', 'UpdateItemCommand', 1, true],
      ['the history write (PutItem #1)', 'PutItemCommand', 1, true],
      ['the profile write (PutItem #2)', 'PutItemCommand', 2, true],
      ['the outbox clear (UpdateItem #2)', 'UpdateItemCommand', 2, false],
    ])('outlasting the SDK on %s: no tier change is half made, the next delivery finishes it once', async (_label, command, call, recordFails) => {
      const world = await createIngestWorld(dynalite);
      const client = withClientFaults(dynalite.client, [{ operation: command, call, when: 'before', error: throttlingError }]);
      const store = createDynamoTierStore({ client, tableName: world.tableName, shardCount: SHARDS, timeZone: world.ruleset.timezone });
      const records = recordsOf([paid('pia', 150), paid('quin', 10)]);

      const response = await world.handler({ store })(batch([records[0]!]));
      expect(failedIds(response)).toEqual(recordFails ? [records[0]!.messageId] : []);
      world.clock.set(new Date(world.clock.now().getTime() + OUTBOX_LEASE_MS + 1000));
      expect(client.faults.fired).toHaveLength(1);
      const partial = await userState(world, 'pia');
      // Either nothing happened yet, or the change is fully recorded in the profile's outbox, to be finished.
      expect([undefined, 'core']).toContain(partial.tier);
      expect(partial.executions.length).toBeLessThanOrEqual(1);

      expect(failedIds(await world.handler()(batch(records)))).toEqual([]);
      const state = await userState(world, 'pia');
      // A failed clear leaves the outbox to a delivery after the lease, whose takeover is one more profile write.
      expect(state).toMatchObject(promotedOnceToCore(recordFails ? 1 : 2));
      expect(spendOf(state)).toBe(150);
    });
  });

  it('11. a poison message goes to the DLQ with its original body and reason; the rest of the batch succeeds', async () => {
    const world = await createIngestWorld(dynalite);
    const sqsClient = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const sqs = mockClient(sqsClient);
    sqs.on(SendMessageCommand).resolves({ MessageId: 'dlq-1' });
    const handler = createIngestHandler({
      services: world.services(),
      deadLetters: createSqsDeadLetterSender({ client: sqsClient, queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/strata-ingest-dlq' }),
      logger: silentLogger(),
      metrics: silentMetrics(),
    });
    const poisonBody = envelope({ eventId: 'bad-1', userId: 'rex', type: 'order.paid', occurredAt: 'yesterday', properties: { amount: 5 } });
    const records = [
      ...recordsOf([paid('rex', 60), paid('rex', 50)]),
      sqsRecord('m-poison', poisonBody),
      sqsRecord('m-not-json', '{"detail": '),
      ...recordsOf([paid('sol', 200)]),
    ];

    const response = await handler(batch(records));

    expect(failedIds(response)).toEqual([]);
    const letters = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input as SendMessageCommandInput);
    expect(letters.map((l) => l.MessageBody).sort()).toEqual([poisonBody, '{"detail": '].sort());
    const poison = letters.find((l) => l.MessageBody === poisonBody)!;
    expect(poison.MessageAttributes?.['reason']?.StringValue).toMatch(/\/occurredAt/);
    expect(poison.MessageAttributes?.['eventRef']?.StringValue).toBe('bad-1');
    expect(letters.find((l) => l.MessageBody === '{"detail": ')!.MessageAttributes?.['reason']?.StringValue).toMatch(/not JSON/);
    // rex's two orders run in parallel: whether the first decision saw one or both decides the chain, not the end.
    const rex = await userState(world, 'rex');
    expectConsistent(rex, world.ruleset, 'core');
    expect(spendOf(rex)).toBe(110);
    expect(await userState(world, 'sol')).toMatchObject({ tier: 'core', version: 1, history: ['visitor→core'], executions: ['core'] });
  });

  describe('14. the nightly review: each grace expiry is applied once', () => {
    /** Members promoted on 1 and 2 March (two open days); by 10 March their 7-day window is empty. */
    async function membersInGrace(count: number) {
      const world = await createIngestWorld(dynalite, { now: '2026-03-02T12:00:00Z' });
      await world.store.setReviewCheckpoint('2026-03-02');
      const users = Array.from({ length: count }, (_, i) => `member-${i}`);
      await world.handler()(batch(recordsOf(users.map((u) => opened(u, '2026-03-01T09:00:00Z')))));
      await world.handler()(batch(recordsOf(users.map((u) => opened(u, '2026-03-02T09:00:00Z')))));
      // 8 March: only one open day is left in the window, so grace starts (7 days); 15 March: it expires.
      world.clock.set('2026-03-08T02:00:00Z');
      await runReview(world.services(), SHARDS);
      for (const u of users) expect((await userState(world, u)).history).toEqual(['visitor→visitor', 'visitor→member', 'member→member']);
      const profiles = await Promise.all(users.map(async (u) => (await world.store.loadUser(u, '2026-01-01')).profile));
      expect(profiles.map((p) => p?.graceUntil)).toEqual(users.map(() => '2026-03-15'));
      world.clock.set('2026-03-15T02:00:00Z');
      return { world, users };
    }

    const expectDemotedOnce = async (world: Awaited<ReturnType<typeof membersInGrace>>['world'], users: string[]) => {
      for (const u of users) {
        expect(await userState(world, u), u).toMatchObject({
          tier: 'visitor',
          version: 4,
          history: ['visitor→visitor', 'visitor→member', 'member→member', 'member→visitor'],
          executions: ['member'],
          tierChanges: ['member→visitor', 'new→visitor', 'visitor→member'],
          outboxEmpty: true,
        });
      }
      const demotions = [...world.bus.notices.values()].filter((n) => n.kind === 'demoted');
      expect(demotions).toHaveLength(users.length);
    };

    it('a rerun of the same night changes nothing', async () => {
      const { world, users } = await membersInGrace(6);
      const first = await runReview(world.services(), SHARDS);
      expect(first).toMatchObject({ usersDue: 6, usersChanged: 6 });
      await expectDemotedOnce(world, users);
      const versions = await Promise.all(users.map(async (u) => (await userState(world, u)).version));

      // The scheduler fires again (or an operator reruns it): the checkpoint says the night is done.
      const rerun = await runReview(world.services(), SHARDS);
      expect(rerun).toMatchObject({ dates: [], usersDue: 0, usersChanged: 0 });
      // Even if the checkpoint had not been advanced (a crash before "advance"), the demoted users have left the
      // night's partition, so re-reviewing the night finds nothing to do.
      const checkpointLost = { ...world.store, getReviewCheckpoint: async () => '2026-03-14' };
      const again = await runReview(world.services({ store: checkpointLost }), SHARDS);
      expect(again.dates).toEqual(['2026-03-15']);
      expect(again.usersChanged).toBe(0);
      await expectDemotedOnce(world, users);
      expect(await Promise.all(users.map(async (u) => (await userState(world, u)).version))).toEqual(versions);
    });

    it('a review that crashed halfway resumes and demotes the rest, each once', async () => {
      const { world, users } = await membersInGrace(6);
      // The review Lambda dies on its 4th profile write; a dead process cannot list anyone for the next night either
      // (a failure it survives is isolated per user instead, see test/handlers/review.test.ts).
      const dying = withFaults(world.store, [
        { operation: 'saveProfile', call: 4, when: 'before', times: Infinity },
        { operation: 'deferReview', call: 1, when: 'before', times: Infinity },
      ]);
      await expect(runReview(world.services({ store: dying }), SHARDS, 1)).rejects.toBeInstanceOf(SimulatedCrash);
      const halfway = await Promise.all(users.map(async (u) => (await userState(world, u)).tier));
      expect(halfway.filter((t) => t === 'visitor')).toHaveLength(3);
      expect(await world.store.getReviewCheckpoint()).toBe('2026-03-14');

      const resumed = await runReview(world.services(), SHARDS);
      expect(resumed).toMatchObject({ usersDue: 3, usersChanged: 3 });
      await expectDemotedOnce(world, users);
    });
  });

  describe('15. a missing attribute with a negative operator decides nothing wrong (ingest end to end)', () => {
    const ruleset = (operator: 'notEqual' | 'notIn') =>
      testRuleset({
        tiers: testTiersFile(),
        rules: {
          ...testRules(),
          member: {
            conditions: { all: [{ fact: 'plan', operator, value: operator === 'notEqual' ? 'free' : ['free', 'trial'] }] },
            event: { type: 'qualifies', params: { tier: 'member' } },
          },
        },
      });

    it.each(['notEqual', 'notIn'] as const)('%s: no answer stays visitor; "pro" qualifies; "free" does not', async (operator) => {
      const world = await createIngestWorld(dynalite, { ruleset: ruleset(operator) });
      const records = recordsOf([
        opened('never-answered', daysAgo(0)),
        event('answered-pro', 'questionnaire.answered', daysAgo(0), { plan: 'pro', interests: [] }),
        event('answered-free', 'questionnaire.answered', daysAgo(0), { plan: 'free', interests: [] }),
      ]);
      expect(failedIds(await world.handler()(batch(records)))).toEqual([]);

      expect(await userState(world, 'never-answered')).toMatchObject({
        tier: 'visitor',
        version: 1,
        history: ['visitor→visitor'],
        tierChanges: ['new→visitor'],
      });
      expect(await userState(world, 'answered-pro')).toMatchObject({
        tier: 'member',
        version: 1,
        history: ['visitor→member'],
        tierChanges: ['new→member'],
      });
      expect(await userState(world, 'answered-free')).toMatchObject({
        tier: 'visitor',
        version: 1,
        history: ['visitor→visitor'],
        tierChanges: ['new→visitor'],
      });
    });
  });
});
