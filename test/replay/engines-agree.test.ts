/**
 * The in-memory replay engine and the full-stack replay give the same summary.json, on the shipped example history
 * and on the simulate fixtures, under the shipped rules and the stricter fixture rules.
 */
import { describe, expect, it } from 'vitest';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { readEventLines } from '../../functions/local/event-lines.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { replayOnBothEngines } from './engine-agreement.js';

async function agreeOn(eventsFile: string, rulesDir: string, extraDays: number): Promise<void> {
  const ruleset = loadRulesetOrThrow(await readProjectFiles(rulesDir));
  const { events, skipped, lines } = await readEventLines(eventsFile);
  const { inMemory, fullStack } = await replayOnBothEngines(ruleset, events, { extraDays, skippedLines: skipped.length, lines });
  expect(inMemory).toEqual(fullStack);
  // Not two empty summaries agreeing: the history moved people and ran journeys.
  expect(inMemory.transitions.promotions).toBeGreaterThan(0);
  expect(inMemory.journeys.some((journey) => journey.steps.some((step) => step.sent > 0))).toBe(true);
}

describe('the in-memory engine and the full stack agree', () => {
  it(
    'on the simulate fixture under the shipped rules, with 20 days of reviews after it',
    () => agreeOn('test/fixtures/simulate-events.jsonl', '.', 20),
    300_000,
  );

  it('on the simulate fixture under the stricter rules', () => agreeOn('test/fixtures/simulate-events.jsonl', 'test/fixtures/stricter', 20), 300_000);

  it('on examples/small-events.jsonl under the shipped rules', () => agreeOn('examples/small-events.jsonl', '.', 0), 900_000);
});
