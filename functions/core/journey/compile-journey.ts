/**
 * Compiles a validated journey into Amazon States Language for Step Functions (and for aws-local-stepfunctions,
 * which runs the same definition locally).
 *
 * Shape, per step:
 * - content / invite / offer / branch / local-time wait: ONE Task (the journey-step function) then a Choice on
 *   its `outcome`. A `deferred` outcome goes to a Wait on the returned `until`, then back to the same Task, so a
 *   deferred send is re-checked (and never dropped).
 * - a duration wait: one Wait state. An exit: one Succeed state.
 * - guard exits (tier change, conversion, opt-out, holdout) share one Succeed state; any error that survives the
 *   retries is caught into `$.failure` and the execution fails with that error and cause.
 *
 * Version pinning: each Task's Parameters carry its step as constants (journeyStepSpec: the template, group or
 * offer, the channel, the guards, quiet hours, frequency cap and holdout), and the journey-step function decides
 * from those alone. Step Functions runs an execution on the definition it started with, so a deploy changes what
 * new executions do and never what running ones do.
 *
 * JSONPath only: no QueryLanguage, no JSONata, no Assign (aws-local-stepfunctions silently ignores Assign).
 * Task results are kept at `$.results.<stepId>`, so a branch can pass the send time of its `since` step.
 * Output is deterministic: states and keys are emitted in a fixed order, so the same journey gives
 * byte-identical JSON and the deployed definition only changes when the journey does.
 */
import { assertNever } from '../errors.js';
import { canonicalJson, shortHash } from '../hash.js';
import type { JourneyDefinition, JourneyStep } from './journey-schema.js';
import { LAMBDA_TASK_RETRY, LAMBDA_TRANSIENT_ERRORS, type TaskRetrier } from '../lambda-task-retry.js';
import { TRANSIENT_ERROR, type JourneyOutcome, type JourneyStepSettings, type JourneyStepSpec, type TaskStep } from './journey-task.js';
import { branchSignalFilter, conversionSignalFilter } from './signals.js';

/** Substituted with the journey-step Lambda ARN by the CDK stack (`definitionSubstitutions`). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation definitionSubstitutions placeholder, not a JS template
export const JOURNEY_STEP_RESOURCE = '${JourneyStepFunctionArn}';
export const EXITED_STATE = 'Exited';
export const FAILED_STATE = 'Failed';

export type AslRetrier = TaskRetrier;

export interface AslCatcher {
  ErrorEquals: string[];
  ResultPath: string;
  Next: string;
}

export interface AslChoiceRule {
  Variable: string;
  StringEquals: string;
  Next: string;
}

export type AslState =
  | {
      Type: 'Task';
      Comment: string;
      Resource: string;
      Parameters: Record<string, unknown>;
      ResultPath: string;
      Retry: AslRetrier[];
      Catch: AslCatcher[];
      Next: string;
    }
  | { Type: 'Choice'; Choices: AslChoiceRule[] }
  | { Type: 'Wait'; Comment: string; Seconds: number; Next: string }
  | { Type: 'Wait'; Comment: string; TimestampPath: string; Next: string }
  | { Type: 'Succeed'; Comment: string }
  | { Type: 'Fail'; Comment: string; ErrorPath: string; CausePath: string };

export interface AslDefinition {
  Comment: string;
  StartAt: string;
  States: Record<string, AslState>;
}

/**
 * Errors worth retrying: Lambda's throttling and its own transient failures (including a sandbox that timed out
 * or died, which a fresh one usually survives), and the step function's TransientJourneyError (a throttled table
 * or bus).
 */
/** Lambda's transient failures, and the step's own "try again" (a store throttled, say). */
export const TRANSIENT_ERRORS = [...LAMBDA_TRANSIENT_ERRORS, TRANSIENT_ERROR];

/**
 * The shared Lambda Task policy (at least 15 minutes of backoff, capped at 5 minutes a pause), stretched for
 * journeys: a burst throttles many executions at once, so full jitter spreads their retries, and 24 attempts keep
 * the window long despite it: 88 minutes nominal, about 44 on average, and the chance it is under 15 minutes is
 * below 1 in 100,000 (a Chernoff bound, checked in the compiler's tests). The nightly review is one execution, so
 * it keeps the unjittered policy, whose window is guaranteed.
 */
const RETRY: AslRetrier[] = [{ ...LAMBDA_TASK_RETRY, ErrorEquals: TRANSIENT_ERRORS, MaxAttempts: 24, JitterStrategy: 'FULL' }];
const CATCH: AslCatcher[] = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: FAILED_STATE }];

export const resultPath = (stepId: string): string => `$.results.${stepId}`;
export const outcomeStateName = (stepId: string): string => `${stepId}.outcome`;
export const deferredStateName = (stepId: string): string => `${stepId}.deferred`;
export const untilStateName = (stepId: string): string => `${stepId}.until`;

