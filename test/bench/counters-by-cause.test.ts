/**
 * The counters bench sorts every counter write by its cause (bench/counters.ts), so that what a change to the
 * counters saves can be read off the bench. Each write must land in exactly one cause, and the causes must add up to
 * the writes per item kind, on the shipped example population (its journeys run, some are stopped by tier changes).
 * Journey executions' tallies are never written one by one: the nightly count writes them in batch items.
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
    expect(byCause.stepCounts).toBe(byItem.journeyItems);
    expect(byCause.tallyBatches).toBe(byItem.tallyItems);
    expect(byCause.countLeases).toBe(byItem.countLeases);
    expect(byCause.snapshots).toBe(byItem.snapshots);
    // Every counter write here is within 1 KB, batch items included, so the units are the writes.
    expect(result.counterWru).toBe(byItem.tierItems + byItem.journeyItems + byItem.tallyItems + byItem.countLeases + byItem.snapshots);
    // Users join and move through the ladder, and journeys end and are counted, several to a batch item.
    expect(byCause.tierChanges).toBeGreaterThan(0);
    expect(result.talliesCounted).toBeGreaterThan(0);
    expect(byCause.tallyBatches).toBeGreaterThan(0);
    expect(byCause.tallyBatches).toBeLessThan(result.talliesCounted);
    // Executions of today's definitions count once at their end, in a batch, never per step.
    expect(byCause.stepCounts).toBe(0);
    expect(byItem.snapshots).toBeGreaterThanOrEqual(days - 1);
    // The count's lease is taken at most once a night, and only on nights with tallies to count.
    expect(byCause.countLeases).toBeGreaterThan(0);
    expect(byCause.countLeases).toBeLessThanOrEqual(days + 1);
  }, 300_000);
});
