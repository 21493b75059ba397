import { describe, expect, it } from 'vitest';
import { formatProblem } from '../../functions/core/errors.js';
import { loadRuleset } from '../../functions/core/ruleset.js';
import { testProjectFiles } from '../helpers/fixtures.js';
import { brokenProjects } from './validate-cases.js';

describe('validate: broken inputs, each with its exact message', () => {
  it('accepts the test ladder', () => {
    expect(loadRuleset(testProjectFiles()).problems).toEqual([]);
  });

  it.each(brokenProjects.map((c) => [c.name, c] as const))('%s', (_name, broken) => {
    const { ruleset, problems } = loadRuleset(broken.files);
    expect(ruleset).toBeUndefined();
    expect(problems.map(formatProblem)).toEqual(broken.expected);
  });

  it('covers at least 20 distinct broken inputs', () => {
    expect(new Set(brokenProjects.map((c) => c.name)).size).toBeGreaterThanOrEqual(20);
  });

  it('reports every problem at once, across files', () => {
    const files = testProjectFiles();
    files['rules/member.json'] = files['rules/member.json']!.replace('"days7"', '"days8"');
    files['rules/core.json'] = files['rules/core.json']!.replace('greaterThanInclusive', 'atLeast');
    const { problems } = loadRuleset(files);
    expect(problems.map((p) => `${p.file} ${p.pointer}`)).toEqual([
      'rules/member.json /conditions/any/0/fact',
      'rules/core.json /conditions/all/0/operator',
    ]);
  });
});
