/**
 * JourneyStarter on Step Functions: one Standard state machine per tier's journey.
 *
 * Starting is idempotent through the outbox's deterministic execution name: Step Functions refuses a second
 * execution of the same name (ExecutionAlreadyExists), which is exactly "already done". Stopping derives the tier
 * from the name (`<tier>-<hash>`), so the outbox needs to remember nothing but names.
 */
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  type SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { userRef } from '../core/hash.js';
import type { JourneyExecutionInput } from '../core/journey/journey-task.js';
import type { JourneyStarter, StoppedExecution } from '../core/ports.js';
import type { JourneyRef } from '../core/state.js';

/**
 * The execution input. The compiled journeys read only `$.userId` (tier, journey id and name are constants or
 * `$$.Execution` there); the rest makes an execution readable in the console and in its history.
 */
export interface StartedJourneyInput extends JourneyExecutionInput {
  tier: string;
  journeyId: string;
  executionName: string;
}

type DescribedExecution = Pick<DescribeExecutionCommandOutput, 'status' | 'startDate'>;

/** Pages of a stopped execution's history read, newest first, to find the last state it entered (24 retries fit in one). */
const HISTORY_PAGES_READ = 3;

/** The hash part of `<tier>-<hash>` (see journeyExecutionName in core/decide.ts). */
const EXECUTION_HASH_LENGTH = 22;

export class JourneyStarterError extends Error {
  override readonly name = 'JourneyStarterError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`JourneyStarter: ${message}`, options);
  }
}

export interface SfnJourneyStarterOptions {
  client: SFNClient;
  /** Tier id → ARN of that tier's journey state machine, or of the alias that executions start on. */
  stateMachineArns: Record<string, string>;
  /** Tier id → the journey's id, passed to the execution; defaults to the tier id. */
  journeyIds?: Record<string, string>;
}

/** Parses the JSON map (tier → state machine ARN) that the stack puts in an env var, failing with a clear message. */
export function parseStateMachineArns(text: string, variable: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new JourneyStarterError(`${variable} is not JSON (expected {"<tier>": "<state machine ARN>"})`, { cause: error });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new JourneyStarterError(`${variable} must be a JSON object of tier → state machine ARN`);
  }
  const arns: Record<string, string> = {};
  for (const [tier, arn] of Object.entries(parsed)) {
    if (typeof arn !== 'string' || !arn.includes(':stateMachine:')) {
      throw new JourneyStarterError(`${variable}: the value for tier "${tier}" is not a state machine ARN`);
    }
    arns[tier] = arn;
  }
  return arns;
}

/**
 * The execution ARN of a named execution: same region, account and machine name, under `execution:`. Executions
 * are started on an alias (`…:stateMachine:<name>:<alias>`), but their ARN names the machine only.
 */
export function executionArn(stateMachineArn: string, executionName: string): string {
  const [arn, partition, service, region, account, , machineName] = stateMachineArn.split(':');
  return [arn, partition, service, region, account, 'execution', machineName, executionName].join(':');
}

/**
 * The tier of an execution name. Tier ids may contain '-' and so may the hash, so the split is by the hash's
 * fixed length, and the result must be a tier we know.
 */
export function tierOfExecutionName(executionName: string, knownTiers: Iterable<string>): string | undefined {
  const tier = executionName.slice(0, -(EXECUTION_HASH_LENGTH + 1));
  if (executionName.charAt(tier.length) !== '-') return undefined;
  for (const known of knownTiers) if (known === tier) return tier;
  return undefined;
}

