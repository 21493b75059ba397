import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { compileJourney, type AslDefinition } from '../../functions/core/journey/compile-journey.js';
import type { JourneyDefinition } from '../../functions/core/journey/journey-schema.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { TIERS, journeyDocument, loadShippedJourney } from '../helpers/journey-fixtures.js';

// asl-validator is CommonJS (`module.exports = validator`) and ships no types.
type AslValidator = (definition: unknown, options?: { checkArn?: boolean; checkPaths?: boolean }) => { isValid: boolean; errorsText(separator?: string): string };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const testJourney = (): JourneyDefinition => checkJourneyDocument('journeys/member.json', journeyDocument(), { tierIds: [...TIERS], expectedTier: 'member' }).journey!;

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
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
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
      Resource: '${JourneyStepFunctionArn}',
      Parameters: {
        journeyId: 'member-nurture',
        tier: 'member',
        stepId: 'group',
        'userId.$': '$.userId',
        'executionName.$': '$$.Execution.Name',
        'startedAt.$': '$$.Execution.StartTime',
      },
      ResultPath: '$.results.group',
      Retry: [
        {
          ErrorEquals: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException', 'Strata.Transient'],
          IntervalSeconds: 2,
          MaxAttempts: 6,
          BackoffRate: 2,
          MaxDelaySeconds: 60,
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
    expect(asl.States['Failed']).toEqual({
      Type: 'Fail',
      Comment: 'A step failed after its retries; the error is kept at $.failure.',
      ErrorPath: '$.failure.Error',
      CausePath: '$.failure.Cause',
    });
  });

  it('gives a branch the send time of its since step, and routes both arms', () => {
    const asl = compileJourney(loadShippedJourney('visitor'));
    const branch = asl.States['opened_cases'];
    expect(branch?.Type === 'Task' && branch.Parameters).toEqual({
      journeyId: 'visitor-welcome',
      tier: 'visitor',
      stepId: 'opened_cases',
      'userId.$': '$.userId',
      'executionName.$': '$$.Execution.Name',
      'startedAt.$': '$$.Execution.StartTime',
      'sinceSentAt.$': '$.results.beginner_cases.at',
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
