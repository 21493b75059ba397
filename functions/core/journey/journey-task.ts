/**
 * The contract between the compiled state machine and the journey-step function: what the Task state passes in,
 * and what the function returns into the execution state (at `$.results.<stepId>`), where the Choice after the
 * Task reads `outcome`. Kept small: Step Functions bills and limits state size.
 */

/** The input of a journey execution, as the starter passes it to StartExecution. */
export interface JourneyExecutionInput {
  userId: string;
}

/** The Parameters of every journey Task state. */
export interface JourneyTaskInput {
  journeyId: string;
  tier: string;
  stepId: string;
  userId: string;
  /** `$$.Execution.Name`: deterministic per user and tier change, free of personal data. */
  executionName: string;
  /** `$$.Execution.StartTime`: conversions at or after it end the journey. */
  startedAt: string;
  /** Branch checks only: when the branch's `since` step was sent, from `$.results.<since>.at`. */
  sinceSentAt?: string;
}

export type ExitReason = 'tier-changed' | 'converted' | 'opted-out' | 'held-out' | 'unknown-user' | 'unknown-step';
export type DeferReason = 'quiet-hours' | 'frequency-cap' | 'awaiting-engagement';

/** What a Task returns into the execution state. */
export type JourneyStepResult =
  | { outcome: 'sent'; at: string; actionId: string }
  | { outcome: 'deferred'; until: string; reason: DeferReason }
  | { outcome: 'exit'; reason: ExitReason }
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
