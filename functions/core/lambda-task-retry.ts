/**
 * How a Step Functions Task that invokes a Lambda function retries Lambda's own failures. One policy for every
 * state machine Strata builds (the journeys compiled from JSON, the nightly review in the CDK stack), so that a
 * burst of throttling is ridden out the same way everywhere.
 *
 * A burst of SQS traffic can use the account's Lambda concurrency for minutes; a Task that gives up after two
 * minutes then fails the whole execution (a journey under way, or the night's review). So the retry window is at
 * least 15 minutes: short waits first, then capped at five minutes. No jitter: with full jitter a wait may be
 * zero, and the window would no longer be guaranteed; executions start at different times, so they do not retry
 * in lockstep anyway.
 */

/** The ASL Retrier fields Strata uses. */
export interface TaskRetrier {
  ErrorEquals: string[];
  IntervalSeconds: number;
  MaxAttempts: number;
  BackoffRate: number;
  MaxDelaySeconds: number;
  JitterStrategy: 'FULL' | 'NONE';
}

/**
 * Lambda failures that say nothing about the function's own work: throttling, the service's faults, an invoke
 * that timed out on the client side, and a sandbox that died or timed out (the function is safe to rerun).
 */
export const LAMBDA_TRANSIENT_ERRORS: readonly string[] = [
  'Lambda.TooManyRequestsException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.Unknown',
  'Sandbox.Timedout',
];

/** The least time, in seconds, that a Task keeps retrying these errors. */
export const MIN_LAMBDA_RETRY_WINDOW_SECONDS = 15 * 60;

export const LAMBDA_TASK_RETRY: Readonly<TaskRetrier> = {
  ErrorEquals: [...LAMBDA_TRANSIENT_ERRORS],
  IntervalSeconds: 2,
  BackoffRate: 2,
  MaxDelaySeconds: 300,
  MaxAttempts: 10,
  JitterStrategy: 'NONE',
};

/** The total of the waits before each retry, as Step Functions computes them without jitter. */
export function retryWindowSeconds(retrier: Pick<TaskRetrier, 'IntervalSeconds' | 'BackoffRate' | 'MaxDelaySeconds' | 'MaxAttempts'>): number {
  let total = 0;
  for (let attempt = 0; attempt < retrier.MaxAttempts; attempt++) {
    total += Math.min(retrier.IntervalSeconds * retrier.BackoffRate ** attempt, retrier.MaxDelaySeconds);
  }
  return total;
}
