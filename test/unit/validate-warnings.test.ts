/**
 * Validation that goes past typos: plain-words messages with a fix for every problem, and warnings for files that
 * load but cannot do what their author meant.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem } from '../../functions/core/errors.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { type ProjectFiles, loadRuleset } from '../../functions/core/ruleset.js';
import { testProjectFiles, testRules, testTiersFile } from '../helpers/fixtures.js';
import { TIERS, journeyDocument } from '../helpers/journey-fixtures.js';
import { brokenProjects } from './validate-cases.js';

type Json = Record<string, any>;

const warningsOf = (files: ProjectFiles): string[] => {
  const { problems, warnings } = loadRuleset(files);
  expect(problems).toEqual([]);
  return warnings.map(formatProblem);
};

const withRules = (edit: (rules: Json) => void, tiersEdit: (tiers: Json) => void = () => undefined): ProjectFiles => {
  const rules = testRules() as Json;
  const tiers = testTiersFile() as Json;
  edit(rules);
  tiersEdit(tiers);
  return testProjectFiles({ rules, tiers });
};

/** The test ladder leaves two metrics to other tests; rule them in so that only each case's own warning shows. */
const usingEveryMetric = (rules: Json): void => {
  rules['core'].conditions.all.push(
    { fact: 'lastOrder', operator: 'lessThanInclusive', value: 29 },
    { fact: 'lessons7', operator: 'greaterThanInclusive', value: 1 },
  );
};

describe('validate: plain words and a fix for every problem', () => {
  it('gives every broken input a hint', () => {
    for (const broken of brokenProjects) {
      for (const problem of loadRuleset(broken.files).problems) expect(problem.hint, `${broken.name}: ${formatProblem(problem)}`).toBeTruthy();
    }
  });

  const context = { tierIds: [...TIERS], expectedTier: 'member' };
  const waitWith = (change: Json) =>
    checkJourneyDocument(
      'journeys/member.json',
      journeyDocument({ steps: (journeyDocument()['steps'] as Json[]).map((s, i) => (i === 1 ? { ...s, ...change } : s)) }),
      context,
    ).problems.map(formatProblem);

  it('words a negative wait, a fraction of a day and a holdout over the limit, each with a fix', () => {
    expect(waitWith({ days: -3 })).toEqual([
      'journeys/member.json: /steps/1/days: must be at least 0, found -3 (a whole number of days, 0 to 90; for part of a day use "hours")',
    ]);
    expect(waitWith({ days: 2.5 })).toEqual([
      'journeys/member.json: /steps/1/days: must be a whole number, found 2.5 (a whole number of days, 0 to 90; for part of a day use "hours")',
    ]);
    const document = journeyDocument();
    (document['settings'] as Json)['holdoutPercent'] = 150;
    expect(checkJourneyDocument('journeys/member.json', document, context).problems.map(formatProblem)).toEqual([
      'journeys/member.json: /settings/holdoutPercent: must be at most 50, found 150 (a share from 0 to 50: the users held out get nothing, so more than half leaves too few treated users to learn from)',
    ]);
  });
});

