import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { compileJourney, journeyVersion, type AslDefinition } from '../../functions/core/journey/compile-journey.js';
import type { BranchStep, JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { branchSignalFilter, conversionSignalFilter } from '../../functions/core/journey/signals.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { TIERS, journeyDocument, loadShippedJourney } from '../helpers/journey-fixtures.js';

// asl-validator is CommonJS (`module.exports = validator`) and ships no types.
type AslValidator = (
  definition: unknown,
  options?: { checkArn?: boolean; checkPaths?: boolean },
) => { isValid: boolean; errorsText(separator?: string): string };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const testJourney = (): JourneyDefinition =>
  checkJourneyDocument('journeys/member.json', journeyDocument(), { tierIds: [...TIERS], expectedTier: 'member' }).journey!;

/** asl-validator writes "QueryLanguage": "JSONPath" into the definition it checks, so it gets a copy. */
function validate(asl: AslDefinition): { isValid: boolean; errors: string } {
  const copy = structuredClone(asl);
  const result = aslValidator(copy, { checkArn: true, checkPaths: true });
  return { isValid: result.isValid, errors: result.errorsText('\n') };
}

/** The same object with every key order reversed, recursively. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}

function allKeys(value: unknown, keys = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((item) => allKeys(item, keys));
  else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      keys.add(key);
      allKeys(child, keys);
    }
  }
  return keys;
}

describe('compileJourney', () => {
  it.each(TIERS)('compiles journeys/%s.json to ASL that asl-validator accepts', (tier) => {
    expect(validate(compileJourney(loadShippedJourney(tier)))).toEqual({ isValid: true, errors: '' });
  });

  it('is deterministic: the same journey gives byte-identical JSON, whatever the key order of its input', () => {
    const journey = testJourney();
    const first = JSON.stringify(compileJourney(journey));
    expect(JSON.stringify(compileJourney(journey))).toBe(first);
    expect(JSON.stringify(compileJourney(reverseKeys(journey) as JourneyDefinition))).toBe(first);
  });

  it.each(TIERS)('uses JSONPath only in journeys/%s.json: no QueryLanguage, JSONata or Assign', (tier) => {
    const asl = compileJourney(loadShippedJourney(tier));
    const keys = allKeys(asl);
    for (const forbidden of ['QueryLanguage', 'Assign', 'Arguments', 'Output', 'Condition', 'Items']) expect(keys.has(forbidden)).toBe(false);
    expect(JSON.stringify(asl)).not.toContain('{%');
  });

  it('asl-validator writes QueryLanguage into what it checks (why the tests and the runner pass it a copy)', () => {
    const asl = compileJourney(testJourney());
    aslValidator(asl);
    expect(asl.States['welcome']).toHaveProperty('QueryLanguage', 'JSONPath');
  });

  it('makes each send one Task on the placeholder resource, then a Choice on its outcome', () => {
    const asl = compileJourney(testJourney());
    expect(asl.StartAt).toBe('welcome');
    expect(Object.entries(asl.States).map(([name, state]) => `${name}:${state.Type}`)).toEqual([
      'welcome:Task',
      'welcome.outcome:Choice',
      'welcome.deferred:Wait',
      'pause:Wait',
      'group:Task',
      'group.outcome:Choice',
      'group.deferred:Wait',
      'pause_again:Wait',
      'course:Task',
      'course.outcome:Choice',
      'course.deferred:Wait',
      'done:Succeed',
      'Exited:Succeed',
      'Failed:Fail',
    ]);
    expect(asl.States['group']).toEqual({
      Type: 'Task',
      Comment: 'Invite to group pm-career-change-members via direct-message',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation definitionSubstitutions placeholder, not a JS template
      Resource: '${JourneyStepFunctionArn}',
      // The step travels in the definition, so an execution keeps the version it started with.
      Parameters: {
        journeyId: 'member-nurture',
        journeyVersion: journeyVersion(testJourney()),
        tier: 'member',
        stepId: 'group',
        settings: { holdoutPercent: 0 },
        step: { type: 'invite', groupId: 'pm-career-change-members', channel: 'direct-message' },
        'userId.$': '$.userId',
        'executionName.$': '$$.Execution.Name',
        'startedAt.$': '$$.Execution.StartTime',
        // The execution data, for the journey counters of the Task that ends the execution.
        'state.$': '$',
      },
      ResultPath: '$.results.group',
      Retry: [
        {
          ErrorEquals: [
            'Lambda.TooManyRequestsException',
            'Lambda.ServiceException',
            'Lambda.AWSLambdaException',
            'Lambda.SdkClientException',
            'Lambda.ClientExecutionTimeoutException',
            'Lambda.Unknown',
            'Sandbox.Timedout',
            'Strata.Transient',
          ],
          IntervalSeconds: 2,
          MaxAttempts: 24,
          BackoffRate: 2,
          MaxDelaySeconds: 300,
          JitterStrategy: 'FULL',
        },
      ],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Failed' }],
      Next: 'group.outcome',
    });
    expect(asl.States['group.outcome']).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.results.group.outcome', StringEquals: 'sent', Next: 'pause_again' },
        { Variable: '$.results.group.outcome', StringEquals: 'deferred', Next: 'group.deferred' },
        { Variable: '$.results.group.outcome', StringEquals: 'exit', Next: 'Exited' },
      ],
    });
    expect(asl.States['group.deferred']).toEqual({
      Type: 'Wait',
      Comment: 'Deferred by quiet hours, the frequency cap or a pending engagement; then check again',
      TimestampPath: '$.results.group.until',
      Next: 'group',
    });
    expect(asl.States['pause_again']).toEqual({ Type: 'Wait', Comment: 'Wait 4 days', Seconds: 345_600, Next: 'course' });
    // Only the last send knows the execution ends after it (its next is the exit): its Task counts the journey.
    expect(asl.States['course']?.Type === 'Task' && asl.States['course'].Parameters['endsOn']).toEqual(['sent']);
    expect(asl.States['welcome']?.Type === 'Task' && asl.States['welcome'].Parameters).not.toHaveProperty('endsOn');
    expect(asl.States['Failed']).toEqual({
      Type: 'Fail',
      Comment: 'A step failed after its retries; the error is kept at $.failure.',
      ErrorPath: '$.failure.Error',
      CausePath: '$.failure.Cause',
    });
  });

  it('retries throttling for at least 15 minutes with jittered backoff, and gives up within 2 hours', () => {
    const task = compileJourney(testJourney()).States['welcome'];
    if (task?.Type !== 'Task') throw new Error('welcome is not a Task');
    const throttling = [
      'Lambda.TooManyRequestsException',
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.ClientExecutionTimeoutException',
      'Lambda.Unknown',
      'Sandbox.Timedout',
      'Strata.Transient',
    ];
    for (const error of throttling)
      expect(
        task.Retry.find((retrier) => retrier.ErrorEquals.includes(error)),
        error,
      ).toBeDefined();
    const [retrier] = task.Retry;
    expect(task.Retry).toHaveLength(1);
    // Step Functions pauses min(IntervalSeconds × BackoffRate^k, MaxDelaySeconds) before retry k; with FULL jitter
    // each pause is uniform between 0 and that. Uniform pauses are sub-Gaussian with their own variance (d²/12),
    // so P(total < mean − t) ≤ exp(−t² / (2 Σ d²/12)), a Chernoff bound.
    const pauses = Array.from({ length: retrier!.MaxAttempts }, (_, k) =>
      Math.min(retrier!.IntervalSeconds * retrier!.BackoffRate ** k, retrier!.MaxDelaySeconds),
    );
    const nominal = pauses.reduce((sum, pause) => sum + pause, 0);
    const mean = retrier!.JitterStrategy === 'FULL' ? nominal / 2 : nominal;
    const variance = retrier!.JitterStrategy === 'FULL' ? pauses.reduce((sum, pause) => sum + (pause * pause) / 12, 0) : 0;
    const fifteenMinutes = 15 * 60;
    expect(mean).toBeGreaterThan(fifteenMinutes);
    const chanceUnderFifteenMinutes = variance === 0 ? 0 : Math.exp(-((mean - fifteenMinutes) ** 2) / (2 * variance));
    expect(chanceUnderFifteenMinutes).toBeLessThan(1e-5);
    expect(nominal).toBeLessThanOrEqual(2 * 3600);
  });

  it('compiles every Task with a retry list validated by asl-validator, MaxDelaySeconds and JitterStrategy included', () => {
    const asl = compileJourney(loadShippedJourney('visitor'));
    const tasks = Object.values(asl.States).filter((state) => state.Type === 'Task');
    expect(tasks.length).toBeGreaterThan(0);
    for (const task of tasks) expect(task.Type === 'Task' && task.Retry[0]).toMatchObject({ MaxDelaySeconds: 300, JitterStrategy: 'FULL' });
    expect(validate(asl)).toEqual({ isValid: true, errors: '' });
  });

  it('gives a branch the send time of its since step, and routes both arms', () => {
    const asl = compileJourney(loadShippedJourney('visitor'));
    const branch = asl.States['opened_cases'];
    const journey = loadShippedJourney('visitor');
    const openedCases = journey.steps.find((step) => step.id === 'opened_cases') as BranchStep;
    expect(branch?.Type === 'Task' && branch.Parameters).toEqual({
      journeyId: 'visitor-welcome',
      journeyVersion: journeyVersion(journey),
      tier: 'visitor',
      stepId: 'opened_cases',
      settings: {
        holdoutPercent: 10,
        conversionSignal: conversionSignalFilter(journey.settings.exitOn.conversion!).id,
        quietHours: { start: '21:00', end: '08:00', timezone: 'Asia/Shanghai', timezoneAttribute: 'timezone' },
        frequencyCap: { maxSends: 3, days: 7 },
      },
      step: { type: 'branch', engagementSignal: branchSignalFilter(journey, openedCases)!.id, timeoutDays: openedCases.timeoutDays },
      'userId.$': '$.userId',
      'executionName.$': '$$.Execution.Name',
      'startedAt.$': '$$.Execution.StartTime',
      'sinceSentAt.$': '$.results.beginner_cases.at',
      'state.$': '$',
    });
    expect(asl.States['opened_cases.outcome']).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.results.opened_cases.outcome', StringEquals: 'engaged', Next: 'career_change_group' },
        { Variable: '$.results.opened_cases.outcome', StringEquals: 'not-engaged', Next: 'success_story' },
        { Variable: '$.results.opened_cases.outcome', StringEquals: 'deferred', Next: 'opened_cases.deferred' },
        { Variable: '$.results.opened_cases.outcome', StringEquals: 'exit', Next: 'Exited' },
      ],
    });
  });

  it('turns a wait until a local time into a Task that works out the instant, then a Wait on it', () => {
    const asl = compileJourney(loadShippedJourney('core'));
    expect(asl.States['evening.outcome']).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.results.evening.outcome', StringEquals: 'wait', Next: 'evening.until' },
        { Variable: '$.results.evening.outcome', StringEquals: 'exit', Next: 'Exited' },
      ],
    });
    expect(asl.States['evening.until']).toEqual({
      Type: 'Wait',
      Comment: "Wait until 19:30 in the user's time zone",
      TimestampPath: '$.results.evening.until',
      Next: 'loyalty_price',
    });
  });
});
