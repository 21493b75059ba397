/**
 * The world the reliability scenarios run in: the real ingest handler over the real DynamoDB store on dynalite,
 * fed SQS-shaped records that carry EventBridge envelopes, with recording stand-ins for Step Functions and the bus
 * (the AWS-only parts). Everything a scenario asserts on is read back from the table or from those recordings.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { expect } from 'vitest';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type DynamoTierStore, createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import type { DeadLetter, DeadLetterSender } from '../../functions/aws/sqs-dead-letter.js';
import { localDate } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { type TierServices, windowStart } from '../../functions/core/ingest.js';
import { type Facts, factsAt } from '../../functions/core/metrics.js';
import type { JourneyStarter, NoticePublisher, TierStore } from '../../functions/core/ports.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { JourneyRef, TierNotice, UserProfile } from '../../functions/core/state.js';
import { createIngestHandler, type IngestHandler } from '../../functions/handlers/ingest.js';
import type { DynaliteFixture } from '../helpers/dynalite-fixture.js';
import { testRuleset, testTiers, testTiersFile } from '../helpers/fixtures.js';
import { ManualClock } from '../helpers/memory-ports.js';
import { sqsRecord as sqsRecordSentAt } from '../helpers/sqs-records.js';

export const SHARDS = 4;

/** A one-send journey per tier, so that "an execution started" is observable for every promotion. */
export const welcomeJourney = (tier: string): Record<string, unknown> => ({
  id: `${tier}-welcome`,
  tier,
  name: `${tier} welcome`,
  start: 'welcome',
  settings: { holdoutPercent: 0 },
  steps: [
    { type: 'content', id: 'welcome', templateId: `${tier}-welcome-pack`, channel: 'email', next: 'done' },
    { type: 'exit', id: 'done' },
  ],
});

/** The test ladder (visitor → member → active → core) with a journey on every tier above the base. */
export const ladderWithJourneys: Ruleset = testRuleset({
  tiers: testTiersFile({
    tiers: testTiers({
      member: { journey: 'journeys/member.json' },
      active: { journey: 'journeys/active.json' },
      core: { journey: 'journeys/core.json' },
    }),
  }),
  extra: Object.fromEntries(['member', 'active', 'core'].map((tier) => [`journeys/${tier}.json`, JSON.stringify(welcomeJourney(tier))])),
});

/** Step Functions as ingest sees it: a start under an existing name is refused, and every call is counted. */
export class RecordingSfn implements JourneyStarter {
  readonly started = new Map<string, { journey: JourneyRef; userId: string }>();
  readonly startCalls: string[] = [];
  readonly stopped = new Set<string>();
  async start(journey: JourneyRef, userId: string): Promise<'started' | 'already-exists'> {
    this.startCalls.push(journey.executionName);
    if (this.started.has(journey.executionName)) return 'already-exists';
    this.started.set(journey.executionName, { journey, userId });
    return 'started';
  }
  async stop(executionName: string): Promise<void> {
    this.stopped.add(executionName);
  }
  executionsOf(userId: string): string[] {
    return [...this.started.values()].filter((e) => e.userId === userId).map((e) => `${e.journey.tier}`);
  }
}

/** The bus as ingest sees it: notices, kept by their stable noticeId, plus every publish call. */
export class RecordingBus implements NoticePublisher {
  readonly notices = new Map<string, TierNotice>();
  publishCalls = 0;
  async publishNotices(notices: TierNotice[]): Promise<void> {
    this.publishCalls += 1;
    for (const notice of notices) this.notices.set(notice.noticeId, notice);
  }
  tierChangesOf(userId: string): string[] {
    return [...this.notices.values()]
      .filter((n) => n.userId === userId && n.detailType === 'TierChanged')
      .map((n) => `${n.fromTier ?? 'new'}→${n.toTier}`)
      .sort();
  }
}

export class RecordingDeadLetters implements DeadLetterSender {
  readonly letters: DeadLetter[] = [];
  async sendToDeadLetter(letter: DeadLetter): Promise<void> {
    this.letters.push(letter);
  }
}

/** A logger and metrics that print nothing, for scenarios that do not look at the output. */
export const silentLogger = (): Logger => new Logger({ serviceName: 'strata-reliability', logLevel: 'SILENT' });
export function silentMetrics(): Metrics {
  const metrics = new Metrics({ namespace: 'StrataTest', serviceName: 'strata-reliability' });
  metrics.publishStoredMetrics = () => metrics;
  return metrics;
}

export interface IngestWorld {
  ruleset: Ruleset;
  tableName: string;
  /** The undecorated store on the world's table; what a fresh process would use. */
  store: DynamoTierStore;
  sfn: RecordingSfn;
  bus: RecordingBus;
  deadLetters: RecordingDeadLetters;
  clock: ManualClock;
  services(overrides?: Partial<Pick<TierServices, 'store' | 'journeys' | 'publisher'>>): TierServices;
  /** A freshly started ingest Lambda, optionally with decorated ports (the fault-injected ones). */
  handler(overrides?: Partial<Pick<TierServices, 'store' | 'journeys' | 'publisher'>>, logger?: Logger): IngestHandler;
}

