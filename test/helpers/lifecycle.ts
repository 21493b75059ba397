/**
 * A table-driven lifecycle runner (dittofeed's `steps` style): events, nightly reviews and operator locks on a
 * manual clock, through the real core services over in-memory ports, with assertions on the stored profile.
 */
import { expect } from 'vitest';
import { ingestEvent, setTierLock, type TierServices } from '../../functions/core/ingest.js';
import { runReview } from '../../functions/core/review.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { TierLock, UserProfile } from '../../functions/core/state.js';
import { ManualClock, MemoryTierStore, RecordingJourneyStarter, RecordingPublisher } from './memory-ports.js';

export type LifecycleStep =
  | { at: string; event: string; properties?: Record<string, unknown>; eventId?: string; occurredAt?: string }
  | { review: string }
  | { at: string; lock: TierLock | null }
  | { expect: { tier?: string; graceUntil?: string | null; reviewAt?: string | null; transitions?: string[] } };

export interface LifecycleWorld {
  services: TierServices;
  store: MemoryTierStore;
  journeys: RecordingJourneyStarter;
  publisher: RecordingPublisher;
  clock: ManualClock;
  lastTransitions: string[];
  profile(): UserProfile | undefined;
}

export function createWorld(ruleset: Ruleset, userId = 'u1'): LifecycleWorld {
  const store = new MemoryTierStore();
  const journeys = new RecordingJourneyStarter();
  const publisher = new RecordingPublisher();
  const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
  return {
    services: { ruleset, store, journeys, publisher, clock },
    store,
    journeys,
    publisher,
    clock,
    lastTransitions: [],
    profile: () => store.profiles.get(userId),
  };
}

let counter = 0;

export async function runSteps(world: LifecycleWorld, steps: LifecycleStep[], userId = 'u1'): Promise<void> {
  for (const [index, step] of steps.entries()) {
    if ('event' in step) {
      world.clock.set(step.at);
      counter += 1;
      const result = await ingestEvent(world.services, {
        eventId: step.eventId ?? `e-${counter}`,
        userId,
        type: step.event,
        occurredAt: step.occurredAt ?? step.at,
        properties: step.properties ?? {},
      });
      world.lastTransitions = result.decision?.transitions.map((t) => t.kind) ?? [];
    } else if ('review' in step) {
      world.clock.set(`${step.review}T02:00:00Z`);
      const before = world.profile()?.version;
      const history = await world.store.listHistory(userId, 100);
      await runReview(world.services, world.store.shardCount);
      const after = await world.store.listHistory(userId, 100);
      world.lastTransitions =
        before === world.profile()?.version
          ? []
          : after
              .slice(0, after.length - history.length)
              .reverse()
              .flatMap((h) => h.explanation.transitions.map((t) => t.kind));
    } else if ('lock' in step) {
      world.clock.set(step.at);
      const decision = await setTierLock(world.services, userId, step.lock ?? undefined);
      world.lastTransitions = decision.transitions.map((t) => t.kind);
    } else {
      const profile = world.profile();
      const actual: Record<string, unknown> = {};
      const expected: Record<string, unknown> = {};
      if (step.expect.tier !== undefined) {
        actual['tier'] = profile?.tier;
        expected['tier'] = step.expect.tier;
      }
      if (step.expect.graceUntil !== undefined) {
        actual['graceUntil'] = profile?.graceUntil ?? null;
        expected['graceUntil'] = step.expect.graceUntil;
      }
      if (step.expect.reviewAt !== undefined) {
        actual['reviewAt'] = profile?.reviewAt ?? null;
        expected['reviewAt'] = step.expect.reviewAt;
      }
      if (step.expect.transitions !== undefined) {
        actual['transitions'] = world.lastTransitions;
        expected['transitions'] = step.expect.transitions;
      }
      expect(actual, `step ${index}`).toEqual(expected);
    }
  }
}
