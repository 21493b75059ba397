/**
 * The in-memory engine's shortcuts give the same result as the plain replay:
 * - skipping the tier decision of quiet events (functions/replay/quiet-events.ts) against deciding after every event;
 * - replaying partitions of the users apart and adding them up (functions/replay/partitions.ts) against one replay.
 * Random histories (test/replay/random-histories.ts) and the example population, with the full result compared:
 * summary, final tiers, rejections and the ship-day judgement.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UserEvent } from '../../functions/core/event.js';
import { type Ruleset, loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { generateEvents } from '../../functions/local/example-population.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { mergeHistoryTimes, mergeResults, partitionOf } from '../../functions/replay/partitions.js';
import { type SimulationResult, prepareHistory, replayPrepared, runReplay } from '../../functions/replay/replay-engine.js';
import { propertyRuns } from '../helpers/property-runs.js';
import { randomHistory } from './random-histories.js';

const rulesets = new Map<string, Ruleset>();
async function rulesetIn(dir: string): Promise<Ruleset> {
  if (!rulesets.has(dir)) rulesets.set(dir, loadRulesetOrThrow(await readProjectFiles(dir)));
  return rulesets.get(dir)!;
}

interface Replay {
  ruleset: Ruleset;
  events: UserEvent[];
  lines: number[];
  extraDays: number;
  shipDayRuleset: Ruleset;
}

/** As the worker threads do it: each partition screened and replayed apart on the whole history's clock. */
async function replayInPartitions(replay: Replay, count: number): Promise<SimulationResult> {
  const prepared = Array.from({ length: count }, (_, index) => {
    const own = replay.events.flatMap((event, i) => (partitionOf(event.userId, count) === index ? [i] : []));
    return prepareHistory(
      replay.ruleset,
      own.map((i) => replay.events[i]!),
      own.map((i) => replay.lines[i]!),
    );
  });
  const clock = mergeHistoryTimes(prepared.map((part) => part.times));
  const parts = await Promise.all(prepared.map((part) => replayPrepared(replay, part, clock)));
  return mergeResults(replay.ruleset, parts);
}

/** The whole result as plain data, maps in user order. */
function comparable(result: SimulationResult): unknown {
  return JSON.parse(JSON.stringify({ ...result, finalTierByUser: [...result.finalTierByUser].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) }));
}

async function expectShortcutsAgree(replay: Replay): Promise<void> {
  const plain = comparable(await runReplay({ ...replay, decideEveryEvent: true }));
  expect(comparable(await runReplay(replay))).toEqual(plain);
  for (const count of [2, 3]) expect(comparable(await replayInPartitions(replay, count))).toEqual(plain);
}

describe('the replay shortcuts agree with the plain replay', () => {
  it('on random histories, under both rule sets, judged at the end by the other', async () => {
    await fc.assert(
      fc.asyncProperty(randomHistory(8), async ({ events, rulesDir, extraDays }) => {
        const ruleset = await rulesetIn(rulesDir);
        const other = await rulesetIn(rulesDir === '.' ? 'test/fixtures/stricter' : '.');
        await expectShortcutsAgree({ ruleset, events, lines: events.map((_, i) => i + 1), extraDays, shipDayRuleset: other });
      }),
      { numRuns: propertyRuns(60), endOnFailure: true },
    );
  }, 600_000);

  it('on 300 users of the example population, where most events are quiet', async () => {
    const events = generateEvents({ users: 300, days: 60, seed: 7, start: '2026-09-01' });
    const ruleset = await rulesetIn('.');
    await expectShortcutsAgree({
      ruleset,
      events,
      lines: events.map((_, i) => i + 1),
      extraDays: 10,
      shipDayRuleset: await rulesetIn('test/fixtures/stricter'),
    });
  }, 300_000);
});
