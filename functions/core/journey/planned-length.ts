/**
 * A journey's planned length: the longest time from entry to its end that its own waits and branch timeouts
 * allow (deferrals for quiet hours and caps come on top and are not planned). It bounds how long after entry a
 * user's conversion is attributed to the journey, the same for treated and held-out users.
 */
import { assertNever } from '../errors.js';
import { stepLinks } from './journey-graph.js';
import type { JourneyDefinition, JourneyStep } from './journey-schema.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

function stepDurationMs(step: JourneyStep): number {
  switch (step.type) {
    case 'wait':
      // A wait until a clock time ends within the next day.
      return step.untilLocalTime !== undefined ? DAY_MS : (step.days ?? 0) * DAY_MS + (step.hours ?? 0) * HOUR_MS;
    case 'branch':
      return step.timeoutDays * DAY_MS;
    case 'content':
    case 'invite':
    case 'offer':
    case 'exit':
      return 0;
    default:
      return assertNever(step, 'journey step');
  }
}

/** Milliseconds along the longest path from the start; Infinity when a loop lets the journey run on. */
export function plannedLengthMs(journey: Pick<JourneyDefinition, 'start' | 'steps'>): number {
  const byId = new Map(journey.steps.map((step) => [step.id, step]));
  const longest = new Map<string, number>();
  const onPath = new Set<string>();
  const visit = (id: string): number => {
    const step = byId.get(id);
    if (!step) return 0;
    if (onPath.has(id)) return Infinity;
    const known = longest.get(id);
    if (known !== undefined) return known;
    onPath.add(id);
    const after = Math.max(0, ...stepLinks(step).map((link) => visit(link.target)));
    onPath.delete(id);
    const total = stepDurationMs(step) + after;
    longest.set(id, total);
    return total;
  };
  return visit(journey.start);
}