export function createSfnJourneyStarter(options: SfnJourneyStarterOptions): JourneyStarter {
  const { client, stateMachineArns, journeyIds = {} } = options;

  function stateMachineFor(tier: string): string {
    const arn = stateMachineArns[tier];
    if (!arn)
      throw new JourneyStarterError(`no journey state machine for tier "${tier}" (known: ${Object.keys(stateMachineArns).join(', ') || 'none'})`);
    return arn;
  }

  /** The execution's status and start; undefined when there is no such execution. */
  async function describe(arn: string): Promise<DescribedExecution | undefined> {
    try {
      return await client.send(new DescribeExecutionCommand({ executionArn: arn }));
    } catch (error) {
      if ((error as Error).name === 'ExecutionDoesNotExist') return undefined;
      throw new JourneyStarterError(`cannot describe ${arn.slice(arn.lastIndexOf(':') + 1)}`, { cause: error });
    }
  }

  /**
   * The data of an execution that was stopped (ABORTED), as the last state it entered (or left) saw it: the newest
   * events of its history, newest first. Nothing for one that ended on its own or runs still.
   */
  async function stoppedExecution(arn: string, tier: string, described: DescribedExecution): Promise<StoppedExecution | undefined> {
    const { status, startDate } = described;
    if (status !== 'ABORTED' || !startDate) return undefined;
    // A step's retries add events of their own without entering a state, so the newest state may be a page or two back.
    let nextToken: string | undefined;
    for (let page = 0; page < HISTORY_PAGES_READ; page++) {
      const history = await client.send(
        new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 100, ...(nextToken ? { nextToken } : {}) }),
      );
      const text = (history.events ?? []).map(stateData).find((data) => data !== undefined);
      if (text !== undefined) return { tier, startedAt: startDate.toISOString(), data: JSON.parse(text) };
      nextToken = history.nextToken;
      if (!nextToken) break;
    }
    return { tier, startedAt: startDate.toISOString(), data: {} };
  }

  return {
    async start(journey: JourneyRef, userId: string): Promise<'started' | 'already-exists'> {
      const input: StartedJourneyInput = {
        userId,
        tier: journey.tier,
        journeyId: journeyIds[journey.tier] ?? journey.tier,
        executionName: journey.executionName,
      };
      try {
        await client.send(
          new StartExecutionCommand({
            stateMachineArn: stateMachineFor(journey.tier),
            name: journey.executionName,
            input: JSON.stringify(input),
          }),
        );
        return 'started';
      } catch (error) {
        // The outbox retries a start after a crash; the name makes the retry a no-op rather than a second journey.
        if (error instanceof ExecutionAlreadyExists || (error as Error).name === 'ExecutionAlreadyExists') return 'already-exists';
        if (error instanceof JourneyStarterError) throw error;
        throw new JourneyStarterError(`cannot start ${journey.executionName} for ${userRef(userId)}`, { cause: error });
      }
    },

    async stop(executionName: string): Promise<StoppedExecution | undefined> {
      const tier = tierOfExecutionName(executionName, Object.keys(stateMachineArns));
      // A tier removed from the ladder has no machine left to stop, so its executions cannot be running here.
      if (tier === undefined) return undefined;
      const arn = executionArn(stateMachineFor(tier), executionName);
      // Read once on a refused stop, to see whether it has ended; else once the stop is done.
      let refused: DescribedExecution | undefined;
      try {
        await client.send(new StopExecutionCommand({ executionArn: arn, cause: 'The user changed tier' }));
      } catch (error) {
        // Never started: the outbox lists a start that may not have happened before a crash.
        if (error instanceof ExecutionDoesNotExist || (error as Error).name === 'ExecutionDoesNotExist') return undefined;
        // A refusal is fine when the execution has already ended; the service's message is not a contract, the status is.
        if ((error as Error).name !== 'ValidationException') throw new JourneyStarterError(`cannot stop ${executionName}`, { cause: error });
        refused = await describe(arn);
        if (refused === undefined) return undefined;
        if (refused.status === 'RUNNING' || refused.status === 'PENDING_REDRIVE')
          throw new JourneyStarterError(`cannot stop ${executionName}`, { cause: error });
      }
      // Stopped now or by an earlier flush: its steps are counted from where it stopped (see core/analytics.ts).
      try {
        const described = refused ?? (await client.send(new DescribeExecutionCommand({ executionArn: arn })));
        return await stoppedExecution(arn, tier, described);
      } catch (error) {
        throw new JourneyStarterError(`cannot read where ${executionName} stopped`, { cause: error });
      }
    },
  };
}

/** The execution data a history event shows: a state's input on entering it, or its output on leaving it. */
function stateData(event: HistoryEvent): string | undefined {
  return event.stateEnteredEventDetails?.input ?? event.stateExitedEventDetails?.output;
}
