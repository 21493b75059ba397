import { describe, expect, it } from 'vitest';
import { journeyJsonSchema } from '../../functions/core/journey/journey-schema.js';
import { conversionSignalFilter, firstSignalSince, journeySignalFilters } from '../../functions/core/journey/signals.js';
import { TIERS, loadShippedJourney } from '../helpers/journey-fixtures.js';

describe('journeySignalFilters', () => {
  it('lists the conversion and engagement filters of the shipped journeys, deduplicated, with stable ids', () => {
    expect(journeySignalFilters(TIERS.map(loadShippedJourney))).toEqual([
      { id: 'sIizvCuN4nD', eventTypes: ['order.paid'], where: { product: 'pm-advanced-course' } },
      { id: 'sZWnpnX0wEo', eventTypes: ['content.opened', 'content.viewed'], where: { templateId: 'pm-beginner-case-studies' } },
      { id: 'sfDve_1yWJa', eventTypes: ['order.paid'], where: { product: 'pm-course' } },
      { id: 'soNr8iJmWZw', eventTypes: ['content.completed'], where: { templateId: 'pm-practice-project-checkin' } },
      { id: 'subaZDrfHbs', eventTypes: ['order.paid'], where: { product: 'pm-camp-4day' } },
    ]);
  });

  it('derives the id from the filter alone, whatever the key order', () => {
    const a = conversionSignalFilter({ type: 'order.paid', where: { product: 'pm-course', channel: 'app' } });
    const b = conversionSignalFilter({ where: { channel: 'app', product: 'pm-course' }, type: 'order.paid' });
    expect(a.id).toBe(b.id);
    expect(a.id).not.toBe(conversionSignalFilter({ type: 'order.paid', where: { product: 'pm-course' } }).id);
  });

  it('finds the first signal of a filter at or after an instant', () => {
    const buckets = [
      { date: '2026-03-01', counters: {}, signals: ['sA@100', 'sB@150'] },
      { date: '2026-03-02', counters: {}, signals: ['sA@300', 'sA@200', 'sAB@120'] },
    ];
    expect(firstSignalSince(buckets, 'sA', 150)).toBe(200);
    expect(firstSignalSince(buckets, 'sA', 100)).toBe(100);
    expect(firstSignalSince(buckets, 'sA', 301)).toBeUndefined();
    expect(firstSignalSince(buckets, 'sB', 0)).toBe(150);
  });
});

describe('journeyJsonSchema', () => {
  it('exports the journey format as JSON Schema, with the step types as a union', () => {
    const schema = journeyJsonSchema() as {
      type: string;
      required: string[];
      properties: { steps: { items: { oneOf: Array<{ properties: { type: { const: string } } }> } } };
    };
    expect(schema.type).toBe('object');
    expect(schema.required).toEqual(['id', 'tier', 'name', 'start', 'settings', 'steps']);
    expect(schema.properties.steps.items.oneOf.map((step) => step.properties.type.const)).toEqual([
      'content',
      'invite',
      'offer',
      'wait',
      'branch',
      'exit',
    ]);
  });
});
