/**
 * A producer resend: the same eventId sent again with an occurredAt on another day. On dynalite, through the real
 * ingest, it counts once whether the days are light or heavy, whichever copy came first, and with both copies in
 * flight at once. The window read shows light days' keys; the SEEN# guard settles which copy counts (see
 * dynamo-store.ts).
 */
import { describe, expect, it } from 'vitest';
import type { DynamoTierStore, DynamoTierStoreOptions } from '../../functions/aws/dynamo-store.js';
import type { UserEvent } from '../../functions/core/event.js';
import { type TierServices, ingestEvent } from '../../functions/core/ingest.js';
import { loadRulesetOrThrow } from '../../functions/core/ruleset.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';

const dynalite = useDynalite();

/** A 7-day window: the resend check must read further back than the decision does. */
const ruleset = loadRulesetOrThrow({
  'rules/tiers.json': JSON.stringify({
    timezone: 'UTC',
    tiers: [
      { id: 'visitor', name: 'Visitor', graceDays: 0, minTenureDays: 0, downgrade: 'one-step' },
      { id: 'member', name: 'Member', graceDays: 0, minTenureDays: 0, downgrade: 'one-step' },
    ],
    metrics: { lessons7: { kind: 'count', windowDays: 7, eventTypes: ['lesson.completed'] } },
  }),
  'rules/member.json': JSON.stringify({
    conditions: { all: [{ fact: 'lessons7', operator: 'greaterThanInclusive', value: 50 }] },
    event: { type: 'qualifies', params: { tier: 'member' } },
  }),
});
const LESSONS = ruleset.metrics[0]!.countCounter;
const USER = 'ana';

async function setup(options: Partial<Pick<DynamoTierStoreOptions, 'lightDayEvents'>> = {}) {
  const { store, capacity } = await dynalite.freshStore({ shardCount: 4, timeZone: ruleset.timezone, ...options });
  const clock = new ManualClock(new Date('2026-03-20T12:00:00Z'));
  const services: TierServices = { ruleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock };
  return { store, capacity, services };
}

const lesson = (eventId: string, date: string): UserEvent => ({
  eventId,
  userId: USER,
  type: 'lesson.completed',
  occurredAt: `${date}T08:00:00Z`,
  properties: {},
});

/** Lessons counted on each day that has any (0 for a day whose only copy was taken back out). */
async function lessonsByDay(store: DynamoTierStore): Promise<Record<string, number>> {
  const { buckets } = await store.loadUser(USER, '2026-01-01');
  return Object.fromEntries(buckets.map((bucket) => [bucket.date, bucket.counters[LESSONS] ?? 0]));
}
const total = (byDay: Record<string, number>): number => Object.values(byDay).reduce((a, b) => a + b, 0);

describe('a producer resend with another date, both days light', () => {
  it('counts once when the resend carries a later date, 5 days on', async () => {
    const { store, services } = await setup();
    expect((await ingestEvent(services, lesson('e1', '2026-03-10'))).duplicate).toBe(false);
    await ingestEvent(services, lesson('other', '2026-03-15'));

    expect((await ingestEvent(services, lesson('e1', '2026-03-15'))).duplicate).toBe(true);

    expect(await lessonsByDay(store)).toEqual({ '2026-03-10': 1, '2026-03-15': 1 });
  });

  it('counts once when the original carries the later date', async () => {
    const { store, services } = await setup();
    await ingestEvent(services, lesson('e1', '2026-03-19'));

    expect((await ingestEvent(services, lesson('e1', '2026-03-06'))).duplicate).toBe(true);
    // And again, as a redelivery of the resend would.
    expect((await ingestEvent(services, lesson('e1', '2026-03-06'))).duplicate).toBe(true);

    const byDay = await lessonsByDay(store);
    expect(byDay['2026-03-19']).toBe(1);
    expect(total(byDay)).toBe(1);
  });

  it('counts once with both copies in flight at the same moment', async () => {
    const { store, services } = await setup();
    for (let round = 0; round < 6; round++) {
      const results = await Promise.all([
        ingestEvent(services, lesson(`c${round}`, '2026-03-12')),
        ingestEvent(services, lesson(`c${round}`, '2026-03-13')),
      ]);
      expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
    }
    expect(total(await lessonsByDay(store))).toBe(6);
  });

  it("leaves a typical user's event at 1 WRU and at most 2 RRU", async () => {
    const { services, capacity } = await setup();
    for (let day = 10; day < 20; day++) await ingestEvent(services, lesson(`warm-${day}`, `2026-03-${day}`));
    capacity.clear();
    await ingestEvent(services, lesson('typical', '2026-03-20'));
    const { read, write } = capacity.total();
    expect(write).toBe(1);
    expect(read).toBeLessThanOrEqual(2);
  });
});

describe('a producer resend with another date, one day heavy', () => {
  it('counts once when the original was on a light day and the resend lands on a heavy day', async () => {
    const { store, services } = await setup({ lightDayEvents: 3 });
    await ingestEvent(services, lesson('e1', '2026-03-10'));
    for (let i = 0; i < 5; i++) await ingestEvent(services, lesson(`busy-${i}`, '2026-03-12'));

    expect((await ingestEvent(services, lesson('e1', '2026-03-12'))).duplicate).toBe(true);

    expect(await lessonsByDay(store)).toEqual({ '2026-03-10': 1, '2026-03-12': 5 });
  });

  it('counts once when the original was on a heavy day and the resend lands on a light day', async () => {
    const { store, services } = await setup({ lightDayEvents: 3 });
    for (let i = 0; i < 5; i++) await ingestEvent(services, lesson(`busy-${i}`, '2026-03-12'));
    await ingestEvent(services, lesson('e1', '2026-03-12'));

    expect((await ingestEvent(services, lesson('e1', '2026-03-14'))).duplicate).toBe(true);

    expect(await lessonsByDay(store)).toEqual({ '2026-03-12': 6, '2026-03-14': 0 });
  });
});