/** A content hash of a journey definition: the version its executions are pinned to, shown in their Task input. */
export function journeyVersion(definition: JourneyDefinition): string {
  return shortHash(canonicalJson(definition), 12);
}

/**
 * What a step's Task passes to the journey-step function: everything decideJourneyStep needs, in a fixed key
 * order (so the compiled JSON is byte-stable). Only steps with a Task have one: sends, branches and local-time
 * waits.
 */
export function journeyStepSpec(definition: JourneyDefinition, stepId: string, version = journeyVersion(definition)): JourneyStepSpec {
  const step = definition.steps.find((candidate) => candidate.id === stepId);
  if (!step) throw new Error(`compileJourney: journey "${definition.id}" has no step "${stepId}"; validate the journey before compiling it`);
  return {
    journeyId: definition.id,
    journeyVersion: version,
    tier: definition.tier,
    stepId,
    settings: stepSettings(definition),
    step: taskStep(definition, step),
  };
}

function stepSettings(definition: JourneyDefinition): JourneyStepSettings {
  const { holdoutPercent, exitOn, quietHours, frequencyCap } = definition.settings;
  const settings: JourneyStepSettings = { holdoutPercent };
  if (exitOn.conversion) settings.conversionSignal = conversionSignalFilter(exitOn.conversion).id;
  if (quietHours) {
    settings.quietHours = {
      start: quietHours.start,
      end: quietHours.end,
      ...(quietHours.timezone !== undefined ? { timezone: quietHours.timezone } : {}),
      timezoneAttribute: quietHours.timezoneAttribute,
    };
  }
  if (frequencyCap) settings.frequencyCap = { maxSends: frequencyCap.maxSends, days: frequencyCap.days };
  return settings;
}

function taskStep(definition: JourneyDefinition, step: JourneyStep): TaskStep {
  const noTask = (): never => {
    throw new Error(`compileJourney: step "${step.id}" of journey "${definition.id}" is a ${step.type} step, which has no Task`);
  };
  switch (step.type) {
    case 'content':
      return { type: 'content', templateId: step.templateId, channel: step.channel };
    case 'invite':
      return { type: 'invite', groupId: step.groupId, channel: step.channel };
    case 'offer':
      return { type: 'offer', offerId: step.offerId, expiryDays: step.expiryDays, channel: step.channel };
    case 'branch': {
      const filter = branchSignalFilter(definition, step);
      if (!filter)
        throw new Error(
          `compileJourney: branch "${step.id}" of journey "${definition.id}" has no engagement signal; validate the journey before compiling it`,
        );
      return { type: 'branch', engagementSignal: filter.id, timeoutDays: step.timeoutDays };
    }
    case 'wait':
      return step.untilLocalTime !== undefined ? { type: 'wait', untilLocalTime: step.untilLocalTime } : noTask();
    case 'exit':
      return noTask();
    default:
      return assertNever(step, 'journey step');
  }
}

export function compileJourney(definition: JourneyDefinition): AslDefinition {
  const byId = new Map(definition.steps.map((step) => [step.id, step]));
  const version = journeyVersion(definition);
  const states: Record<string, AslState> = {};
  for (const step of definition.steps) Object.assign(states, compileStep({ definition, version }, step, byId));
  states[EXITED_STATE] = { Type: 'Succeed', Comment: 'A guard ended the journey: tier change, conversion, opt-out or holdout.' };
  states[FAILED_STATE] = {
    Type: 'Fail',
    Comment: 'A step failed after its retries; the error is kept at $.failure.',
    ErrorPath: '$.failure.Error',
    CausePath: '$.failure.Cause',
  };
  return {
    Comment: `Strata journey "${definition.id}" version ${version} for tier ${definition.tier} (${definition.name}). Compiled from the journey JSON; edit that, not this.`,
    StartAt: definition.start,
    States: states,
  };
}

interface VersionedJourney {
  definition: JourneyDefinition;
  version: string;
}

