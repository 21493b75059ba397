/**
 * The attribute join (joinAttributes) against the definition (applyEventToAttributes): for any events, applying
 * them one by one in any order gives the same attributes as joining their contributions (attributeContribution) in
 * any grouping and order, onto any starting profile. This is what lets the DynamoDB store keep a heavy day's
 * attribute changes in the day item and join them into the profile when it reads (the attribute overlay).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UserEvent } from '../../functions/core/event.js';
import { MAX_TAGS, applyEventToAttributes, attributeContribution, joinAttributes } from '../../functions/core/metrics.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { StoredAttribute } from '../../functions/core/state.js';
import { propertyRuns } from '../helpers/property-runs.js';

const ruleset = {
  attributes: {
    goal: { type: 'string', event: 'questionnaire.answered', property: 'goal' },
    level: { type: 'number', event: 'questionnaire.answered', property: 'level' },
    pro: { type: 'boolean', event: 'plan.changed', property: 'pro' },
    interests: { type: 'tags', event: 'questionnaire.answered', property: 'interests' },
    badges: { type: 'tags', event: 'plan.changed', property: 'badges' },
    daysSinceSignup: { type: 'days-since', event: 'user.signed_up' },
  },
} as unknown as Pick<Ruleset, 'attributes'>;

/** Few distinct instants, so that ties on occurredAt (broken by event id) are common. */
const instant = fc.integer({ min: 0, max: 5 }).map((minute) => new Date(Date.UTC(2026, 2, 10, 8, minute)).toISOString());
/** Many tag values, so that the cap (MAX_TAGS, by sort order) is reached. */
const tag = fc.integer({ min: 0, max: 60 }).map((n) => `t${String(n).padStart(2, '0')}`);
const tags = fc.oneof(tag, fc.array(tag, { maxLength: 20 }));

const eventSpec = fc.oneof(
  fc.record({
    type: fc.constant('questionnaire.answered'),
    occurredAt: instant,
    properties: fc.record(
      { goal: fc.constantFrom('career', 'upskill', 'curious'), level: fc.integer({ min: 0, max: 3 }), interests: tags },
      { requiredKeys: [] },
    ),
  }),
  fc.record({
    type: fc.constant('plan.changed'),
    occurredAt: instant,
    properties: fc.record({ pro: fc.boolean(), badges: tags }, { requiredKeys: [] }),
  }),
  fc.record({ type: fc.constant('user.signed_up'), occurredAt: instant, properties: fc.constant({}) }),
  fc.record({ type: fc.constant('app.opened'), occurredAt: instant, properties: fc.constant({}) }),
);

const toEvents = (specs: ReadonlyArray<{ type: string; occurredAt: string; properties: Record<string, unknown> }>): UserEvent[] =>
  specs.map((spec, i) => ({ eventId: `e${String(i).padStart(3, '0')}`, userId: 'u', ...spec }));

const applyAll = (start: Record<string, StoredAttribute>, events: readonly UserEvent[]): Record<string, StoredAttribute> =>
  events.reduce((attributes, event) => applyEventToAttributes(ruleset, { attributes }, event) ?? attributes, start);

/** The events cut into consecutive groups by `cuts`: each group is joined on its own first, as a day's overlay is. */
function grouped<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  items.forEach((item, i) => {
    current.push(item);
    if (cuts.includes(i)) {
      groups.push(current);
      current = [];
    }
  });
  if (current.length > 0) groups.push(current);
  return groups;
}

describe('joinAttributes', () => {
  it('gives what applying the events gives, in any order and grouping, onto any start', () => {
    fc.assert(
      fc.property(
        fc.array(eventSpec, { maxLength: 24 }),
        fc.array(eventSpec, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.nat(23), { maxLength: 6 }),
        (specs, startSpecs, shuffle, cuts) => {
          const events = toEvents(specs);
          const start = applyAll(
            {},
            toEvents(startSpecs).map((e) => ({ ...e, eventId: `s${e.eventId}` })),
          );
          const expected = applyAll(start, events);
          // Applied one by one in another order: the same (the definition is order-free).
          const reordered = [...events];
          shuffle.forEach((n, i) => {
            const j = n % reordered.length;
            const k = i % reordered.length;
            [reordered[j], reordered[k]] = [reordered[k]!, reordered[j]!];
          });
          expect(applyAll(start, reordered)).toEqual(expected);
          // Each group's contributions joined into one overlay, the overlays joined onto the start in reverse.
          const overlays = grouped(reordered, cuts).map((group) =>
            group.reduce<Record<string, StoredAttribute>>((overlay, event) => joinAttributes(overlay, attributeContribution(ruleset, event)), {}),
          );
          const joined = overlays.reverse().reduce((attributes, overlay) => joinAttributes(attributes, overlay), start);
          expect(joined).toEqual(expected);
          // Idempotent: joining an overlay again changes nothing, and returns the record itself.
          for (const overlay of overlays) expect(joinAttributes(joined, overlay)).toBe(joined);
        },
      ),
      { numRuns: propertyRuns(400) },
    );
  });

  it('keeps a full tag list in sort order whichever event came first', () => {
    const many = Array.from({ length: MAX_TAGS }, (_, i) => `t${String(i + 10).padStart(2, '0')}`);
    const [full, early] = toEvents([
      { type: 'questionnaire.answered', occurredAt: '2026-03-10T08:05:00.000Z', properties: { interests: many } },
      { type: 'questionnaire.answered', occurredAt: '2026-03-10T08:00:00.000Z', properties: { interests: ['a00'] } },
    ]);
    const oneWay = applyAll({}, [full!, early!]);
    expect(oneWay).toEqual(applyAll({}, [early!, full!]));
    expect(oneWay['interests']?.value).toEqual(['a00', ...many.slice(0, MAX_TAGS - 1)]);
  });
});
