/**
 * Version pinning, end to end on the local runner: the compiled ASL runs on aws-local-stepfunctions, and every
 * Task goes through the journey-step handler with the baked-in ruleset, as in the local stack. A deploy swaps both
 * (the handler's ruleset and the state machine definitions). An execution that started before it finishes on the
 * version it started with; one that starts after it runs the new version.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { compileJourney, journeyVersion } from '../../functions/core/journey/compile-journey.js';
import type { JourneyStepResult, JourneyTaskInput } from '../../functions/core/journey/journey-task.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import { createJourneyStepHandler } from '../../functions/handlers/journey-step.js';
import { createVirtualClock } from '../../functions/local/clock.js';
import { createJourneyRunner } from '../../functions/local/journey-runner.js';
import { testRuleset, testTiers, testTiersFile } from '../helpers/fixtures.js';
import { DAY_MS, actionLines, createMemoryJourneyPorts, journeyDocument, profileFor } from '../helpers/journey-fixtures.js';

const T0 = '2026-03-02T02:00:00.000Z';
const at = (days: number): string => new Date(Date.parse(T0) + days * DAY_MS).toISOString();

/** Version 1: the small member journey of the fixtures, with its own content and a case study in the middle. */
const VERSION_1 = journeyDocument({
  steps: [
    { id: 'welcome', type: 'content', templateId: 'replay-v1', channel: 'official-account', next: 'pause' },
    { id: 'pause', type: 'wait', days: 2, next: 'case_study' },
    { id: 'case_study', type: 'content', templateId: 'case-study-v1', channel: 'official-account', next: 'pause_again' },
    { id: 'pause_again', type: 'wait', days: 4, next: 'course' },
    { id: 'course', type: 'offer', offerId: 'course-price-v1', expiryDays: 5, channel: 'direct-message', next: 'done' },
    { id: 'done', type: 'exit' },
  ],
});

/** Version 2: new content, a longer first wait, the case study renamed (and rewritten), a new offer. */
const VERSION_2 = {
  ...VERSION_1,
  steps: [
    { id: 'welcome', type: 'content', templateId: 'replay-v2', channel: 'official-account', next: 'pause' },
    { id: 'pause', type: 'wait', days: 3, next: 'success_story' },
    { id: 'success_story', type: 'content', templateId: 'success-story-v2', channel: 'mini-program', next: 'pause_again' },
    { id: 'pause_again', type: 'wait', days: 4, next: 'course' },
    { id: 'course', type: 'offer', offerId: 'course-price-v2', expiryDays: 5, channel: 'direct-message', next: 'done' },
    { id: 'done', type: 'exit' },
  ],
};

function rulesetWith(journey: Record<string, unknown>): Ruleset {
  return testRuleset({
    tiers: testTiersFile({ tiers: testTiers({ member: { journey: 'journeys/member.json' } }) }),
    extra: { 'journeys/member.json': JSON.stringify(journey) },
  });
}

describe('journey version pinning on the local runner', () => {
  it('a running execution sends its start version; a new one sends the deployed version', async () => {
    const clock = createVirtualClock(T0);
    const memory = createMemoryJourneyPorts(clock, 'UTC');
    const quiet = new Logger({ serviceName: 'strata-journey-step-test', logLevel: 'SILENT' });
    const handlerFor = (ruleset: Ruleset) => createJourneyStepHandler({ ruleset, ports: memory.ports, logger: quiet });

    // Version 1 is deployed: its definitions and the bundle the step function carries.
    const version1 = rulesetWith(VERSION_1);
    let deployedHandler = handlerFor(version1);
    const taskCalls: JourneyTaskInput[] = [];
    const runner = createJourneyRunner({
      machines: { member: compileJourney(version1.journeys['member']!) },
      runStep: (task): Promise<JourneyStepResult> => {
        taskCalls.push(task);
        return deployedHandler(task);
      },
      clock,
    });
    for (const userId of ['early', 'late']) memory.setProfile(profileFor(userId, 'member'));

    expect(await runner.start('member-early', 'member', { userId: 'early' })).toBe('started');
    await clock.advanceTo(at(1));

    // Version 2 is deployed while "early" waits: new definitions, and a new bundle for the step function.
    const version2 = rulesetWith(VERSION_2);
    runner.deploy({ member: compileJourney(version2.journeys['member']!) });
    deployedHandler = handlerFor(version2);
    expect(await runner.start('member-late', 'member', { userId: 'late' })).toBe('started');

    await clock.advanceTo(at(30));
    await runner.idle();

    const sent = (userId: string) => actionLines(memory.published.filter((action) => action.userId === userId));
    expect(sent('early')).toEqual([
      `${at(0)} content replay-v1`,
      // The step renamed in version 2 still runs, with version 1's content and wait.
      `${at(2)} content case-study-v1`,
      `${at(6)} offer course-price-v1`,
    ]);
    expect(sent('late')).toEqual([`${at(1)} content replay-v2`, `${at(4)} content success-story-v2`, `${at(8)} offer course-price-v2`]);
    expect(memory.published.find((action) => action.stepId === 'success_story')?.channel).toBe('mini-program');
    expect(runner.executions().map((execution) => [execution.executionName, execution.status])).toEqual([
      ['member-early', 'SUCCEEDED'],
      ['member-late', 'SUCCEEDED'],
    ]);

    const versionsSeen = (executionName: string) =>
      new Set(taskCalls.filter((task) => task.executionName === executionName).map((task) => task.journeyVersion));
    expect(versionsSeen('member-early')).toEqual(new Set([journeyVersion(version1.journeys['member']!)]));
    expect(versionsSeen('member-late')).toEqual(new Set([journeyVersion(version2.journeys['member']!)]));
    expect(journeyVersion(version1.journeys['member']!)).not.toBe(journeyVersion(version2.journeys['member']!));
  });

  it('a step removed in the new version still runs for an execution already past the step before it', async () => {
    const clock = createVirtualClock(T0);
    const memory = createMemoryJourneyPorts(clock, 'UTC');
    const quiet = new Logger({ serviceName: 'strata-journey-step-test', logLevel: 'SILENT' });
    const version1 = rulesetWith(VERSION_1);
    const shortened = rulesetWith({
      ...VERSION_1,
      steps: [
        { id: 'welcome', type: 'content', templateId: 'replay-v1', channel: 'official-account', next: 'done' },
        { id: 'done', type: 'exit' },
      ],
    });
    let deployedHandler = createJourneyStepHandler({ ruleset: version1, ports: memory.ports, logger: quiet });
    const runner = createJourneyRunner({
      machines: { member: compileJourney(version1.journeys['member']!) },
      runStep: (task) => deployedHandler(task),
      clock,
    });
    memory.setProfile(profileFor('early', 'member'));
    await runner.start('member-early', 'member', { userId: 'early' });
    await clock.advanceTo(at(1));
    runner.deploy({ member: compileJourney(shortened.journeys['member']!) });
    deployedHandler = createJourneyStepHandler({ ruleset: shortened, ports: memory.ports, logger: quiet });
    await clock.advanceTo(at(30));
    await runner.idle();
    expect(actionLines(memory.published)).toEqual([`${at(0)} content replay-v1`, `${at(2)} content case-study-v1`, `${at(6)} offer course-price-v1`]);
    expect(runner.executions()[0]?.statesEntered).not.toContain('Exited');
  });
});
