/**
 * Runs compiled journeys locally on aws-local-stepfunctions: the same ASL the CDK deploys, with the journey-step
 * Task answered by a local function and journey time taken from a Clock.
 *
 * How Waits follow the clock. The library can only pause a Wait with a wall-clock setTimeout measured against
 * Date.now(), and its only hook is `waitTimeOverrides` (milliseconds per state name, read when the Wait starts).
 * Rewriting Wait states for local runs would make the executed ASL differ from the deployed one, so instead:
 * - every execution gets a `waitTimeOverrides` Proxy. When a Wait starts, the runner works out the instant the
 *   Wait would end in journey time from the Wait's own field (Seconds, Timestamp, SecondsPath, TimestampPath),
 *   reading paths from a shadow of the execution data (the input plus each Task result at its ResultPath; in the
 *   compiled journeys only Tasks write data, and the event log is used to check the shadow against the real
 *   Wait input).
 * - on a real or scaled clock the Proxy answers with the wall-clock delay to that instant, so the library's own
 *   Wait does the pausing;
 * - on a virtual clock it answers 0, and the next Task's local handler first sleeps on the virtual clock until
 *   that instant. (Sleeping in a Task is only safe on a virtual clock: the library races each Task against its
 *   TimeoutSeconds, 60 s by default, in wall time.)
 * Retry pauses are overridden to 0: backoff is seconds and journey time is days.
 *
 * The library stamps `$$.Execution.StartTime` from the wall clock whatever context it is given, so the Task
 * handler replaces `startedAt` with the execution's start on the runner's clock. `$$.Execution.Name` is passed
 * through the context object as in Step Functions.
 *
 * Transitions are counted from the execution event log like Step Functions bills them: one per state entered,
 * plus one per retry. On a virtual clock the library has already entered the Task after a Wait while the
 * execution sleeps, so a snapshot taken during a Wait lists that Task; an execution stopped there does not count it.
 */
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import type { AslDefinition } from '../core/journey/compile-journey.js';
import type { JourneyExecutionInput, JourneyStepResult, JourneyTaskInput } from '../core/journey/journey-task.js';
import { isVirtualClock, type Clock } from './clock.js';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';

export interface ExecutionSummary {
  executionName: string;
  tier: string;
  status: ExecutionStatus;
  startedAt: string;
  stoppedAt?: string;
  /** State transitions as Step Functions bills them: states entered plus retries. */
  transitions: number;
  /** Names of the states entered, in order. */
  statesEntered: string[];
  error?: { error: string; cause: string };
}

export interface JourneyRunnerOptions {
  /** Compiled journeys by tier. */
  machines: Record<string, AslDefinition>;
  /** The journey-step function behind every Task state (runJourneyStep with local ports, in the local stack). */
  runStep: (input: JourneyTaskInput) => Promise<JourneyStepResult>;
  clock: Clock;
}

export interface JourneyRunner {
  /** Like StartExecution: a name that was used before, running or finished, is not started again. */
  start(executionName: string, tier: string, input: JourneyExecutionInput): Promise<'started' | 'already-exists'>;
  /** Like StopExecution: aborts a running execution; an unknown or finished one is left as it is. */
  stop(executionName: string): Promise<void>;
  /** Like a deploy: new executions run these machines; running ones keep the definition they started with. */
  deploy(machines: Record<string, AslDefinition>): void;
  /** Resolves once every execution has finished or is waiting for the clock. */
  idle(): Promise<void>;
  executions(): ExecutionSummary[];
}

type JsonObject = Record<string, unknown>;
/** Any of the four ways ASL gives a Wait its end; the compiler uses Seconds and TimestampPath. */
type WaitState = { Type: 'Wait'; Seconds?: number; Timestamp?: string; SecondsPath?: string; TimestampPath?: string };

interface CompiledMachine {
  machine: StateMachine;
  taskResultPaths: Map<string, string>;
  waits: Map<string, WaitState>;
}

interface Execution {
  summary: ExecutionSummary;
  phase: 'running' | 'sleeping' | 'done';
  startedAt: Date;
  /** The execution data as far as Waits need it: the input plus every Task result at its ResultPath. */
  shadow: JsonObject;
  /** The instant the latest Wait ends, in journey time. */
  resumeAt?: number;
  /** Wait ends computed from the shadow, checked against the event log's real Wait input. */
  pathWaitChecks: Array<{ state: string; path: string; value: unknown }>;
  sleeps: AbortController;
  /** Stopped while its next Task was still waiting for the clock; that Task does not count as entered. */
  stoppedBeforeTask?: boolean;
  abortRun?: () => void;
  done?: Promise<void>;
}

