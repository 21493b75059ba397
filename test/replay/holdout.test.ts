/**
 * The holdout on a replay: treated and held-out users are observed over the same horizon, so held-out buyers count,
 * and since a replayed history does not react to sends, the 95% interval of the difference contains 0. (Before,
 * a held-out user's window closed at their first step, every journey showed 0 held-out conversions and a
 * confident "uplift".)
 */
import { describe, expect, it } from 'vitest';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { generateEvents } from '../../functions/local/example-population.js';
import { readEventLines } from '../../functions/local/event-lines.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { runReplay } from '../../functions/replay/replay-engine.js';
import type { SimulationSummary } from '../../functions/replay/simulation-summary.js';

function expectNoClaim(summary: SimulationSummary): void {
  for (const journey of summary.journeys) {
    const { difference } = journey.observed;
    if (difference) {
      expect(difference.low).toBeLessThanOrEqual(0);
      expect(difference.high).toBeGreaterThanOrEqual(0);
    }
  }
}

describe('the holdout in a replay', () => {
  it('on the example population (examples/events.jsonl), counts held-out conversions and claims no effect', async () => {
    const ruleset = loadRulesetOrThrow(await readProjectFiles('.'));
    // The same population `npm run examples` writes to examples/events.jsonl.
    const events = generateEvents({ users: 2000, days: 60, seed: 7, start: '2026-09-01' });
    const { summary } = await runReplay({ ruleset, events });
    expectNoClaim(summary);
    const measured = summary.journeys.filter((journey) => journey.observed.difference !== null);
    expect(measured.length).toBeGreaterThan(0);
    expect(summary.journeys.reduce((sum, journey) => sum + journey.observed.heldOut.converted, 0)).toBeGreaterThan(0);
    for (const journey of summary.journeys) {
      expect(journey.observed.treated.users + journey.observed.heldOut.users).toBeGreaterThan(0);
      expect(journey.observed.horizonDays).toBeGreaterThan(0);
    }
  }, 300_000);

  it('on examples/small-events.jsonl, says too few to tell or claims no effect', async () => {
    const ruleset = loadRulesetOrThrow(await readProjectFiles('.'));
    const { events } = await readEventLines('examples/small-events.jsonl');
    const { summary } = await runReplay({ ruleset, events });
    expectNoClaim(summary);
  }, 120_000);
});
