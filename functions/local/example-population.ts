/**
 * The example population: a paid product-manager course business's newcomers who drift by, casual learners,
 * engaged community members, paying core members and learners who churn after a few busy weeks. Used by
 * examples/generate-events.ts, by the `strata dev` demo and by the benchmarks.
 *
 * The same options always produce the same events (a seeded PRNG, no clock).
 */
import type { UserEvent } from '../core/event.js';

export interface GeneratorOptions {
  users: number;
  days: number;
  seed: number;
  start: string;
}

type Persona = 'drifter' | 'casual' | 'engaged' | 'buyer' | 'churner';

/**
 * How often, on an active day, a persona opens one of the journeys' contents and joins one of their groups, and
 * how often they refer a friend. Engagement is a rate per active day rather than a reaction to sends (the generator
 * knows nothing of journeys), tuned so that the shipped journeys' branches take both paths.
 */
const ENGAGEMENT: Record<Persona, { opens: number; joins: number; referrals: number }> = {
  drifter: { opens: 0.3, joins: 0.05, referrals: 0 },
  casual: { opens: 0.55, joins: 0.15, referrals: 0.005 },
  engaged: { opens: 0.75, joins: 0.35, referrals: 0.05 },
  buyer: { opens: 0.8, joins: 0.4, referrals: 0.12 },
  churner: { opens: 0.65, joins: 0.25, referrals: 0.01 },
};

const PERSONAS: Array<{ persona: Persona; share: number; activeChance: (day: number) => number }> = [
  { persona: 'drifter', share: 0.35, activeChance: (day) => (day < 7 ? 0.15 : 0.01) },
  { persona: 'casual', share: 0.25, activeChance: () => 0.18 },
  { persona: 'engaged', share: 0.15, activeChance: () => 0.45 },
  { persona: 'buyer', share: 0.08, activeChance: () => 0.5 },
  { persona: 'churner', share: 0.17, activeChance: (day) => (day < 21 ? 0.55 : 0.02) },
];

const CONTENT = ['case-career-switch', 'pm-basics-101', 'prd-template', 'user-interview-guide', 'metrics-primer', 'live-replay-week1'];
/** What the shipped journeys (journeys/*.json) send: their content templates and community groups. */
const JOURNEY_CONTENT = [
  'pm-beginner-case-studies',
  'career-change-success-story',
  'beginner-live-session-replay',
  'pm-practice-project-checkin',
  'pm-practice-project-walkthrough',
  'pm-advanced-case-library',
];
const JOURNEY_GROUPS = ['zero-experience-career-change', 'pm-career-change-members', 'pm-practice-squad', 'pm-alumni-mentor-circle'];
const GOALS = ['career-change', 'upskill', 'curious'];
const LEVELS = ['zero-experience', 'junior', 'senior'];
const INTERESTS = ['product-sense', 'data', 'interviews', 'growth', 'ai-products'];

/** mulberry32: small, fast and good enough for synthetic data. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateEvents(options: GeneratorOptions): UserEvent[] {
  const random = seededRandom(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const startMs = Date.parse(`${options.start}T00:00:00+08:00`);
  const events: UserEvent[] = [];
  let sequence = 0;

  for (let u = 0; u < options.users; u++) {
    const userId = `user-${String(u + 1).padStart(5, '0')}`;
    let roll = random();
    const profile = PERSONAS.find((p) => (roll -= p.share) < 0) ?? PERSONAS[0]!;
    const firstDay = Math.floor(random() * Math.max(1, options.days * 0.6));
    const emit = (day: number, type: string, properties: Record<string, unknown> = {}): void => {
      // Local activity between 08:00 and 23:00 Asia/Shanghai.
      const minuteOfDay = 8 * 60 + Math.floor(random() * 15 * 60);
      const occurredAt = new Date(startMs + day * 86_400_000 + minuteOfDay * 60_000).toISOString();
      sequence += 1;
      events.push({ eventId: `e${options.seed}-${sequence}`, userId, type, occurredAt, properties });
    };

    emit(firstDay, 'user.signed_up', { channel: pick(['mini-program', 'official-account', 'app']) });
    if (random() < 0.6) {
      emit(firstDay, 'questionnaire.answered', {
        goal: profile.persona === 'drifter' ? pick(['curious', 'upskill']) : pick(GOALS),
        level: pick(LEVELS),
        interests: [pick(INTERESTS), pick(INTERESTS)].filter((v, i, all) => all.indexOf(v) === i),
        timezone: 'Asia/Shanghai',
      });
    }
    let boughtCourse = false;
    for (let day = firstDay; day < options.days; day++) {
      const sinceStart = day - firstDay;
      if (day !== firstDay && random() >= profile.activeChance(sinceStart)) continue;
      if (random() < 0.5) emit(day, 'app.opened');
      const content = pick(CONTENT);
      emit(day, 'content.viewed', { templateId: content });
      const completes = profile.persona === 'drifter' ? 0.15 : profile.persona === 'casual' ? 0.5 : 0.7;
      if (random() < completes) emit(day, 'content.completed', { templateId: content });
      if (profile.persona !== 'drifter' && profile.persona !== 'casual') {
        if (random() < 0.55) emit(day, 'group.message', { groupId: `group-${profile.persona === 'buyer' ? 'core' : 'active'}` });
        if (random() < 0.2) emit(day, 'task.completed', { taskId: pick(['prd-draft', 'competitor-teardown', 'mock-interview']) });
      }
      const engagement = ENGAGEMENT[profile.persona];
      // Newcomers read the beginner material most, so it comes up more often.
      if (random() < engagement.opens) {
        const templateId = random() < 0.4 ? JOURNEY_CONTENT[0]! : pick(JOURNEY_CONTENT);
        emit(day, random() < 0.5 ? 'content.opened' : 'content.viewed', { templateId });
        if (random() < completes / 2) emit(day, 'content.completed', { templateId });
      }
      if (random() < engagement.joins) emit(day, 'group.joined', { groupId: pick(JOURNEY_GROUPS) });
      if (random() < engagement.referrals) emit(day, 'referral.converted', { referredUser: `ref-${sequence}` });
      if (profile.persona === 'buyer') {
        if (!boughtCourse && sinceStart >= 10 && random() < 0.15) {
          emit(day, 'order.paid', { amount: 1299, product: 'pm-course', currency: 'CNY' });
          boughtCourse = true;
        } else if (boughtCourse && sinceStart >= 30 && random() < 0.03) {
          emit(day, 'order.paid', { amount: 2999, product: 'pm-advanced-course', currency: 'CNY' });
        }
      }
      if (profile.persona === 'casual' && random() < 0.01) emit(day, 'order.paid', { amount: 99, product: 'pm-camp-4day', currency: 'CNY' });
    }
    if (random() < 0.02) emit(Math.min(options.days - 1, firstDay + 5), 'message.opted_out', { channel: 'official-account' });
  }
  return events.sort((a, b) => (a.occurredAt < b.occurredAt ? -1 : a.occurredAt > b.occurredAt ? 1 : a.eventId < b.eventId ? -1 : 1));
}

export function toJsonLines(events: UserEvent[]): string {
  return events.map((event) => JSON.stringify(event)).join('\n') + '\n';
}
