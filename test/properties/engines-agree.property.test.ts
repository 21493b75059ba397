/**
 * Differential property: for any small history, the in-memory replay engine and the full-stack replay (the
 * fidelity reference) write the same summary.json.
 *
 * The histories mix what makes replays hard: producer resends (same event id, same or shifted time), events out of
 * order in the file, opt-outs, conversions (the journeys' own products and others), engagement with the journeys'
 * templates and groups, activity at all hours (quiet hours defer sends) and bursts of tier changes (frequency caps
 * defer sends), an amount that is a string (ingest refuses it), under the shipped rules and the stricter fixture.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Ruleset, loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { propertyRuns } from '../helpers/property-runs.js';
import { replayOnBothEngines } from '../replay/engine-agreement.js';
import { randomHistory } from '../replay/random-histories.js';

const history = randomHistory(3);

describe('the in-memory engine agrees with the full stack on random histories', () => {
  it('gives the same summary.json', async () => {
    const rulesets = new Map<string, Ruleset>();
    for (const dir of ['.', 'test/fixtures/stricter']) rulesets.set(dir, loadRulesetOrThrow(await readProjectFiles(dir)));
    await fc.assert(
      fc.asyncProperty(history, async ({ events, rulesDir, extraDays }) => {
        const { inMemory, fullStack } = await replayOnBothEngines(rulesets.get(rulesDir)!, events, { extraDays });
        expect(inMemory).toEqual(fullStack);
      }),
      { numRuns: propertyRuns(4), endOnFailure: true },
    );
  }, 600_000);
});