export async function createIngestWorld(dynalite: DynaliteFixture, options: { ruleset?: Ruleset; now?: string } = {}): Promise<IngestWorld> {
  const ruleset = options.ruleset ?? ladderWithJourneys;
  const tableName = await dynalite.freshTable();
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: SHARDS, timeZone: ruleset.timezone });
  const sfn = new RecordingSfn();
  const bus = new RecordingBus();
  const deadLetters = new RecordingDeadLetters();
  const clock = new ManualClock(new Date(options.now ?? NOW));
  const services = (overrides: Partial<Pick<TierServices, 'store' | 'journeys' | 'publisher'>> = {}): TierServices => ({
    ruleset,
    store,
    journeys: sfn,
    publisher: bus,
    clock,
    ...overrides,
  });
  return {
    ruleset,
    tableName,
    store,
    sfn,
    bus,
    deadLetters,
    clock,
    services,
    handler: (overrides = {}, logger = silentLogger()) =>
      createIngestHandler({ services: services(overrides), deadLetters, logger, metrics: silentMetrics() }),
  };
}

/** Tuesday 10 March 2026, 10:00 UTC: every scenario's "now" unless it moves the clock. */
export const NOW = '2026-03-10T10:00:00.000Z';
export const daysAgo = (days: number, hour = 9): string => new Date(Date.parse(NOW) - days * 86_400_000 + (hour - 10) * 3_600_000).toISOString();

let sequence = 0;
export function event(userId: string, type: string, occurredAt: string, properties: Record<string, unknown> = {}, eventId?: string): UserEvent {
  sequence += 1;
  return { eventId: eventId ?? `evt-${sequence}`, userId, type, occurredAt, properties };
}
export const paid = (userId: string, amount: number, occurredAt = daysAgo(0)): UserEvent => event(userId, 'order.paid', occurredAt, { amount });
export const opened = (userId: string, occurredAt: string): UserEvent => event(userId, 'app.opened', occurredAt);

/** The EventBridge envelope the bus rule puts in the SQS body; `ebId` is the bus's own id (new on every PutEvents). */
export function envelope(
  userEvent: UserEvent | Record<string, unknown>,
  ebId = `eb-${String(userEvent['eventId' as keyof typeof userEvent] ?? 'x')}`,
): string {
  return JSON.stringify({
    version: '0',
    id: ebId,
    'detail-type': 'UserEvent',
    source: 'com.example.app',
    account: '123456789012',
    time: NOW,
    region: 'eu-west-1',
    resources: [],
    detail: userEvent,
  });
}

export function sqsRecord(messageId: string, body: string): SQSRecord {
  return sqsRecordSentAt(messageId, body, NOW);
}

/** One SQS record per event, message ids `m-<eventId>` unless given. */
export const recordsOf = (events: UserEvent[]): SQSRecord[] => events.map((e) => sqsRecord(`m-${e.eventId}`, envelope(e)));
export const batch = (records: SQSRecord[]): SQSEvent => ({ Records: records });
export const failedIds = (response: SQSBatchResponse): string[] => response.batchItemFailures.map((f) => f.itemIdentifier).sort();

export interface UserState {
  tier: string | undefined;
  version: number | undefined;
  /** Oldest first, as `from→to`. */
  history: string[];
  facts: Facts;
  /** The tiers whose journey was started for this user, in start order. */
  executions: string[];
  /** TierChanged notices published, as `from→to` (`new→tier` for a user's first profile), sorted. */
  tierChanges: string[];
  outboxEmpty: boolean;
}

/** Everything that tells whether an event was applied once: the profile, history, facts, executions and notices. */
export async function userState(
  world: Pick<IngestWorld, 'store' | 'ruleset' | 'clock' | 'sfn' | 'bus'>,
  userId: string,
  store: TierStore = world.store,
): Promise<UserState> {
  const now = world.clock.now();
  const { profile, buckets } = await store.loadUser(userId, windowStart(world.ruleset, now));
  const history = await store.listHistory(userId, 100);
  return {
    tier: profile?.tier,
    version: profile?.version,
    history: history.reverse().map((h) => `${h.fromTier}→${h.toTier}`),
    facts: factsAt(world.ruleset, buckets, profile?.attributes ?? {}, localDate(now, world.ruleset.timezone)),
    executions: world.sfn.executionsOf(userId),
    tierChanges: world.bus.tierChangesOf(userId),
    outboxEmpty: outboxIsEmpty(profile),
  };
}

export function outboxIsEmpty(profile: UserProfile | undefined): boolean {
  return (
    profile === undefined || (profile.outboxVersion === undefined && profile.pendingJourney === undefined && profile.pendingNotices === undefined)
  );
}

/**
 * The invariants of any run, whatever order concurrent deliveries took: every profile write is one history entry,
 * the history is a chain from the base tier to the current tier, every tier change was published once, and every
 * tier entered with a journey had that journey started exactly once.
 */
export function expectConsistent(state: UserState, ruleset: Ruleset, finalTier: string): void {
  expect(state.tier).toBe(finalTier);
  expect(state.history.length).toBe(state.version);
  const steps = state.history.map((h) => h.split('→') as [string, string]);
  expect(steps[0]?.[0]).toBe(ruleset.baseTier);
  steps.slice(1).forEach(([from], i) => expect(from).toBe(steps[i]![1]));
  expect(steps.at(-1)?.[1]).toBe(finalTier);
  const changes = steps.filter(([from, to], i) => i === 0 || from !== to);
  expect(state.tierChanges).toEqual(changes.map(([from, to], i) => `${i === 0 ? 'new' : from}→${to}`).sort());
  expect([...state.executions].sort()).toEqual(
    changes
      .map(([, to]) => to)
      .filter((tier) => ruleset.journeys[tier])
      .sort(),
  );
  expect(state.outboxEmpty).toBe(true);
}
