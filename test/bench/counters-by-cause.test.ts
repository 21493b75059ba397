/**
 * The counters bench sorts every counter write by its cause (bench/counters.ts), so that what a change to the
 * counters saves can be read off the bench. Each write must land in exactly one cause, and the causes must add up to
 * the writes per item kind, on the shipped example population (its journeys run, some are stopped by tier changes).
 */
import { describe, expect, it } from 'vitest';
import { measureCounters } from '../../bench/counters.js';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { readProjectFiles } from '../../functions/local/project-files.js';

describe('bench/counters: counter writes by cause', () => {
  it('files every counter write under one cause, adding up to the writes per item kind', async () => {
    const ruleset = loadRulesetOrThrow(await readProjectFiles(process.cwd()));
    const days = 24;
    const result = await measureCounters(ruleset, { users: 24, days });
    const { counterWrites: byItem, counterWritesByCause: byCause } = result;

    expect(byCause.tierChanges + byCause.entriesWithoutMove + byCause.conversions + byCause.erasures).toBe(byItem.tierItems);
    expect(byCause.stoppedExecutionTallies + byCause.endedExecutionTallies + byCause.stepCounts).toBe(byItem.journeyItems);
    expect(byCause.snapshots).toBe(byItem.snapshots);
    // Every counter write here is under 1 KB, so the units are the writes.
    expect(result.counterWru).toBe(byItem.tierItems + byItem.journeyItems + byItem.snapshots);
    // Users join and move through the ladder, and journeys end both ways: by their last step and by a tier change.
    expect(byCause.tierChanges).toBeGreaterThan(0);
    expect(byCause.endedExecutionTallies).toBeGreaterThan(0);
    expect(byCause.stoppedExecutionTallies).toBeGreaterThan(0);
    // Executions of today's definitions count once at their end, never per step.
    expect(byCause.stepCounts).toBe(0);
    expect(byItem.snapshots).toBeGreaterThanOrEqual(days - 1);
  }, 300_000);
});
