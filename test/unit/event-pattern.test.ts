import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type EventBridgeEnvelope,
  type EventPattern,
  InvalidEventPatternError,
  JOURNEY_ACTIONS_PATTERN,
  RESERVED_SOURCE_PREFIX,
  TIER_NOTICES_PATTERN,
  USER_EVENTS_PATTERN,
  matchesEventPattern,
  validateEventPattern,
} from '../../functions/core/event-pattern.js';
import { propertyRuns } from '../helpers/property-runs.js';

function envelope(overrides: Partial<EventBridgeEnvelope<unknown>> = {}): EventBridgeEnvelope<unknown> {
  return {
    version: '0',
    id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    'detail-type': 'UserEvent',
    source: 'com.example.app',
    account: '000000000000',
    time: '2026-11-02T09:30:00Z',
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:000000000000:event-bus/strata'],
    detail: { userId: 'u-1', eventId: 'e-1', type: 'order.paid', properties: { amount: 49, plan: 'pro', tags: ['a', 'b'] } },
    ...overrides,
  };
}

const withDetail = (detail: unknown) => envelope({ detail });

interface Case {
  name: string;
  pattern: EventPattern;
  matches: Array<EventBridgeEnvelope<unknown>>;
  misses: Array<EventBridgeEnvelope<unknown>>;
}

