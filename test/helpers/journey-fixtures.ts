/**
 * Fixtures for journey tests: the shipped journeys, in-memory journey-step ports, override factories for
 * profiles and journeys, and a harness that runs compiled journeys on aws-local-stepfunctions with a virtual
 * clock.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { localDate } from '../../functions/core/dates.js';
import { hashPercent } from '../../functions/core/hash.js';
import type { DayBucket, UserProfile } from '../../functions/core/state.js';
import { compileJourney } from '../../functions/core/journey/compile-journey.js';
import type { JourneyAction } from '../../functions/core/journey/decide-journey-step.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { TransientJourneyError, type JourneyStepResult, type JourneyTaskInput } from '../../functions/core/journey/journey-task.js';
import { runJourneyStep, type JourneyStepPorts } from '../../functions/core/journey/run-journey-step.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { createVirtualClock, type VirtualClock } from '../../functions/local/clock.js';
import { createJourneyRunner, type JourneyRunner } from '../../functions/local/journey-runner.js';

export const TIERS = ['visitor', 'member', 'active', 'core'] as const;
export type Tier = (typeof TIERS)[number];
export const RULESET_TIME_ZONE = 'Asia/Shanghai';
export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

const projectDir = fileURLToPath(new URL('../../', import.meta.url));

export function readJourneyDocument(tier: Tier): unknown {
  return JSON.parse(readFileSync(`${projectDir}journeys/${tier}.json`, 'utf8'));
}

export function loadShippedJourney(tier: Tier): JourneyDefinition {
  const checked = checkJourneyDocument(`journeys/${tier}.json`, readJourneyDocument(tier), { tierIds: [...TIERS], expectedTier: tier });
  if (!checked.journey) throw new Error(`journeys/${tier}.json is invalid: ${JSON.stringify(checked.problems)}`);
  return checked.journey;
}

/** A small valid journey (content, wait, invite, wait, offer) with per-test overrides. */
export function journeyDocument(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'member-nurture',
    tier: 'member',
    name: 'Member nurture',
    start: 'welcome',
    settings: { holdoutPercent: 0 },
    steps: [
      { id: 'welcome', type: 'content', templateId: 'beginner-live-session-replay', channel: 'official-account', next: 'pause' },
      { id: 'pause', type: 'wait', days: 2, next: 'group' },
      { id: 'group', type: 'invite', groupId: 'pm-career-change-members', channel: 'direct-message', next: 'pause_again' },
      { id: 'pause_again', type: 'wait', days: 4, next: 'course' },
      { id: 'course', type: 'offer', offerId: 'pm-course-member-price', expiryDays: 5, channel: 'direct-message', next: 'done' },
      { id: 'done', type: 'exit' },
    ],
    ...overrides,
  };
}

export function profileFor(userId: string, tier: string, overrides: Partial<UserProfile> = {}): UserProfile {
  return {
    userId,
    tier,
    tierSince: '2026-03-01T00:00:00.000Z',
    tierEnteredBy: 'promotion',
    version: 1,
    attributes: {},
    ...overrides,
  };
}

/** The first user id of the form `${prefix}-N` that the journey's holdout does (or does not) pick. */
export function userIdFor(journey: Pick<JourneyDefinition, 'id' | 'settings'>, heldOut: boolean, prefix = 'user'): string {
  for (let n = 1; n < 10_000; n++) {
    const userId = `${prefix}-${n}`;
    if (hashPercent(`${userId}:${journey.id}`) < journey.settings.holdoutPercent === heldOut) return userId;
  }
  throw new Error('no such user id');
}

