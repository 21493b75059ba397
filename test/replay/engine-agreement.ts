/**
 * Runs both engines on one history and hands back both summaries, for the tests that prove they agree. The
 * full-stack engine (dynalite, the local queue, aws-local-stepfunctions) is the fidelity reference.
 */
import type { UserEvent } from '../../functions/core/event.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import { runSimulation } from '../../functions/local/simulation.js';
import { runReplay } from '../../functions/replay/replay-engine.js';
import type { SimulationSummary } from '../../functions/replay/simulation-summary.js';

export interface BothSummaries {
  inMemory: SimulationSummary;
  fullStack: SimulationSummary;
}

export async function replayOnBothEngines(
  ruleset: Ruleset,
  events: UserEvent[],
  options: { extraDays: number; skippedLines?: number; lines?: number[] },
): Promise<BothSummaries> {
  const replay = {
    ruleset,
    events,
    extraDays: options.extraDays,
    skippedLines: options.skippedLines ?? 0,
    ...(options.lines ? { lines: options.lines } : {}),
  };
  const inMemory = (await runReplay(replay)).summary;
  const fullStack = (await runSimulation(replay)).summary;
  // Through JSON, as summary.json is written: the comparison is of what a user would see.
  return { inMemory: JSON.parse(JSON.stringify(inMemory)), fullStack: JSON.parse(JSON.stringify(fullStack)) };
}