function compileStep(journey: VersionedJourney, step: JourneyStep, byId: ReadonlyMap<string, JourneyStep>): Record<string, AslState> {
  switch (step.type) {
    case 'content':
      return taskWithChoice(journey, step, byId, `Send content ${step.templateId} via ${step.channel}`, {}, [
        ['sent', step.next],
        ['deferred', deferredStateName(step.id)],
      ]);
    case 'invite':
      return taskWithChoice(journey, step, byId, `Invite to group ${step.groupId} via ${step.channel}`, {}, [
        ['sent', step.next],
        ['deferred', deferredStateName(step.id)],
      ]);
    case 'offer':
      return taskWithChoice(journey, step, byId, `Offer ${step.offerId} (valid ${step.expiryDays} days) via ${step.channel}`, {}, [
        ['sent', step.next],
        ['deferred', deferredStateName(step.id)],
      ]);
    case 'branch': {
      const since = byId.get(step.since);
      const what = since?.type === 'invite' ? `group ${since.groupId}` : since?.type === 'content' ? `content ${since.templateId}` : step.since;
      return taskWithChoice(
        journey,
        step,
        byId,
        `Branch on ${step.signal} of ${what} within ${step.timeoutDays} days of step ${step.since}`,
        { 'sinceSentAt.$': `${resultPath(step.since)}.at` },
        [
          ['engaged', step.engaged],
          ['not-engaged', step.notEngaged],
          ['deferred', deferredStateName(step.id)],
        ],
      );
    }
    case 'wait':
      if (step.untilLocalTime !== undefined) {
        return {
          ...taskWithChoice(journey, step, byId, `Find the next ${step.untilLocalTime} in the user's time zone`, {}, [
            ['wait', untilStateName(step.id)],
          ]),
          [untilStateName(step.id)]: {
            Type: 'Wait',
            Comment: `Wait until ${step.untilLocalTime} in the user's time zone`,
            TimestampPath: `${resultPath(step.id)}.until`,
            Next: step.next,
          },
        };
      }
      return {
        [step.id]: {
          Type: 'Wait',
          Comment: `Wait ${describeDuration(step.days ?? 0, step.hours ?? 0)}`,
          Seconds: (step.days ?? 0) * 86_400 + (step.hours ?? 0) * 3_600,
          Next: step.next,
        },
      };
    case 'exit':
      return { [step.id]: { Type: 'Succeed', Comment: step.description ?? 'End of the journey' } };
    default:
      return assertNever(step, 'journey step');
  }
}

/**
 * A step's Task and the Choice on its outcome. `exit` always goes to the shared exit state; an outcome the
 * Choice does not list fails the execution (States.NoChoiceMatched) rather than being taken for an exit.
 */
function taskWithChoice(
  journey: VersionedJourney,
  step: JourneyStep,
  byId: ReadonlyMap<string, JourneyStep>,
  comment: string,
  extraParameters: Record<string, string>,
  routes: Array<[JourneyOutcome, string]>,
): Record<string, AslState> {
  const outcomeVariable = `${resultPath(step.id)}.outcome`;
  // A local-time wait's route goes through its own Wait state, then on to the step's next.
  const targetStep = (outcome: JourneyOutcome, next: string): string => (outcome === 'wait' && 'next' in step ? step.next : next);
  const endsOn = routes
    .filter(([outcome, next]) => outcome !== 'deferred' && endsWithoutTask(targetStep(outcome, next), byId))
    .map(([outcome]) => outcome);
  const states: Record<string, AslState> = {
    [step.id]: {
      Type: 'Task',
      Comment: comment,
      Resource: JOURNEY_STEP_RESOURCE,
      Parameters: {
        ...journeyStepSpec(journey.definition, step.id, journey.version),
        'userId.$': '$.userId',
        'executionName.$': '$$.Execution.Name',
        'startedAt.$': '$$.Execution.StartTime',
        ...extraParameters,
        // The execution data, so that the Task that ends the execution counts all its steps in one write.
        'state.$': '$',
        ...(endsOn.length > 0 ? { endsOn } : {}),
      },
      ResultPath: resultPath(step.id),
      // Fresh copies per state, so that a caller editing one state (a test, the CDK) cannot change another.
      Retry: RETRY.map((retrier) => ({ ...retrier, ErrorEquals: [...retrier.ErrorEquals] })),
      Catch: CATCH.map((catcher) => ({ ...catcher, ErrorEquals: [...catcher.ErrorEquals] })),
      Next: outcomeStateName(step.id),
    },
    [outcomeStateName(step.id)]: {
      Type: 'Choice',
      Choices: [...routes, ['exit', EXITED_STATE] as [JourneyOutcome, string]].map(([outcome, next]) => ({
        Variable: outcomeVariable,
        StringEquals: outcome,
        Next: next,
      })),
    },
  };
  if (routes.some(([outcome]) => outcome === 'deferred')) {
    states[deferredStateName(step.id)] = {
      Type: 'Wait',
      Comment: 'Deferred by quiet hours, the frequency cap or a pending engagement; then check again',
      TimestampPath: `${resultPath(step.id)}.until`,
      Next: step.id,
    };
  }
  return states;
}

/** Whether the execution ends from this step on without another Task: only duration Waits lead to an exit step. */
function endsWithoutTask(stepId: string, byId: ReadonlyMap<string, JourneyStep>): boolean {
  const seen = new Set<string>();
  for (let id: string | undefined = stepId; id !== undefined && !seen.has(id); ) {
    seen.add(id);
    const step = byId.get(id);
    if (step?.type === 'exit') return true;
    if (step?.type !== 'wait' || step.untilLocalTime !== undefined) return false;
    id = step.next;
  }
  return false;
}

export function describeDuration(days: number, hours: number): string {
  const parts: string[] = [];
  if (days > 0) parts.push(`${days} day${days === 1 ? '' : 's'}`);
  if (hours > 0) parts.push(`${hours} hour${hours === 1 ? '' : 's'}`);
  return parts.join(' ') || '0 hours';
}