/** In-memory journey-step ports: profiles, day buckets with signals and send counts, and published actions. */
export function createMemoryJourneyPorts(clock: { now(): Date }, timeZone = RULESET_TIME_ZONE) {
  const profiles = new Map<string, UserProfile>();
  const buckets = new Map<string, Map<string, DayBucket>>();
  const recordedSends = new Set<string>();
  const published: JourneyAction[] = [];

  const bucketOf = (userId: string, date: string): DayBucket => {
    let days = buckets.get(userId);
    if (!days) buckets.set(userId, (days = new Map()));
    let bucket = days.get(date);
    if (!bucket) days.set(date, (bucket = { date, counters: {} }));
    return bucket;
  };

  const ports: JourneyStepPorts = {
    clock,
    store: {
      async loadUserForJourney(userId, sinceDate) {
        const days = [...(buckets.get(userId)?.values() ?? [])].filter((bucket) => bucket.date >= sinceDate);
        return { profile: structuredClone(profiles.get(userId)), buckets: structuredClone(days.sort((a, b) => (a.date < b.date ? -1 : 1))) };
      },
      async recordSend(userId, date, sendId) {
        const key = `${userId}|${sendId}`;
        if (recordedSends.has(key)) return false;
        recordedSends.add(key);
        const bucket = bucketOf(userId, date);
        bucket.sends = (bucket.sends ?? 0) + 1;
        return true;
      },
    },
    publisher: {
      async publishJourneyAction(action) {
        published.push(action);
      },
    },
  };

  return {
    ports,
    published,
    setProfile(profile: UserProfile): void {
      profiles.set(profile.userId, structuredClone(profile));
    },
    updateProfile(userId: string, change: Partial<UserProfile>): void {
      profiles.set(userId, { ...profiles.get(userId)!, ...change });
    },
    /** What ingest stores for an event that matches a signal filter. */
    addSignal(userId: string, filterId: string, occurredAt: Date): void {
      const bucket = bucketOf(userId, localDate(occurredAt, timeZone));
      bucket.signals = [...(bucket.signals ?? []), `${filterId}@${Math.floor(occurredAt.getTime() / 1000)}`];
    },
    /** Sends recorded by other journeys (or earlier runs) on a local date. */
    addSends(userId: string, date: string, count: number): void {
      const bucket = bucketOf(userId, date);
      bucket.sends = (bucket.sends ?? 0) + count;
    },
  };
}

export interface JourneyHarness {
  clock: VirtualClock;
  runner: JourneyRunner;
  memory: ReturnType<typeof createMemoryJourneyPorts>;
  taskCalls: JourneyTaskInput[];
  /** Makes the next call of the step function for `stepId` throw Strata.Transient after doing its work. */
  failOnceAfterWork(stepId: string): void;
  /** Makes the next call of the step function for `stepId` throw Strata.Transient before doing anything. */
  failOnceBeforeWork(stepId: string): void;
  /** Makes the next `times` calls for `stepId` throw an error named `errorName` (as Lambda reports it) before any work. */
  failBeforeWork(stepId: string, times: number, errorName: string): void;
  /** Deploys these journeys: new executions run them, running ones keep the version they started with. */
  deploy(journeys: JourneyDefinition[]): void;
}

/** Runs the given journeys (by tier) on aws-local-stepfunctions through the local runner, with a virtual clock. */
export function createJourneyHarness(journeys: JourneyDefinition[], start: string): JourneyHarness {
  const clock = createVirtualClock(start);
  const memory = createMemoryJourneyPorts(clock);
  const taskCalls: JourneyTaskInput[] = [];
  const failAfter = new Set<string>();
  const failBefore = new Set<string>();
  const failures = new Map<string, { times: number; errorName: string }>();
  const runStep = async (task: JourneyTaskInput): Promise<JourneyStepResult> => {
    taskCalls.push(task);
    const failure = failures.get(task.stepId);
    if (failure && failure.times > 0) {
      failure.times--;
      throw Object.assign(new Error(`step ${task.stepId}: ${failure.errorName}`), { name: failure.errorName });
    }
    if (failBefore.delete(task.stepId)) throw new TransientJourneyError(`step ${task.stepId}: store throttled`);
    const result = await runJourneyStep(memory.ports, { task, rulesetTimeZone: RULESET_TIME_ZONE });
    if (failAfter.delete(task.stepId)) throw new TransientJourneyError(`step ${task.stepId}: timed out after its work`);
    return result;
  };
  const compile = (list: JourneyDefinition[]) => Object.fromEntries(list.map((journey) => [journey.tier, compileJourney(journey)]));
  const runner = createJourneyRunner({ machines: compile(journeys), runStep, clock });
  return {
    clock,
    runner,
    memory,
    taskCalls,
    failOnceAfterWork: (stepId) => void failAfter.add(stepId),
    failOnceBeforeWork: (stepId) => void failBefore.add(stepId),
    failBeforeWork: (stepId, times, errorName) => void failures.set(stepId, { times, errorName }),
    deploy: (next) => runner.deploy(compile(next)),
  };
}

/** The actions as compact, readable tuples: [at, kind, item]. */
export function actionLines(actions: readonly JourneyAction[]): string[] {
  return actions.map((action) => {
    const item = action.kind === 'content' ? action.templateId : action.kind === 'invite' ? action.groupId : action.offerId;
    return `${action.at} ${action.kind} ${item}`;
  });
}