export function createJourneyRunner(options: JourneyRunnerOptions): JourneyRunner {
  const { clock, runStep } = options;
  const machines = new Map(Object.entries(options.machines).map(([tier, asl]) => [tier, buildMachine(asl)]));
  const executions = new Map<string, Execution>();
  let phaseWaiters: Array<() => void> = [];

  const setPhase = (execution: Execution, phase: Execution['phase']): void => {
    if (execution.phase === phase || execution.phase === 'done') return;
    execution.phase = phase;
    const waiters = phaseWaiters;
    phaseWaiters = [];
    for (const wake of waiters) wake();
  };

  const waitEnds = (execution: Execution, stateName: string, wait: WaitState): number => {
    const base = Math.max(clock.now().getTime(), execution.resumeAt ?? -Infinity);
    if (wait.Seconds !== undefined) return base + wait.Seconds * 1000;
    if (wait.Timestamp !== undefined) return Date.parse(wait.Timestamp);
    const path = wait.SecondsPath ?? wait.TimestampPath!;
    const value = readPath(execution.shadow, path);
    execution.pathWaitChecks.push({ state: stateName, path, value });
    if (wait.SecondsPath !== undefined) return base + Number(value) * 1000;
    return Date.parse(String(value));
  };

  /** Called by the library when a Wait starts (through the waitTimeOverrides Proxy); returns the wall delay. */
  const onWaitStarted = (execution: Execution, stateName: string, wait: WaitState): number => {
    const ends = waitEnds(execution, stateName, wait);
    execution.resumeAt = Math.max(ends, execution.resumeAt ?? -Infinity);
    const wallMs = clock.wallDelayMs ? Math.min(clock.wallDelayMs(new Date(execution.resumeAt)), 2_147_483_647) : 0;
    if (wallMs > 0) setPhase(execution, 'sleeping');
    return wallMs;
  };

  /** Sleeps (virtual clock) until the latest Wait has ended in journey time. */
  const catchUpWithWaits = async (execution: Execution): Promise<void> => {
    if (execution.resumeAt === undefined || execution.resumeAt <= clock.now().getTime()) return;
    setPhase(execution, 'sleeping');
    try {
      await clock.sleepUntil(new Date(execution.resumeAt), execution.sleeps.signal);
    } finally {
      setPhase(execution, 'running');
    }
  };

  const handleTask = async (execution: Execution, compiled: CompiledMachine, stateName: string, input: unknown): Promise<JourneyStepResult> => {
    setPhase(execution, 'running');
    try {
      await catchUpWithWaits(execution);
    } catch (error) {
      // Stopped during a Wait: in Step Functions the Task after it would never have been entered.
      execution.stoppedBeforeTask = true;
      throw error;
    }
    execution.sleeps.signal.throwIfAborted();
    const task = { ...(input as JourneyTaskInput), startedAt: execution.startedAt.toISOString() };
    const result = await runStep(task);
    execution.sleeps.signal.throwIfAborted();
    execution.shadow = writePath(execution.shadow, compiled.taskResultPaths.get(stateName)!, result);
    return result;
  };

  const finish = (execution: Execution, status: ExecutionStatus, error?: { error: string; cause: string }): void => {
    if (execution.summary.status !== 'RUNNING') return;
    if (execution.stoppedBeforeTask) {
      execution.summary.statesEntered.pop();
      execution.summary.transitions--;
    }
    execution.summary.status = status;
    execution.summary.stoppedAt = clock.now().toISOString();
    if (error) execution.summary.error = error;
    setPhase(execution, 'done');
  };

  const runner: JourneyRunner = {
    async start(executionName, tier, input) {
      if (executions.has(executionName)) return 'already-exists';
      const compiled = machines.get(tier);
      if (!compiled) throw new Error(`JourneyRunner: no journey state machine for tier "${tier}" (have: ${[...machines.keys()].join(', ')})`);
      const startedAt = clock.now();
      const execution: Execution = {
        summary: { executionName, tier, status: 'RUNNING', startedAt: startedAt.toISOString(), transitions: 0, statesEntered: [] },
        phase: 'running',
        startedAt,
        shadow: structuredClone(input) as unknown as JsonObject,
        pathWaitChecks: [],
        sleeps: new AbortController(),
      };
      executions.set(executionName, execution);

      const taskHandlers = Object.fromEntries(
        [...compiled.taskResultPaths.keys()].map((name) => [name, (taskInput: unknown) => handleTask(execution, compiled, name, taskInput)]),
      );
      const waitTimeOverrides = new Proxy({} as Record<string, number>, {
        get: (_target, name) => {
          const wait = typeof name === 'string' ? compiled.waits.get(name) : undefined;
          return wait ? onWaitStarted(execution, name as string, wait) : undefined;
        },
      });
      const run = compiled.machine.run(input as never, {
        context: { Execution: { Name: executionName } },
        noThrowOnAbort: true,
        overrides: {
          taskResourceLocalHandlers: taskHandlers as never,
          waitTimeOverrides,
          retryIntervalOverrides: Object.fromEntries([...compiled.taskResultPaths.keys()].map((name) => [name, 0])),
        },
      });
      execution.abortRun = run.abort;

      let failure: { error: string; cause: string } | undefined;
      const events = (async () => {
        for await (const event of run.eventLogs) {
          if (event.type === 'StateEntered') {
            execution.summary.transitions++;
            execution.summary.statesEntered.push(event.state.name);
            const check = event.state.type === 'Wait' ? execution.pathWaitChecks.find((c) => c.state === event.state.name) : undefined;
            if (check) {
              execution.pathWaitChecks.splice(execution.pathWaitChecks.indexOf(check), 1);
              const actual = readPath(event.state.input as JsonObject, check.path);
              if (JSON.stringify(actual) !== JSON.stringify(check.value)) {
                failure = { error: 'JourneyRunner.ShadowMismatch', cause: `Wait ${check.state} read ${check.path} as ${JSON.stringify(check.value)} but the execution had ${JSON.stringify(actual)}` };
                execution.sleeps.abort();
                run.abort();
              }
            }
          } else if (event.type === 'StateRetried') {
            execution.summary.transitions++;
          } else if (event.type === 'ExecutionFailed') {
            failure ??= { error: event.Error, cause: typeof event.Cause === 'string' ? event.Cause : JSON.stringify(event.Cause) };
          }
        }
      })();

      execution.done = run.result.then(
        async () => {
          await events;
          if (failure) return finish(execution, 'FAILED', failure);
          if (execution.sleeps.signal.aborted) return finish(execution, 'ABORTED');
          // A Wait right before the end: on a virtual clock its time has not passed yet.
          try {
            await catchUpWithWaits(execution);
            finish(execution, 'SUCCEEDED');
          } catch {
            finish(execution, 'ABORTED');
          }
        },
        async (error: unknown) => {
          await events;
          finish(execution, 'FAILED', failure ?? { error: error instanceof Error ? error.name : 'Error', cause: String(error) });
        },
      ).catch((error: unknown) => finish(execution, 'FAILED', { error: 'JourneyRunner.Error', cause: String(error) }));
      return 'started';
    },

    async stop(executionName) {
      const execution = executions.get(executionName);
      if (!execution || execution.summary.status !== 'RUNNING') return;
      execution.sleeps.abort();
      execution.abortRun?.();
      await execution.done;
    },

    deploy(next) {
      for (const [tier, asl] of Object.entries(next)) machines.set(tier, buildMachine(asl));
    },

    async idle() {
      for (;;) {
        // One macrotask first: a sleeper just woken by the clock flips back to running in a microtask.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (![...executions.values()].some((execution) => execution.phase === 'running')) return;
        await new Promise<void>((resolve) => phaseWaiters.push(resolve));
      }
    },

    executions() {
      return [...executions.values()].map((execution) => structuredClone(execution.summary));
    },
  };

  if (isVirtualClock(clock)) clock.settleWith(() => runner.idle());
  return runner;
}

