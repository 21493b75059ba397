/**
 * State transitions per journey execution, happy path: the compiled ASL of each shipped journey on
 * aws-local-stepfunctions through the local stack's runner and journey-step handler, on a virtual clock, for a
 * user who stays in the tier, never converts and is not in the holdout.
 */
import type { AslDefinition } from '../functions/core/journey/compile-journey.js';
import { compileJourney } from '../functions/core/journey/compile-journey.js';
import { hashPercent } from '../functions/core/hash.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { createVirtualClock } from '../functions/local/clock.js';
import { startLocalStack } from '../functions/local/local-stack.js';

export interface JourneyFigures {
  transitions: number;
  sends: number;
  /** Task states entered: journey-step Lambda invocations. */
  tasks: number;
  status: string;
}

/** Monday 2 March 2026, 10:00 in Shanghai: outside quiet hours, so the happy path has no deferral. */
const START = '2026-03-02T02:00:00.000Z';
const DAY_MS = 86_400_000;

function taskStates(asl: AslDefinition): Set<string> {
  return new Set(
    Object.entries(asl.States as Record<string, { Type: string }>)
      .filter(([, state]) => state.Type === 'Task')
      .map(([name]) => name),
  );
}

export async function measureJourneys(ruleset: Ruleset): Promise<Record<string, JourneyFigures>> {
  const clock = createVirtualClock(START);
  const sendsByUser = new Map<string, number>();
  const stack = await startLocalStack({
    ruleset,
    clock,
    onActivity: (activity) => {
      if (activity.kind === 'action') sendsByUser.set(activity.action.userId, (sendsByUser.get(activity.action.userId) ?? 0) + 1);
    },
  });
  clock.settleWith(() => stack.settle());
  try {
    const results: Record<string, JourneyFigures> = {};
    for (const [tier, journey] of Object.entries(ruleset.journeys)) {
      let n = 1;
      while (hashPercent(`bench-${tier}-${n}:${journey.id}`) < journey.settings.holdoutPercent) n += 1;
      const userId = `bench-${tier}-${n}`;
      await stack.store.saveProfile({ userId, tier, tierSince: START, tierEnteredBy: 'promotion', version: 0, attributes: {} }, 0);
      const executionName = `bench-${tier}`;
      await stack.runner.start(executionName, tier, { userId });
      await clock.advanceTo(new Date(clock.now().getTime() + 60 * DAY_MS));
      await stack.runner.idle();
      const summary = stack.runner.executions().find((e) => e.executionName === executionName)!;
      const tasks = taskStates(compileJourney(journey));
      results[tier] = {
        transitions: summary.transitions,
        sends: sendsByUser.get(userId) ?? 0,
        tasks: summary.statesEntered.filter((state) => tasks.has(state)).length,
        status: summary.status,
      };
    }
    return results;
  } finally {
    await stack.close();
  }
}