const cases: Case[] = [
  {
    name: 'exact string value',
    pattern: { source: ['com.example.app'] },
    matches: [envelope()],
    misses: [envelope({ source: 'com.example.crm' }), envelope({ source: 'COM.EXAMPLE.APP' })],
  },
  {
    name: 'a list of values is an OR',
    pattern: { source: ['com.example.crm', 'com.example.app'] },
    matches: [envelope(), envelope({ source: 'com.example.crm' })],
    misses: [envelope({ source: 'com.example.web' })],
  },
  {
    name: 'fields are ANDed',
    pattern: { source: ['com.example.app'], 'detail-type': ['UserEvent'] },
    matches: [envelope()],
    misses: [envelope({ 'detail-type': 'Other' }), envelope({ source: 'x' })],
  },
  {
    name: 'numbers, booleans and null match by type and value',
    pattern: { detail: { amount: [49], paid: [true], coupon: [null] } },
    matches: [withDetail({ amount: 49.0, paid: true, coupon: null })],
    misses: [
      withDetail({ amount: '49', paid: true, coupon: null }),
      withDetail({ amount: 49, paid: 'true', coupon: null }),
      withDetail({ amount: 49, paid: true, coupon: '' }),
      withDetail({ amount: 49, paid: true }),
    ],
  },
  {
    name: 'an array in the event matches if any element matches',
    pattern: { resources: ['arn:b'], detail: { tags: ['vip'] } },
    matches: [envelope({ resources: ['arn:a', 'arn:b'], detail: { tags: ['new', 'vip'] } })],
    misses: [envelope({ resources: ['arn:a'], detail: { tags: ['vip'] } }), envelope({ resources: ['arn:b'], detail: { tags: [] } })],
  },
  {
    name: 'prefix on strings only',
    pattern: { detail: { type: [{ prefix: 'order.' }] } },
    matches: [withDetail({ type: 'order.paid' }), withDetail({ type: ['page.viewed', 'order.refunded'] })],
    misses: [withDetail({ type: 'page.viewed' }), withDetail({ type: 'Order.paid' }), withDetail({ type: 7 }), withDetail({})],
  },
  {
    name: 'suffix and equals-ignore-case',
    pattern: { detail: { file: [{ suffix: '.png' }], plan: [{ 'equals-ignore-case': 'PRO' }] } },
    matches: [withDetail({ file: 'a.png', plan: 'pro' }), withDetail({ file: '.png', plan: 'Pro' })],
    misses: [withDetail({ file: 'a.jpg', plan: 'pro' }), withDetail({ file: 'a.png', plan: 'basic' })],
  },
  {
    name: 'anything-but a value needs the field, and matches other types and null',
    pattern: { detail: { state: [{ 'anything-but': 'initializing' }] } },
    matches: [
      withDetail({ state: 'running' }),
      withDetail({ state: 5 }),
      withDetail({ state: null }),
      withDetail({ state: ['initializing', 'running'] }),
    ],
    misses: [withDetail({ state: 'initializing' }), withDetail({}), withDetail({ state: ['initializing'] }), withDetail({ state: { nested: 1 } })],
  },
  {
    name: 'anything-but a list of numbers',
    pattern: { detail: { code: [{ 'anything-but': [100, 200] }] } },
    matches: [withDetail({ code: 300 }), withDetail({ code: '100' })],
    misses: [withDetail({ code: 100 }), withDetail({ code: 200.0 })],
  },
  {
    name: 'anything-but a prefix',
    pattern: { source: [{ 'anything-but': { prefix: 'strata.' } }] },
    matches: [envelope(), envelope({ source: 'strata' }), envelope({ source: 'com.strata.app' })],
    misses: [envelope({ source: 'strata.tiers' }), envelope({ source: 'strata.' })],
  },
  {
    name: 'anything-but a suffix matches non-strings too',
    pattern: { detail: { file: [{ 'anything-but': { suffix: '.png' } }] } },
    matches: [withDetail({ file: 'a.jpg' }), withDetail({ file: 12 })],
    misses: [withDetail({ file: 'a.png' }), withDetail({})],
  },
  {
    name: 'numeric range',
    pattern: { detail: { count: [{ numeric: ['>', 0, '<=', 5] }] } },
    matches: [withDetail({ count: 0.5 }), withDetail({ count: 5 }), withDetail({ count: [9, 3] })],
    misses: [withDetail({ count: 0 }), withDetail({ count: 5.01 }), withDetail({ count: '3' }), withDetail({ count: -1 }), withDetail({})],
  },
  {
    name: 'numeric single comparisons',
    pattern: { detail: { a: [{ numeric: ['>=', 10] }], b: [{ numeric: ['<', 0] }], c: [{ numeric: ['=', 3.018e2] }] } },
    matches: [withDetail({ a: 10, b: -0.1, c: 301.8 })],
    misses: [withDetail({ a: 9.99, b: -1, c: 301.8 }), withDetail({ a: 10, b: 0, c: 301.8 }), withDetail({ a: 10, b: -1, c: 301 })],
  },
  {
    name: 'exists true needs a leaf value (null counts, an object or an empty list does not)',
    pattern: { detail: { userId: [{ exists: true }] } },
    matches: [withDetail({ userId: 'u-1' }), withDetail({ userId: null }), withDetail({ userId: ['u-1'] }), withDetail({ userId: '' })],
    misses: [withDetail({}), withDetail({ userId: { id: 'u-1' } }), withDetail({ userId: [] }), withDetail('not an object')],
  },
  {
    name: 'exists false matches an absent field, also under a missing parent',
    pattern: { detail: { profile: { deletedAt: [{ exists: false }] } } },
    matches: [withDetail({ profile: { name: 'x' } }), withDetail({}), withDetail({ profile: { deletedAt: { at: 1 } } })],
    misses: [withDetail({ profile: { deletedAt: '2026-01-01' } }), withDetail({ profile: { deletedAt: null } })],
  },
  {
    name: 'nested objects AND across fields, at any depth',
    pattern: { detail: { type: ['order.paid'], properties: { plan: ['pro'], amount: [{ numeric: ['>', 10] }] } } },
    matches: [envelope()],
    misses: [
      withDetail({ type: 'order.paid', properties: { plan: 'pro', amount: 5 } }),
      withDetail({ type: 'order.paid', properties: { plan: 'basic', amount: 49 } }),
      withDetail({ type: 'order.paid', properties: 'pro' }),
      withDetail({ type: 'order.paid' }),
    ],
  },
  {
    name: 'a nested pattern over an array of objects matches within one element',
    pattern: { detail: { items: { sku: ['A'], qty: [2] } } },
    matches: [
      withDetail({
        items: [
          { sku: 'B', qty: 2 },
          { sku: 'A', qty: 2 },
        ],
      }),
    ],
    misses: [
      withDetail({
        items: [
          { sku: 'A', qty: 1 },
          { sku: 'B', qty: 2 },
        ],
      }),
    ],
  },
  {
    name: 'a value pattern does not match an object',
    pattern: { detail: ['x'] },
    matches: [],
    misses: [withDetail({ x: 'x' })],
  },
];

