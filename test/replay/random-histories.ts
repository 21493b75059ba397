/**
 * Random small histories for the replay's differential tests: producer resends (same event id, same or shifted
 * time), events out of order in the file, opt-outs, conversions (the journeys' own products and others), engagement
 * with the journeys' templates and groups, activity at all hours (quiet hours defer sends) and bursts of tier
 * changes (frequency caps defer sends), an amount that is a string (ingest refuses it), under the shipped rules and
 * the stricter fixture.
 */
import fc from 'fast-check';
import type { UserEvent } from '../../functions/core/event.js';

const START = Date.parse('2026-09-01T00:00:00+08:00');
const TEMPLATES = [
  'pm-beginner-case-studies',
  'career-change-success-story',
  'beginner-live-session-replay',
  'pm-practice-project-walkthrough',
  'pm-basics-101',
];
const GROUPS = ['zero-experience-career-change', 'pm-career-change-members', 'pm-practice-squad', 'group-active'];

type Draft = { type: string; properties: Record<string, unknown> };

const activity: fc.Arbitrary<Draft> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TEMPLATES).map((templateId) => ({ type: 'content.completed', properties: { templateId } })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom('content.opened', 'content.viewed'), fc.constantFrom(...TEMPLATES))
      .map(([type, templateId]) => ({ type, properties: { templateId } })),
  },
  { weight: 2, arbitrary: fc.constantFrom(...GROUPS).map((groupId) => ({ type: 'group.joined', properties: { groupId } })) },
  { weight: 3, arbitrary: fc.constant({ type: 'group.message', properties: { groupId: 'group-active' } }) },
  { weight: 2, arbitrary: fc.constant({ type: 'task.completed', properties: { taskId: 'prd-draft' } }) },
  { weight: 2, arbitrary: fc.constant({ type: 'app.opened', properties: {} }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(99, 1299, '199'), fc.constantFrom('pm-course', 'pm-camp-4day', 'pm-advanced-course', 'ebook'))
      .map(([amount, product]) => ({ type: 'order.paid', properties: { amount, product, currency: 'CNY' } })),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'referral.converted', properties: { referredUser: 'ref-1' } }) },
  { weight: 1, arbitrary: fc.constant({ type: 'message.opted_out', properties: { channel: 'official-account' } }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('career-change', 'upskill'), fc.constantFrom('Asia/Shanghai', 'America/New_York', 'Not/AZone'))
      .map(([goal, timezone]) => ({ type: 'questionnaire.answered', properties: { goal, level: 'junior', interests: ['data'], timezone } })),
  },
);

const timedActivity = fc.record({ day: fc.integer({ min: 0, max: 9 }), minute: fc.integer({ min: 0, max: 24 * 60 - 1 }), draft: activity });

const userHistory = fc.record({
  signupMinute: fc.integer({ min: 0, max: 24 * 60 - 1 }),
  activities: fc.array(timedActivity, { minLength: 1, maxLength: 22 }),
});

/** `maxUsers` users' histories, shuffled, with the rules folder and extra review days to replay them under. */
export const randomHistory = (maxUsers: number) =>
  fc
    .record({
      users: fc.array(userHistory, { minLength: 1, maxLength: maxUsers }),
      /** Resends: index of the event to resend, and how far its time moves (0 = an exact resend). */
      resends: fc.array(fc.tuple(fc.nat(), fc.constantFrom(0, 0, 90, -600, 1440)), { maxLength: 4 }),
      shuffleSeed: fc.integer(),
      rulesDir: fc.constantFrom('.', 'test/fixtures/stricter'),
      extraDays: fc.constantFrom(0, 3, 16),
    })
    .map(({ users, resends, shuffleSeed, rulesDir, extraDays }) => {
      const events: UserEvent[] = [];
      users.forEach((user, u) => {
        const userId = `prop-user-${u}`;
        const at = (day: number, minute: number): string => new Date(START + day * 86_400_000 + minute * 60_000).toISOString();
        events.push({
          eventId: `${userId}-signup`,
          userId,
          type: 'user.signed_up',
          occurredAt: at(0, user.signupMinute),
          properties: { channel: 'app' },
        });
        user.activities.forEach((a, i) =>
          events.push({ eventId: `${userId}-${i}`, userId, type: a.draft.type, occurredAt: at(a.day, a.minute), properties: a.draft.properties }),
        );
      });
      for (const [index, shiftMinutes] of resends) {
        const original = events[index % events.length]!;
        events.push({ ...original, occurredAt: new Date(Date.parse(original.occurredAt) + shiftMinutes * 60_000).toISOString() });
      }
      // File order is not time order.
      let state = shuffleSeed >>> 0;
      for (let i = events.length - 1; i > 0; i--) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        const j = state % (i + 1);
        [events[i], events[j]] = [events[j]!, events[i]!];
      }
      return { events, rulesDir, extraDays };
    });
