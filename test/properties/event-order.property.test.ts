import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { localDate } from '../../functions/core/dates.js';
import type { UserEvent } from '../../functions/core/event.js';
import { ingestEvent, windowStart } from '../../functions/core/ingest.js';
import { factsAt } from '../../functions/core/metrics.js';
import { qualify } from '../../functions/core/qualify.js';
import { testRuleset } from '../helpers/fixtures.js';
import { ManualClock, MemoryTierStore, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';
import { propertyRuns } from '../helpers/property-runs.js';

const ruleset = testRuleset();
const NOW = new Date('2026-03-25T12:00:00Z');

const eventArbitrary = fc.record({
  type: fc.constantFrom('app.opened', 'content.completed', 'order.paid', 'questionnaire.answered', 'user.signed_up'),
  day: fc.integer({ min: 0, max: 24 }),
  minute: fc.integer({ min: 0, max: 1439 }),
  amount: fc.integer({ min: 1, max: 80 }),
  plan: fc.constantFrom('free', 'pro'),
  interest: fc.constantFrom('design', 'data', 'career'),
});

type EventSpec = typeof eventArbitrary extends fc.Arbitrary<infer T> ? T : never;

function toEvents(specs: EventSpec[]): UserEvent[] {
  return specs.map((spec, i) => {
    const occurredAt = new Date(Date.UTC(2026, 2, 1 + spec.day, 0, spec.minute)).toISOString();
    const properties: Record<string, unknown> =
      spec.type === 'order.paid'
        ? { amount: spec.amount }
        : spec.type === 'questionnaire.answered'
          ? { plan: spec.plan, interests: [spec.interest] }
          : {};
    return { eventId: `e${i}`, userId: 'u1', type: spec.type, occurredAt, properties };
  });
}

async function finalState(events: UserEvent[]) {
  const store = new MemoryTierStore();
  const services = { ruleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock: new ManualClock(NOW) };
  for (const event of events) await ingestEvent(services, event);
  const { profile, buckets } = await store.loadUser('u1', windowStart(ruleset, NOW));
  const facts = factsAt(ruleset, buckets, profile?.attributes ?? {}, localDate(NOW, ruleset.timezone));
  const qualification = await qualify(ruleset, facts);
  return { facts, qualified: qualification.tier, attributes: profile?.attributes };
}

describe('event order and duplication', () => {
  it('any shuffle and duplication gives the same metrics and qualification as the ordered once-only stream', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArbitrary, { minLength: 1, maxLength: 25 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer(),
        async (specs, duplicatePicks, seed) => {
          const events = toEvents(specs).sort((a, b) => a.occurredAt.localeCompare(b.occurredAt));
          const delivered = [...events, ...duplicatePicks.map((pick) => events[pick % events.length]!)];
          // A deterministic shuffle from the seed, so a failure replays exactly.
          let state = seed >>> 0;
          for (let i = delivered.length - 1; i > 0; i--) {
            state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
            const j = state % (i + 1);
            [delivered[i], delivered[j]] = [delivered[j]!, delivered[i]!];
          }
          const expected = await finalState(events);
          const actual = await finalState(delivered);
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: propertyRuns(100) },
    );
  });
});
