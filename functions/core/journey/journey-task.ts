/**
 * The contract between the compiled state machine and the journey-step function: what the Task state passes in,
 * and what the function returns into the execution state (at `$.results.<stepId>`), where the Choice after the
 * Task reads `outcome`. Kept small: Step Functions bills and limits state size.
 *
 * A Task passes everything its step needs to decide (the step's template, group or offer, its channel, and the
 * journey's guards, quiet hours, frequency cap and holdout) as constants of the compiled definition. So a running
 * execution keeps deciding by the journey version it started with, whatever is deployed since, and a step renamed
 * or removed in a later version cannot strand it.
 */
import * as z from 'zod';
import { CHANNEL_NAME_PATTERN } from '../channels.js';

/** The input of a journey execution, as the starter passes it to StartExecution. */
export interface JourneyExecutionInput {
  userId: string;
}

const text = z.string().min(1);
const timeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);
const channel = z.string().regex(CHANNEL_NAME_PATTERN);

/**
 * The journey settings a step decides by. Conversion is carried as its signal filter id (what ingest records),
 * not as the filter: a user's property name could end in `.$`, which Step Functions would read as a path.
 */
export const journeyStepSettingsSchema = z.object({
  holdoutPercent: z.number().min(0).max(100),
  conversionSignal: text.optional(),
  quietHours: z.object({ start: timeOfDay, end: timeOfDay, timezone: text.optional(), timezoneAttribute: text }).optional(),
  frequencyCap: z.object({ maxSends: z.number().int().min(1), days: z.number().int().min(1) }).optional(),
});

/** What one Task's step does: a send with its item and channel, a branch with its signal, or a local-time wait. */
export const taskStepSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('content'), templateId: text, channel }),
  z.object({ type: z.literal('invite'), groupId: text, channel }),
  z.object({ type: z.literal('offer'), offerId: text, expiryDays: z.number().int().min(1), channel }),
  z.object({ type: z.literal('branch'), engagementSignal: text, timeoutDays: z.number().int().min(0) }),
  z.object({ type: z.literal('wait'), untilLocalTime: timeOfDay }),
]);

/** One step of one journey version, as compiled into its Task's Parameters. */
export const journeyStepSpecSchema = z.object({
  journeyId: text,
  /** A content hash of the journey definition the step was compiled from. */
  journeyVersion: text,
  tier: text,
  stepId: text,
  settings: journeyStepSettingsSchema,
  step: taskStepSchema,
});

/** The Parameters of every journey Task state: the pinned step, and the execution's own values. */
export const journeyTaskInputSchema = journeyStepSpecSchema.extend({
  userId: text,
  /** `$$.Execution.Name`: deterministic per user and tier change, free of personal data. */
  executionName: text,
  /** `$$.Execution.StartTime`: conversions at or after it end the journey. */
  startedAt: text,
  /** Branch checks only: when the branch's `since` step was sent, from `$.results.<since>.at`. */
  sinceSentAt: z.string().optional(),
  /**
   * The execution data (`$`): the results of the steps so far, which the Task that ends the execution queues as one
   * tally (core/analytics.ts executionTally) for the nightly count. Absent from definitions compiled before it was passed.
   */
  state: z.object({ results: z.record(z.string(), z.unknown()).optional() }).optional(),
  /** The outcomes of this step after which the execution ends with no further Task (only Waits and the end). */
  endsOn: z.array(z.enum(['sent', 'engaged', 'not-engaged', 'wait'])).optional(),
});

export type JourneyStepSettings = z.infer<typeof journeyStepSettingsSchema>;
export type TaskStep = z.infer<typeof taskStepSchema>;
export type JourneyStepSpec = z.infer<typeof journeyStepSpecSchema>;
export type JourneyTaskInput = z.infer<typeof journeyTaskInputSchema>;

export type ExitReason = 'tier-changed' | 'converted' | 'opted-out' | 'held-out' | 'unknown-user';
export type DeferReason = 'quiet-hours' | 'frequency-cap' | 'awaiting-engagement';

/** What a Task returns into the execution state. */
/** `deferrals`: how often the step was deferred before (for a deferral, including it); kept for the execution's tally. */
export type JourneyStepResult =
  | { outcome: 'sent'; at: string; actionId: string; deferrals?: number }
  | { outcome: 'deferred'; until: string; reason: DeferReason; deferrals?: number }
  | { outcome: 'exit'; reason: ExitReason; deferrals?: number }
  | { outcome: 'engaged'; at: string }
  | { outcome: 'not-engaged'; at: string }
  /** A wait until a local time of day: the instant depends on the user's zone, so the step function works it out. */
  | { outcome: 'wait'; until: string };

export type JourneyOutcome = JourneyStepResult['outcome'];

/** The name of the error a step function throws for a failure worth retrying (the state machine retries it). */
export const TRANSIENT_ERROR = 'Strata.Transient';

export class TransientJourneyError extends Error {
  override readonly name = TRANSIENT_ERROR;
}