describe('validate: warnings for mistakes that are not typos', () => {
  it('has none for a ladder that uses every metric sensibly', () => {
    expect(warningsOf(withRules(usingEveryMetric))).toEqual([]);
  });

  it('warns about an event type nothing is known to send, with "did you mean", and accepts knownEventTypes', () => {
    const misspelt = withRules(usingEveryMetric, (t) => (t.metrics.lessons7.eventTypes = ['content.complete']));
    expect(warningsOf(misspelt)).toEqual([
      'rules/tiers.json: /metrics/lessons7/eventTypes/0: warning: event type "content.complete" is neither one Strata documents nor listed in "knownEventTypes", so it may never arrive and this reads 0 for everyone (did you mean "content.completed"?)',
    ]);
    const live = withRules(usingEveryMetric, (t) => (t.metrics.lessons7.eventTypes = ['live.attend']));
    expect(warningsOf(live)).toEqual([
      'rules/tiers.json: /metrics/lessons7/eventTypes/0: warning: event type "live.attend" is neither one Strata documents nor listed in "knownEventTypes", so it may never arrive and this reads 0 for everyone (if your producers send "live.attend", add it to "knownEventTypes" in rules/tiers.json)',
    ]);
    const declared = withRules(usingEveryMetric, (t) => {
      t.metrics.lessons7.eventTypes = ['live.attend'];
      t.knownEventTypes = ['live.attend'];
    });
    expect(warningsOf(declared)).toEqual([]);
  });

  it('warns about a threshold the window cannot reach, and says the tier is then unreachable', () => {
    const files = withRules((rules) => {
      usingEveryMetric(rules);
      rules['core'].conditions.all.push({ fact: 'days7', operator: 'greaterThanInclusive', value: 45 });
    });
    expect(warningsOf(files)).toEqual([
      "rules/core.json: /conditions/all/3: warning: days7 ≥ 45 can never hold: days7 counts days in a 7-day window, so it is 0 to 7 (change the threshold or the metric's window, or remove the condition)",
      'rules/tiers.json: /tiers/3: warning: no user can ever reach tier "core": days7 ≥ 45 can never hold: days7 counts days in a 7-day window, so it is 0 to 7 (fix the conditions in rules/core.json)',
    ]);
  });

  it('warns about a negative count that always holds, and bounds that contradict each other', () => {
    const files = withRules((rules) => {
      usingEveryMetric(rules);
      rules['core'].conditions.all.push({ fact: 'lessons7', operator: 'greaterThan', value: -1 });
      rules['active'].conditions = {
        all: [
          { fact: 'days7', operator: 'greaterThanInclusive', value: 5 },
          { fact: 'days7', operator: 'lessThan', value: 3 },
        ],
      };
    });
    expect(warningsOf(files)).toEqual([
      'rules/tiers.json: /tiers/2: warning: no user can ever reach tier "active": days7 ≥ 5 and days7 < 3 cannot both hold (fix the conditions in rules/active.json)',
      'rules/core.json: /conditions/all/3: warning: lessons7 > -1 always holds: lessons7 counts events, so it is never negative (remove the condition, or set the threshold you meant)',
    ]);
  });

  it('judges "any" by all its arms: one reachable arm keeps the tier reachable', () => {
    const files = withRules((rules) => {
      usingEveryMetric(rules);
      rules['active'].conditions = {
        any: [
          { fact: 'days7', operator: 'greaterThan', value: 7 },
          { fact: 'lessons7', operator: 'greaterThanInclusive', value: 3 },
        ],
      };
    });
    expect(warningsOf(files)).toEqual([
      "rules/active.json: /conditions/any/0: warning: days7 > 7 can never hold: days7 counts days in a 7-day window, so it is 0 to 7 (change the threshold or the metric's window, or remove the condition)",
    ]);
  });

  it('warns about a metric no rule uses', () => {
    expect(warningsOf(testProjectFiles())).toEqual([
      'rules/tiers.json: /metrics/lessons7: warning: metric "lessons7" is not used by any rule (use it in a rule, or remove it so that nobody reads it as part of the ladder)',
      'rules/tiers.json: /metrics/lastOrder: warning: metric "lastOrder" is not used by any rule (use it in a rule, or remove it so that nobody reads it as part of the ladder)',
    ]);
  });

  it('warns about a wait that adds nothing before a branch, and not about a shorter one or a check-once branch', () => {
    const steps = (waitDays: number, timeoutDays = 2): Json[] => [
      { id: 'cases', type: 'content', templateId: 'pm-beginner-case-studies', channel: 'official-account', next: 'give_time' },
      { id: 'give_time', type: 'wait', days: waitDays, next: 'opened' },
      { id: 'opened', type: 'branch', since: 'cases', signal: 'content-opened', timeoutDays, engaged: 'done', notEngaged: 'done' },
      { id: 'done', type: 'exit' },
    ];
    const files = (waitDays: number, timeoutDays?: number): ProjectFiles => {
      const rules = testRules() as Json;
      usingEveryMetric(rules);
      const tiers = testTiersFile() as Json;
      tiers.tiers[1].journey = 'journeys/member.json';
      return {
        ...testProjectFiles({ rules, tiers }),
        'journeys/member.json': JSON.stringify(journeyDocument({ start: 'cases', steps: steps(waitDays, timeoutDays) })),
      };
    };
    expect(warningsOf(files(2))).toEqual([
      'journeys/member.json: /steps/1: warning: wait "give_time" (2 days) adds nothing: branch "opened" right after it already waits up to 2 days after "cases" is sent (set the branch\'s "timeoutDays" to 0 to check once when the wait ends, or remove the wait; to give more time, raise "timeoutDays" instead)',
    ]);
    expect(warningsOf(files(1))).toEqual([]);
    expect(warningsOf(files(2, 0))).toEqual([]);
  });
});