describe('matchesEventPattern', () => {
  describe.each(cases)('$name', ({ pattern, matches, misses }) => {
    it('is a valid pattern', () => {
      expect(validateEventPattern(pattern)).toEqual([]);
    });
    it.each(matches.map((event) => [JSON.stringify(event.detail), event]))('matches %s', (_label, event) => {
      expect(matchesEventPattern(pattern, event)).toBe(true);
    });
    it.each(misses.map((event) => [JSON.stringify({ source: event.source, resources: event.resources, detail: event.detail }), event]))(
      'does not match %s',
      (_label, event) => {
        expect(matchesEventPattern(pattern, event)).toBe(false);
      },
    );
  });

  it('a pattern {source: [x]} matches exactly the events whose source is x', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.boolean(), (wanted, other, same) => {
        const source = same ? wanted : other;
        expect(matchesEventPattern({ source: [wanted] }, envelope({ source }))).toBe(source === wanted);
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('refuses to guess at a matcher it cannot interpret', () => {
    const pattern = { source: [{ wildcard: 'com.*' }] } as unknown as EventPattern;
    expect(() => matchesEventPattern(pattern, envelope())).toThrow(InvalidEventPatternError);
    expect(() => matchesEventPattern(pattern, envelope())).toThrow('EventPattern: /source/0: cannot interpret {"wildcard":"com.*"}');
  });
});

describe('the patterns Strata deploys', () => {
  const userEvent = (source: string, detail: unknown) => envelope({ source, detail });

  it.each([
    ['USER_EVENTS_PATTERN', USER_EVENTS_PATTERN],
    ['JOURNEY_ACTIONS_PATTERN', JOURNEY_ACTIONS_PATTERN],
    ['TIER_NOTICES_PATTERN', TIER_NOTICES_PATTERN],
  ])('%s is valid and frozen', (_name, pattern) => {
    expect(validateEventPattern(pattern)).toEqual([]);
    expect(Object.isFrozen(pattern)).toBe(true);
    expect(Object.isFrozen(pattern['source'])).toBe(true);
  });

  it("ingests producers' user events and never Strata's own notices", () => {
    expect(RESERVED_SOURCE_PREFIX).toBe('strata.');
    expect(matchesEventPattern(USER_EVENTS_PATTERN, userEvent('com.example.app', { userId: 'u', eventId: 'e' }))).toBe(true);
    expect(matchesEventPattern(USER_EVENTS_PATTERN, userEvent('strata.tiers', { userId: 'u', eventId: 'e' }))).toBe(false);
    expect(matchesEventPattern(USER_EVENTS_PATTERN, userEvent('strata.journeys', { userId: 'u', eventId: 'e' }))).toBe(false);
  });

  it("sends producers' events without a usable userId or eventId to ingest, which dead-letters them with a reason", () => {
    for (const detail of [{ userId: 'u' }, { eventId: 'e' }, {}, { userId: 42, eventId: ['e'] }, { userId: null, eventId: '' }]) {
      expect(matchesEventPattern(USER_EVENTS_PATTERN, userEvent('com.example.app', detail))).toBe(true);
    }
  });

  it('routes journey actions and tier notices by source', () => {
    const action = envelope({ source: 'strata.journeys', 'detail-type': 'JourneyAction' });
    expect(matchesEventPattern(JOURNEY_ACTIONS_PATTERN, action)).toBe(true);
    expect(matchesEventPattern(JOURNEY_ACTIONS_PATTERN, { ...action, 'detail-type': 'Other' })).toBe(false);
    expect(matchesEventPattern(TIER_NOTICES_PATTERN, envelope({ source: 'strata.tiers', 'detail-type': 'TierChanged' }))).toBe(true);
    expect(matchesEventPattern(TIER_NOTICES_PATTERN, action)).toBe(false);
  });
});

describe('validateEventPattern', () => {
  it.each<[string, unknown, Array<{ pointer: string; message: string }>]>([
    ['a pattern that is not an object', ['strata.tiers'], [{ pointer: '', message: 'must be a JSON object of fields to match, not a list' }]],
    ['an empty pattern', {}, [{ pointer: '', message: 'is empty: a pattern must name at least one field to match' }]],
    [
      'a bare string value',
      { source: 'strata.tiers' },
      [
        {
          pointer: '/source',
          message:
            'must be a list of values to match or an object of nested fields, not a string ("strata.tiers") (wrap it in a list: ["strata.tiers"])',
        },
      ],
    ],
    [
      'a bare number nested in detail',
      { detail: { amount: 5 } },
      [
        {
          pointer: '/detail/amount',
          message: 'must be a list of values to match or an object of nested fields, not a number (5) (wrap it in a list: [5])',
        },
      ],
    ],
    ['an empty list', { source: [] }, [{ pointer: '/source', message: 'is an empty list, which matches nothing: list at least one value' }]],
    ['a nested list', { source: [['a']] }, [{ pointer: '/source/0', message: 'a nested list is not a matcher: list the values directly' }]],
    [
      'two operators in one matcher',
      { source: [{ prefix: 'a', suffix: 'b' }] },
      [{ pointer: '/source/0', message: 'a matcher object has exactly one operator, found 2 (prefix, suffix)' }],
    ],
    [
      'an unknown operator',
      { source: [{ startsWith: 'a' }] },
      [
        {
          pointer: '/source/0',
          message: 'unknown operator "startsWith" (use one of: prefix, suffix, equals-ignore-case, anything-but, numeric, exists)',
        },
      ],
    ],
    [
      'an operator this matcher does not support',
      { source: [{ wildcard: 'a*' }] },
      [{ pointer: '/source/0', message: '"wildcard" is valid in EventBridge but not supported by Strata\'s pattern matcher' }],
    ],
    [
      '$or',
      { $or: [{ source: ['a'] }, { source: ['b'] }] },
      [{ pointer: '/$or', message: '"$or" is not supported by Strata\'s pattern matcher; use one rule per alternative' }],
    ],
    ['a prefix that is not a string', { source: [{ prefix: 5 }] }, [{ pointer: '/source/0', message: '"prefix" takes a string, not a number (5)' }]],
    [
      'exists that is not a boolean',
      { detail: { a: [{ exists: 'yes' }] } },
      [{ pointer: '/detail/a/0', message: '"exists" takes true or false, not a string ("yes")' }],
    ],
    [
      'anything-but mixing types',
      { a: [{ 'anything-but': ['x', 1] }] },
      [{ pointer: '/a/0', message: '"anything-but" takes a list of only strings or only numbers' }],
    ],
    [
      'anything-but an empty prefix',
      { a: [{ 'anything-but': { prefix: '' } }] },
      [{ pointer: '/a/0', message: '"anything-but" "prefix" takes a non-empty string' }],
    ],
    [
      'anything-but null',
      { a: [{ 'anything-but': null }] },
      [{ pointer: '/a/0', message: '"anything-but" takes a string, a number, a list of them, or {"prefix": ...}; not null' }],
    ],
    [
      'numeric with a bad operator',
      { a: [{ numeric: ['!=', 1] }] },
      [{ pointer: '/a/0', message: '"numeric" operator "!=" is not one of <, <=, =, >, >=' }],
    ],
    ['numeric with a string bound', { a: [{ numeric: ['>', '1'] }] }, [{ pointer: '/a/0', message: '"numeric" bound after ">" must be a number' }]],
    [
      'numeric with the upper bound first',
      { a: [{ numeric: ['<', 5, '>', 0] }] },
      [
        {
          pointer: '/a/0',
          message:
            '"numeric" range must give the lower bound (> or >=) first and the upper bound (< or <=) second; "numeric" takes an operator and a number, or a lower and an upper bound: [">", 0, "<=", 5]',
        },
      ],
    ],
    [
      'numeric with an empty range',
      { a: [{ numeric: ['>', 5, '<', 5] }] },
      [{ pointer: '/a/0', message: '"numeric" range is empty: 5 is not below 5' }],
    ],
    [
      'numeric with three items',
      { a: [{ numeric: ['>', 5, '<'] }] },
      [{ pointer: '/a/0', message: '"numeric" takes an operator and a number, or a lower and an upper bound: [">", 0, "<=", 5]' }],
    ],
  ])('reports %s', (_name, pattern, problems) => {
    expect(validateEventPattern(pattern)).toEqual(problems);
  });

  it('reports every problem in one pass', () => {
    const problems = validateEventPattern({ source: 'a', detail: { b: [], c: [{ exists: 1 }] } });
    expect(problems.map((problem) => problem.pointer)).toEqual(['/source', '/detail/b', '/detail/c/0']);
  });
});