function buildMachine(asl: AslDefinition): CompiledMachine {
  const taskResultPaths = new Map<string, string>();
  const waits = new Map<string, WaitState>();
  for (const [name, state] of Object.entries(asl.States)) {
    if (state.Type === 'Task') taskResultPaths.set(name, state.ResultPath);
    if (state.Type === 'Wait') waits.set(name, state);
  }
  // The shadow of the execution data only understands plain paths; refuse anything else now, not mid-run.
  for (const path of taskResultPaths.values()) pathKeys(path);
  for (const wait of waits.values()) if (wait.TimestampPath ?? wait.SecondsPath) pathKeys((wait.TimestampPath ?? wait.SecondsPath)!);
  // Built once per journey and reused for every execution. The constructor validates with asl-validator, which
  // writes "QueryLanguage": "JSONPath" into every state of the object it is given, so it gets a copy.
  const machine = new StateMachine(structuredClone(asl) as unknown as StateMachineDefinition, {
    validationOptions: { checkArn: true, checkPaths: true },
  });
  return { machine, taskResultPaths, waits };
}

/** The simple paths the compiled journeys use: `$`, `$.a.b`. */
function pathKeys(path: string): string[] {
  if (path === '$') return [];
  if (!/^\$(\.[A-Za-z0-9_]+)+$/.test(path)) throw new Error(`JourneyRunner: unsupported path ${path}`);
  return path.slice(2).split('.');
}

function readPath(data: unknown, path: string): unknown {
  let value = data;
  for (const key of pathKeys(path)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as JsonObject)[key];
  }
  return value;
}

function writePath(data: JsonObject, path: string, value: unknown): JsonObject {
  const keys = pathKeys(path);
  if (keys.length === 0) return value as JsonObject;
  const root: JsonObject = { ...data };
  let node = root;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    node[key] = child !== null && typeof child === 'object' ? { ...(child as JsonObject) } : {};
    node = node[key] as JsonObject;
  }
  node[keys[keys.length - 1]!] = value;
  return root;
}
