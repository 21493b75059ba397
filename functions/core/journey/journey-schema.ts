/**
 * The journey format marketers edit (`journeys/<tier>.json`): a flat list of typed steps linked by ids, in the
 * style of dittofeed. Zod checks the shape; validate-journey.ts checks the graph (ids, reachability, loops, the
 * content-before-offer rule). `journeyJsonSchema()` exports the same schema for editors.
 */
import * as z from 'zod';
import { tierId } from '../ruleset-schema.js';
import { CHANNEL_NAME_PATTERN } from '../channels.js';

/** Step ids become ASL state names and JSONPath keys (`$.results.<id>`), so they stay plain snake_case. */
export const STEP_ID_PATTERN = /^[a-z][a-z0-9_]{0,47}$/;
const TIME_OF_DAY_PATTERN = /^([01]\d|2[0-3]):[0-5]\d$/;

const stepId = z.string().regex(STEP_ID_PATTERN, 'must be lower-case letters, digits and _, starting with a letter (at most 48)');

const stepRef = (what: string) => z.string().min(1, `must name the ${what}`).describe(`The id of the ${what}.`);

const timeOfDay = z.string().regex(TIME_OF_DAY_PATTERN, 'must be a 24-hour time "HH:MM", for example "08:00"');

const nonEmptyId = (field: string, example: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .trim()
    .min(1, `${field} must not be empty`)
    .max(128)
    .describe(`For example "${example}".`);

const channel = z
  .string()
  .regex(CHANNEL_NAME_PATTERN, 'must name a channel of channels.json: lower-case letters, digits and -')
  .describe('The channel of channels.json that delivers the JourneyAction.');

const common = {
  id: stepId.describe('Unique within the journey; other steps link to it by this id.'),
  description: z.string().max(200).optional().describe('A note for people; shown in the diagram.'),
};

export const contentStepSchema = z.strictObject({
  type: z.literal('content').describe('Send a piece of content: an article, lesson, case or replay.'),
  ...common,
  templateId: nonEmptyId('templateId', 'pm-beginner-case-studies'),
  channel,
  next: stepRef('step that follows'),
});

export const inviteStepSchema = z.strictObject({
  type: z.literal('invite').describe("Invite the user into the tier's community group."),
  ...common,
  groupId: nonEmptyId('groupId', 'zero-experience-career-change'),
  channel,
  next: stepRef('step that follows'),
});

export const offerStepSchema = z.strictObject({
  type: z.literal('offer').describe('Make a conversion offer: a course, an upgrade, a member price.'),
  ...common,
  offerId: nonEmptyId('offerId', 'pm-course-member-price'),
  expiryDays: z.number().int().min(1).max(90).describe('Days the offer stays valid after it is sent.'),
  channel,
  next: stepRef('step that follows'),
  allowColdOffer: z.literal(true).optional().describe('Allow this offer on a path with no content step before it. Needs a reason.'),
  reason: z.string().optional().describe('Why a cold offer is right here (required with allowColdOffer).'),
});

export const waitStepSchema = z.strictObject({
  type: z.literal('wait').describe("Pause: for a duration, or until a local time of day in the user's time zone."),
  ...common,
  days: z.number().int().min(0).max(90).optional(),
  hours: z.number().int().min(0).max(23).optional(),
  untilLocalTime: timeOfDay.optional().describe("The next time this clock time comes round in the user's zone."),
  next: stepRef('step that follows'),
});

export const ENGAGEMENT_SIGNALS = ['content-opened', 'content-completed', 'group-joined'] as const;
export type EngagementSignal = (typeof ENGAGEMENT_SIGNALS)[number];

export const branchStepSchema = z.strictObject({
  type: z.literal('branch').describe('Take one path if the user engaged with an earlier send, another if not.'),
  ...common,
  since: stepRef('earlier content or invite step whose engagement is checked'),
  signal: z
    .enum(ENGAGEMENT_SIGNALS, { error: `must be one of ${ENGAGEMENT_SIGNALS.join(', ')}` })
    .describe('content-opened and content-completed match the content of `since`; group-joined its group.'),
  timeoutDays: z.number().int().min(0).max(30).describe('Days after `since` was sent to wait for the engagement before taking notEngaged.'),
  engaged: stepRef('step taken when the user engaged'),
  notEngaged: stepRef('step taken when the user did not engage in time'),
});

export const exitStepSchema = z.strictObject({
  type: z.literal('exit').describe('End the journey.'),
  ...common,
});

export const STEP_TYPES = ['content', 'invite', 'offer', 'wait', 'branch', 'exit'] as const;

export const journeyStepSchema = z.discriminatedUnion(
  'type',
  [contentStepSchema, inviteStepSchema, offerStepSchema, waitStepSchema, branchStepSchema, exitStepSchema],
  { error: `must be one of ${STEP_TYPES.join(', ')}` },
);

const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const conversionSchema = z.strictObject({
  type: z.string().min(1).max(128).describe('The event type that means the user converted, for example "order.paid".'),
  where: z
    .record(z.string().min(1), z.union([scalar, z.array(scalar).min(1)]))
    .optional()
    .describe('Property filters: each property must equal the value, or one of the values in a list.'),
});

export const journeySettingsSchema = z.strictObject({
  exitOn: z
    .strictObject({
      tierChange: z.literal(true).optional().describe('Always on: a tier change ends the journey.'),
      optOut: z.literal(true).optional().describe('Always on: an opted-out user gets nothing more.'),
      conversion: conversionSchema.optional().describe('A conversion event at or after the start ends the journey.'),
    })
    .default({}),
  quietHours: z
    .strictObject({
      start: timeOfDay.describe('Local time at which sending stops, for example "21:00".'),
      end: timeOfDay.describe('Local time at which sending resumes, for example "08:00".'),
      timezone: z.string().optional().describe("IANA zone used when the user has none; default: the ruleset's zone."),
      timezoneAttribute: z.string().min(1).default('timezone').describe("The profile attribute that holds the user's IANA time zone."),
    })
    .optional(),
  frequencyCap: z
    .strictObject({
      maxSends: z.number().int().min(1).max(50),
      days: z.number().int().min(1).max(60),
    })
    .optional()
    .describe('At most maxSends journey sends in any `days` local days, across all journeys.'),
  holdoutPercent: z.number().min(0).max(50).default(0).describe('Share of users (by a stable hash) who get nothing, to measure uplift.'),
});

export const journeySchema = z.strictObject({
  $schema: z.string().optional(),
  id: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,47}$/, 'must be lower-case letters, digits and -, starting with a letter (at most 48)')
    .describe('Stable journey id; it is part of the holdout hash and of every action.'),
  tier: tierId.describe('The tier this journey runs for.'),
  name: z.string().min(1).max(100),
  start: stepRef('first step'),
  settings: journeySettingsSchema,
  steps: z.array(journeyStepSchema).min(1, 'a journey needs at least one step'),
});

export type JourneyDefinition = z.infer<typeof journeySchema>;
export type JourneyStep = z.infer<typeof journeyStepSchema>;
export type JourneyStepType = JourneyStep['type'];
export type ContentStep = z.infer<typeof contentStepSchema>;
export type InviteStep = z.infer<typeof inviteStepSchema>;
export type OfferStep = z.infer<typeof offerStepSchema>;
export type WaitStep = z.infer<typeof waitStepSchema>;
export type BranchStep = z.infer<typeof branchStepSchema>;
export type SendStep = ContentStep | InviteStep | OfferStep;
export type ConversionFilter = z.infer<typeof conversionSchema>;

/**
 * An event filter the ingest path records as a signal: for each matching event it stores
 * `${id}@${epochSeconds(occurredAt)}` in that day's DayBucket.signals, and the journey-step core reads them.
 */
export interface SignalFilter {
  id: string;
  eventTypes: string[];
  where?: Record<string, string | number | boolean | Array<string | number | boolean>>;
}

export function isSendStep(step: JourneyStep): step is SendStep {
  return step.type === 'content' || step.type === 'invite' || step.type === 'offer';
}

/** The JSON Schema of a journey file as written (defaults optional), for `strata schemas` and editors. */
export function journeyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(journeySchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
