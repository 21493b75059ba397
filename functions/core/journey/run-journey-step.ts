/**
 * One journey step, end to end: load the user, decide, and for a send, record it and publish the action.
 * The same function runs behind the Task state in Lambda and in the local runner; only the ports differ.
 */
import { type AnalyticsCounters, type ExecutionTally, executionTally, journeyStepCount, keptStepResults } from '../analytics.js';
import { localDate } from '../dates.js';
import type { DayBucket, UserProfile } from '../state.js';
import type { TallyQueue } from '../tally-batches.js';
import { decideJourneyStep, journeyLookbackDate, toStepResult, type JourneyAction } from './decide-journey-step.js';
import type { JourneyStepResult, JourneyStepSpec, JourneyTaskInput } from './journey-task.js';

export interface JourneyStepStore {
  /** The profile (if any) and the day buckets dated from `sinceDate` on. */
  loadUserForJourney(userId: string, sinceDate: string): Promise<{ profile: UserProfile | undefined; buckets: DayBucket[] }>;
  /** Counts a send in that day's bucket, once per sendId; false if this sendId was already recorded. */
  recordSend(userId: string, date: string, sendId: string): Promise<boolean>;
}

export interface JourneyActionPublisher {
  publishJourneyAction(action: JourneyAction): Promise<void>;
}

export interface JourneyStepPorts {
  store: JourneyStepStore;
  publisher: JourneyActionPublisher;
  clock: { now(): Date };
  /** The per-step journey counters of old definitions (see analytics.ts); absent where nothing reports on them. */
  counters?: Pick<AnalyticsCounters, 'addJourneyStep'>;
  /** Where an ended execution's tally waits for the nightly count (core/tally-batches.ts); absent: not counted. */
  tallies?: TallyQueue;
}

export interface JourneyStepRequest {
  /** The Task's input: the step as compiled into the execution's journey version, and the execution's values. */
  task: JourneyTaskInput;
  rulesetTimeZone: string;
}

export async function runJourneyStep(ports: JourneyStepPorts, request: JourneyStepRequest): Promise<JourneyStepResult> {
  const { task, rulesetTimeZone } = request;
  const now = ports.clock.now();
  const spec = journeyStepSpecOf(task);
  const execution = { executionName: task.executionName, tier: task.tier, startedAt: task.startedAt };
  const sinceDate = journeyLookbackDate({ spec, execution, now, rulesetTimeZone, ...(task.sinceSentAt ? { sinceSentAt: task.sinceSentAt } : {}) });
  const { profile, buckets } = await ports.store.loadUserForJourney(task.userId, sinceDate);
  const decision = decideJourneyStep({
    spec,
    execution,
    userId: task.userId,
    profile,
    buckets,
    now,
    rulesetTimeZone,
    ...(task.sinceSentAt ? { sinceSentAt: task.sinceSentAt } : {}),
  });
  const today = localDate(now, rulesetTimeZone);
  if (task.state !== undefined) return runCountedAtEnd(ports, request, decision, today);
  const result = toStepResult(decision);
  const count = journeyStepCount(task, result, today);
  if (decision.outcome === 'sent') {
    const { action } = decision;
    // Counted only when the send is recorded for the first time, and before publishing: a step retried after a
    // failed publish records nothing new, so it neither loses nor repeats the count. Test actions count nothing.
    const firstRecord = await ports.store.recordSend(task.userId, today, action.actionId);
    if (firstRecord && action.test !== true && count) await ports.counters?.addJourneyStep(count);
    // Publish even when the send was already recorded: a previous attempt may have recorded it and then failed
    // before publishing (the state machine retries the Task). Skipping would lose the action; publishing again
    // is at-least-once delivery, and the stable actionId lets the channels drop the duplicate.
    await ports.publisher.publishJourneyAction(action);
  } else if (count) {
    await ports.counters?.addJourneyStep(count);
  }
  return result;
}

/**
 * A step of an execution whose state the Task sees: the step's deferrals travel in its result, and only the Task
 * that ends the execution counts, once for all its steps (core/analytics.ts executionTally): it puts the tally, under
 * the execution's id, on the tally queue, and the nightly count drops the copies a retried Task enqueues again.
 */
async function runCountedAtEnd(
  ports: JourneyStepPorts,
  request: JourneyStepRequest,
  decision: ReturnType<typeof decideJourneyStep>,
  today: string,
): Promise<JourneyStepResult> {
  const { task, rulesetTimeZone } = request;
  const results = keptStepResults(task.state);
  const previous = results[task.stepId];
  const deferredBefore = previous?.outcome === 'deferred' ? (previous.deferrals ?? 1) : 0;
  const decided = toStepResult(decision);
  const result: JourneyStepResult =
    decided.outcome === 'deferred'
      ? { ...decided, deferrals: deferredBefore + 1 }
      : (decided.outcome === 'sent' || decided.outcome === 'exit') && deferredBefore > 0
        ? { ...decided, deferrals: deferredBefore }
        : decided;
  const ends = result.outcome === 'exit' || (task.endsOn ?? []).some((outcome) => outcome === result.outcome);
  const test = decision.outcome === 'sent' && decision.action.test === true;
  const tally: ExecutionTally | undefined =
    ends && !test && ports.tallies ? executionTally({ timezone: rulesetTimeZone }, task, { ...results, [task.stepId]: { ...result } }) : undefined;
  if (decision.outcome === 'sent') {
    const { action } = decision;
    await ports.store.recordSend(task.userId, today, action.actionId);
    // Queued before publishing, under the execution's id: a step retried after a failed publish queues a copy,
    // which the nightly count drops.
    if (tally) await ports.tallies?.enqueue(tally);
    // Publish even when the send was already recorded (see runJourneyStep): at-least-once, deduplicated by actionId.
    await ports.publisher.publishJourneyAction(action);
  } else if (tally) {
    await ports.tallies?.enqueue(tally);
  }
  return result;
}

/** The pinned step inside a Task's input. */
export function journeyStepSpecOf(task: JourneyTaskInput): JourneyStepSpec {
  const { journeyId, journeyVersion, tier, stepId, settings, step } = task;
  return { journeyId, journeyVersion, tier, stepId, settings, step };
}
