/**
 * Producers' events are untrusted: oversized properties, prototype-polluting keys (top level and nested) and wrong
 * types are rejected by parseUserEvent with every problem and its JSON pointer, and through the ingest handler they
 * go to the dead-letter queue with that reason, while the log line carries no raw user id or email.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '../../functions/core/errors.js';
import { MAX_PROPERTIES_BYTES, parseUserEvent } from '../../functions/core/event.js';
import { userRef } from '../../functions/core/hash.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { batch, createIngestWorld, envelope, failedIds, sqsRecord } from '../reliability/world.js';
import { captureProcessOutput } from '../helpers/captured-output.js';

const dynalite = useDynalite();
const EMAIL = 'ana@example.com';
const valid = { eventId: 'evt-1', userId: EMAIL, type: 'order.paid', occurredAt: '2026-03-10T09:00:00Z', properties: { amount: 5 } };

function problemsOf(input: unknown): string[] {
  try {
    parseUserEvent(input);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidEventError);
    return (error as InvalidEventError).problems.map((p) => `${p.pointer}: ${p.message}`);
  }
  throw new Error('parseUserEvent accepted hostile input');
}

// Powertools writes INFO to stdout and WARN/ERROR to stderr; both are kept.
const output = captureProcessOutput();

describe('parseUserEvent rejects hostile or malformed events with a reason', () => {
  it('oversized properties', () => {
    expect(problemsOf({ ...valid, properties: { blob: 'x'.repeat(MAX_PROPERTIES_BYTES) } })).toEqual([
      `/properties: is ${MAX_PROPERTIES_BYTES + 11} bytes; the limit is ${MAX_PROPERTIES_BYTES} (send ids, not documents)`,
    ]);
  });

  it('properties nested too deeply', () => {
    expect(problemsOf({ ...valid, properties: { a: { b: { c: { d: { e: 1 } } } } } })).toEqual([
      '/properties/a/b/c/d: is nested deeper than 4 levels',
    ]);
  });

  it.each([
    [
      '__proto__ at the top level',
      '{"eventId":"e","userId":"u","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","__proto__":{"admin":true}}',
      '/__proto__',
    ],
    [
      'constructor at the top level',
      '{"eventId":"e","userId":"u","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","constructor":{"prototype":{}}}',
      '/constructor',
    ],
    [
      '__proto__ in properties',
      '{"eventId":"e","userId":"u","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","properties":{"__proto__":{"admin":true}}}',
      '/properties/__proto__',
    ],
    [
      'constructor nested in properties',
      '{"eventId":"e","userId":"u","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","properties":{"cart":{"constructor":{"prototype":{"admin":true}}}}}',
      '/properties/cart/constructor',
    ],
    [
      'prototype nested in properties',
      '{"eventId":"e","userId":"u","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","properties":{"cart":{"prototype":1}}}',
      '/properties/cart/prototype',
    ],
  ])('%s', (_label, json, pointer) => {
    expect(problemsOf(JSON.parse(json))).toContain(`${pointer}: is a reserved key and is not allowed`);
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
  });

  it.each([
    ['userId is a number', { ...valid, userId: 42 }, '/userId'],
    ['occurredAt is not a date', { ...valid, occurredAt: 'yesterday' }, '/occurredAt'],
    ['properties is an array', { ...valid, properties: [1, 2] }, '/properties'],
    ['type is not dotted lower case', { ...valid, type: 'Order Paid' }, '/type'],
    ['an unknown top-level field', { ...valid, admin: true }, ''],
    ['eventId is too long', { ...valid, eventId: 'e'.repeat(129) }, '/eventId'],
  ])('%s', (_label, input, pointer) => {
    expect(problemsOf(input).some((line) => line.startsWith(`${pointer}: `))).toBe(true);
  });

  it.each([
    [
      'occurredAt without a time zone',
      { ...valid, occurredAt: '2026-03-10T09:00:00' },
      '/occurredAt: "2026-03-10T09:00:00" has no time zone: add Z for UTC or an offset such as +08:00 (for example 2026-03-10T09:00:00Z)',
    ],
    [
      'occurredAt before 2000',
      { ...valid, occurredAt: '1970-01-01T00:00:00Z' },
      "/occurredAt: 1970-01-01T00:00:00Z is before 2000-01-01; check the producer's clock and units (seconds vs milliseconds)",
    ],
    [
      'a number DynamoDB cannot store',
      { ...valid, properties: { amount: 1e308, nested: { list: [1, -1e-200] } } },
      '/properties/amount: 1e+308 is outside the range DynamoDB can store (magnitude 1e-130 to 9.99e125)',
    ],
  ])('%s, saying what is wrong', (_label, input, problem) => {
    expect(problemsOf(input)).toContain(problem);
  });

  it('refuses occurredAt more than the margin ahead of the receiving clock, and takes it within the margin', () => {
    const now = new Date('2026-03-10T09:00:00Z');
    expect(() => parseUserEvent({ ...valid, occurredAt: '2026-03-11T08:59:59Z' }, 'x', { now })).not.toThrow();
    expect(() => parseUserEvent({ ...valid, occurredAt: '2026-03-11T09:00:01Z' }, 'x', { now })).toThrow(
      "/occurredAt: 2026-03-11T09:00:01Z is more than 24 h ahead of the receiving clock (2026-03-10T09:00:00.000Z); check the producer's clock and time zone",
    );
    expect(() => parseUserEvent({ ...valid, occurredAt: '2026-03-11T09:00:01Z' }, 'x', { now, maxFutureMs: 2 * 86_400_000 })).not.toThrow();
  });
});

describe('through the ingest handler', () => {
  it('each hostile event goes to the DLQ with its body and reason, the valid one is applied, and no log line has the email', async () => {
    const world = await createIngestWorld(dynalite);
    const hostile = [
      envelope({ ...valid, eventId: 'big', properties: { blob: 'x'.repeat(MAX_PROPERTIES_BYTES) } }),
      `{"detail-type":"UserEvent","detail":{"eventId":"proto","userId":"${EMAIL}","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","__proto__":{"admin":true}}}`,
      `{"detail-type":"UserEvent","detail":{"eventId":"nested","userId":"${EMAIL}","type":"order.paid","occurredAt":"2026-03-10T09:00:00Z","properties":{"a":{"constructor":{"x":1}}}}}`,
      envelope({ ...valid, eventId: `${EMAIL}-typed`, occurredAt: 12 }),
    ];
    const records = [
      ...hostile.map((body, i) => sqsRecord(`m-${i}`, body)),
      sqsRecord('m-ok', envelope({ ...valid, eventId: 'ok', properties: { amount: 120 } })),
    ];
    const logger = new Logger({ serviceName: 'strata-ingest-security', logLevel: 'DEBUG' });

    const response = await world.handler({}, logger)(batch(records));

    expect(failedIds(response)).toEqual([]);
    expect(world.deadLetters.letters.map((l) => l.body)).toEqual(hostile);
    expect(world.deadLetters.letters.map((l) => l.reason)).toEqual([
      expect.stringContaining('/properties: is'),
      expect.stringContaining('/__proto__: is a reserved key'),
      expect.stringContaining('/properties/a/constructor: is a reserved key'),
      expect.stringContaining('/occurredAt'),
    ]);
    expect((await world.store.loadUser(EMAIL, '2026-01-01')).profile?.tier).toBe('core');

    const logs = output.text();
    expect(logs).toContain('Poison event sent to the dead-letter queue');
    expect(logs).toContain(userRef(EMAIL));
    expect(logs).not.toContain(EMAIL);
    expect(logs).not.toContain(encodeURIComponent(EMAIL));
  });
});
