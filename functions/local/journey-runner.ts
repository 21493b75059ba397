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
 *
 * Surviving a restart (with an ExecutionStore). The library keeps an execution only in memory, so the runner
 * records each one's position: the state it entered, that state's input (the execution data, whatever JSON it is,
 * taken from the event log) and when its latest Wait ends. It records a Task's result too, once the step has run.
 * - A Task's step runs only once its position is durable, so a crash can never leave a step done that the store
 *   does not know was started. A step whose result is durable is not run again on resume: its result is replayed.
 *   Between the step's own writes and its result's there is a window in which a crash means the step runs again on
 *   resume; the step is idempotent for that (its send is recorded once per actionId, and the action it publishes
 *   again carries the same actionId).
 * - `resume()` starts each running execution again from its recorded state, with its recorded input, on the
 *   compiled ASL it started with (kept in the store by content hash, so a journey deployed since does not change
 *   it), with only StartAt moved (one derived machine per state, built once). A Wait resumes with the end it had,
 *   so a Wait that ended while the stack was down goes on at once.
 * - `suspend()` (stopping the stack) leaves executions RUNNING in the store; `stop()` (StopExecution) and the end
 *   of an execution record its final status and stop time.
 * The library sets `$$.Execution.Input` to the input of the run, which on resume is the recorded state's input, so
 * a definition that reads `$$.Execution.Input` is refused: such values travel in the execution data instead.
 */
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { createHash } from 'node:crypto';
import type { AslDefinition } from '../core/journey/compile-journey.js';
import type { JourneyExecutionInput, JourneyStepResult, JourneyTaskInput } from '../core/journey/journey-task.js';
import type { StoppedExecution } from '../core/ports.js';
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

/** Where a running execution is, as recorded: enough to carry on from there after a restart. */
export interface ExecutionPosition {
  /** The state last entered. */
  state: string;
  /** That state's input: the execution data as the event log showed it. */
  input: unknown;
  /** When the execution's latest Wait ends, in journey time; it does not go past a Task before then. */
  wakeAt?: string;
  /** The state's Task result, once its step has run: on resume it is returned instead of running the step again. */
  result?: unknown;
}

export interface ExecutionRecord extends ExecutionSummary {
  /** Present while the execution is RUNNING. */
  position?: ExecutionPosition;
  /** The key of the definition it runs (see ExecutionStore.definitions): it keeps it across restarts and deploys. */
  definition?: string;
}

/** Durable storage for execution records (the local stack's is journey-execution-log.ts). */
export interface ExecutionStore {
  /** The latest record of every execution saved so far, including earlier runs of the stack. */
  records(): ExecutionRecord[];
  /** Resolves once the record is durable. */
  save(record: ExecutionRecord): Promise<void>;
  /** Every definition an execution has run, by key (a content hash). */
  definitions(): Map<string, AslDefinition>;
  /** Resolves once the definition is durable. */
  saveDefinition(key: string, definition: AslDefinition): Promise<void>;
}

export interface JourneyRunnerOptions {
  /** Compiled journeys by tier. */
  machines: Record<string, AslDefinition>;
  /** The journey-step function behind every Task state (runJourneyStep with local ports, in the local stack). */
  runStep: (input: JourneyTaskInput) => Promise<JourneyStepResult>;
  clock: Clock;
  /** Records executions so they survive a restart; without one, executions live in memory only. */
  store?: ExecutionStore;
  /**
   * With a store and a real or scaled clock, an execution that enters a Wait ending further than this (in wall
   * time) is parked until shortly before the Wait ends. Default DEFAULT_PARK_WAITS_OVER_MS.
   */
  parkWaitsOverMs?: number;
}

/**
 * A waiting execution inside aws-local-stepfunctions keeps about 15 KB of heap (its run, event log, timers and
 * promises, and our bookkeeping around them); ten thousand users in their journeys' waits held 150 MB. A Wait
 * longer than this is therefore not left to the library: the execution's position is already durable in the
 * store, so the run is ended and the execution is launched again from that position, by the path a restart takes,
 * a moment before the Wait ends.
 */
export const DEFAULT_PARK_WAITS_OVER_MS = 10_000;
/** How long before its Wait ends a parked execution is launched again; the library then waits out the rest. */
const UNPARK_LEAD_MS = 1_000;
const MAX_TIMER_MS = 2_147_483_647;

export interface JourneyRunner {
  /** Like StartExecution: a name that was used before, running or finished, is not started again. */
  start(executionName: string, tier: string, input: JourneyExecutionInput): Promise<'started' | 'already-exists'>;
  /**
   * Like StopExecution: aborts a running execution; an unknown or finished one is left as it is. Resolves the
   * execution data where it stopped, for an execution this runner has aborted (now or before, while it runs).
   */
  stop(executionName: string): Promise<StoppedExecution | undefined>;
  /**
   * Carries on with the executions the store holds as running, each from its recorded position; returns how many.
   * (The store's executions, finished ones too, are known from creation: their names stay taken, and stop() ends
   * one that has not been taken up yet.) Call once, when whatever a step publishes to is ready.
   */
  resume(): Promise<number>;
  /**
   * Halts every running execution in this process without ending it, once any step under way has finished: in the
   * store each stays RUNNING where it was, for the next `resume()`.
   */
  suspend(): Promise<void>;
  /** Like a deploy: new executions run these machines; running ones keep the definition they started with. */
  deploy(machines: Record<string, AslDefinition>): void;
  /** Resolves once every execution has finished or is waiting for the clock. */
  idle(): Promise<void>;
  executions(): ExecutionSummary[];
  /** How many running executions are parked in a long Wait, holding no run of the library (see parkWaitsOverMs). */
  parkedCount(): number;
}

type JsonObject = Record<string, unknown>;
/** Any of the four ways ASL gives a Wait its end; the compiler uses Seconds and TimestampPath. */
type WaitState = { Type: 'Wait'; Seconds?: number; Timestamp?: string; SecondsPath?: string; TimestampPath?: string };

interface CompiledMachine {
  asl: AslDefinition;
  /** A content hash of the definition: executions record it to keep their version. */
  key: string;
  machine: StateMachine;
  /** The same definition started at another state, for resumed executions; built when first needed. */
  machinesFrom: Map<string, StateMachine>;
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
  /**
   * The same as far as the event log has got: the log runs behind the library, so a state's position takes its
   * wake-up time from here (resumeAt may already hold the end of a Wait after it). Fed by waitEndsToLog.
   */
  loggedResumeAt?: number;
  /** The ends of the Waits started, in order, until the log reaches their StateEntered. */
  waitEndsToLog: number[];
  /** Wait ends computed from the shadow, checked against the event log's real Wait input. */
  pathWaitChecks: Array<{ state: string; path: string; value: unknown }>;
  sleeps: AbortController;
  /** Stopped while its next Task was still waiting for the clock; that Task does not count as entered. */
  stoppedBeforeTask?: boolean;
  abortRun?: () => void;
  done?: Promise<void>;
  position: ExecutionPosition;
  /** The latest save of the position; a step waits for it before acting. */
  positionSaved: Promise<void>;
  /**
   * The state this run starts in, already recorded and counted (the start state, or the position resumed from):
   * its StateEntered is not counted or saved again, and a resumed Wait keeps its recorded end.
   */
  enteredFromRecord?: { state: string; entered: boolean; waitRestored: boolean };
  /** Task invocations made by the library, and those the event log has announced (StateEntered or StateRetried). */
  taskCalls: number;
  taskAnnouncements: number;
  announcementWaiters: Array<{ call: number; wake: () => void }>;
  /** The Task handler under way, if any: suspending lets it finish and record its result. */
  taskInFlight?: Promise<unknown>;
  /** Halted by suspend(): stays RUNNING in the store. */
  suspended?: boolean;
  /** RUNNING in the store from an earlier run of the stack, not yet taken up by resume(). */
  awaitingResume?: boolean;
  /** Being parked: resolves once its library run has ended and the dormant record has taken its place. */
  parking?: Promise<void>;
  /** Its library run is being ended for parking: not a stop, so its end records nothing. */
  leavingForPark?: boolean;
  /** Parked in a long Wait: no library run, only its recorded position; it is launched again from there then. */
  dormantUntil?: number;
  /** The key of the definition it runs; absent in records from before definitions were kept. */
  definition?: string;
  /** Aborted by stop(): the execution data where it stopped, as JSON (kept in memory, for the journey counters). */
  abortedWith?: string;
}

export function createJourneyRunner(options: JourneyRunnerOptions): JourneyRunner {
  const { clock, runStep, store } = options;
  const machines = new Map(Object.entries(options.machines).map(([tier, asl]) => [tier, buildMachine(asl)]));
  const executions = new Map<string, Execution>();
  let phaseWaiters: Array<() => void> = [];

  const wakePhaseWaiters = (): void => {
    const waiters = phaseWaiters;
    phaseWaiters = [];
    for (const wake of waiters) wake();
  };

  const setPhase = (execution: Execution, phase: Execution['phase']): void => {
    if (execution.phase === phase || execution.phase === 'done') return;
    execution.phase = phase;
    wakePhaseWaiters();
  };

  let savesUnderWay = 0;
  const save = (execution: Execution): Promise<void> => {
    if (!store) return Promise.resolve();
    const record: ExecutionRecord = structuredClone(execution.summary);
    if (execution.summary.status === 'RUNNING') record.position = structuredClone(execution.position);
    if (execution.definition !== undefined) record.definition = execution.definition;
    savesUnderWay++;
    const saved = store.save(record);
    // idle() also waits for saves, so that what a caller sees after it is on disk.
    const settled = (): void => {
      savesUnderWay--;
      wakePhaseWaiters();
    };
    saved.then(settled, settled);
    return saved;
  };

  const waitEnds = (execution: Execution, stateName: string, wait: WaitState): number => {
    const restored = execution.enteredFromRecord;
    if (restored?.state === stateName && !restored.waitRestored && execution.resumeAt !== undefined) {
      // The Wait this execution was resumed in: it ends when it was going to, not a whole Wait after the restart.
      restored.waitRestored = true;
      return execution.resumeAt;
    }
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
    execution.waitEndsToLog.push(execution.resumeAt);
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

  /** The library calls a Task's handler right after dispatching its StateEntered (or StateRetried): wait for our log. */
  const announced = (execution: Execution, call: number): Promise<void> => {
    if (execution.taskAnnouncements >= call) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(execution.sleeps.signal.reason);
      execution.sleeps.signal.addEventListener('abort', onAbort, { once: true });
      execution.announcementWaiters.push({
        call,
        wake: () => {
          execution.sleeps.signal.removeEventListener('abort', onAbort);
          resolve();
        },
      });
    });
  };

  const announceTask = (execution: Execution): void => {
    execution.taskAnnouncements++;
    const due = execution.announcementWaiters.filter((waiter) => waiter.call <= execution.taskAnnouncements);
    execution.announcementWaiters = execution.announcementWaiters.filter((waiter) => waiter.call > execution.taskAnnouncements);
    for (const waiter of due) waiter.wake();
  };

  const handleTask = async (execution: Execution, compiled: CompiledMachine, stateName: string, input: unknown): Promise<JourneyStepResult> => {
    const call = ++execution.taskCalls;
    setPhase(execution, 'running');
    try {
      await catchUpWithWaits(execution);
    } catch (error) {
      // Stopped during a Wait: in Step Functions the Task after it would never have been entered.
      execution.stoppedBeforeTask = true;
      throw error;
    }
    // No step acts before the store knows the execution reached it.
    await announced(execution, call);
    await execution.positionSaved;
    execution.sleeps.signal.throwIfAborted();
    const position = execution.position;
    let result = position.result as JourneyStepResult | undefined;
    if (position.state !== stateName || result === undefined) {
      const task = { ...(input as JourneyTaskInput), startedAt: execution.startedAt.toISOString() };
      result = await runStep(task);
      position.result = result;
      // Recorded even if the execution was stopped meanwhile: the step has happened.
      await save(execution);
    }
    execution.sleeps.signal.throwIfAborted();
    execution.shadow = writePath(execution.shadow, compiled.taskResultPaths.get(stateName)!, result);
    return result;
  };

  const finish = async (execution: Execution, status: ExecutionStatus, error?: { error: string; cause: string }): Promise<void> => {
    if (execution.summary.status !== 'RUNNING') return;
    if (execution.suspended || execution.leavingForPark) return setPhase(execution, 'done');
    if (execution.stoppedBeforeTask) {
      execution.summary.statesEntered.pop();
      execution.summary.transitions--;
    }
    // Kept as text: a stop is answered with it for as long as the stack runs (a repeated stop counts once by it), and
    // thousands of stopped executions' data as objects took tens of MB of heap.
    if (status === 'ABORTED') execution.abortedWith = JSON.stringify(execution.shadow);
    execution.summary.status = status;
    execution.summary.stoppedAt = clock.now().toISOString();
    if (error) execution.summary.error = error;
    setPhase(execution, 'done');
    // A finished execution stays known by name, as in Step Functions, but needs nothing of its run: abortRun held
    // the library's run (its whole event log) for as long as the stack ran.
    delete execution.abortRun;
    delete execution.taskInFlight;
    execution.shadow = {};
    execution.position = { state: execution.position.state, input: null };
    await save(execution);
  };

  /** The definition a resumed execution started with, built once per definition. */
  const byDefinition = new Map<string, CompiledMachine>();
  const definitionOf = (execution: Execution): CompiledMachine | undefined => {
    const key = execution.definition;
    if (key === undefined) return undefined;
    let compiled = byDefinition.get(key) ?? [...machines.values()].find((machine) => machine.key === key);
    const asl = compiled ? undefined : store?.definitions().get(key);
    if (asl) compiled = buildMachine(asl);
    if (compiled) byDefinition.set(key, compiled);
    return compiled;
  };

  /** Runs the execution from its position: the start state of a new one, or where a resumed one was. */
  const launch = (execution: Execution, compiled: CompiledMachine): void => {
    const { executionName } = execution.summary;
    const from = execution.position.state;
    let machine = from === compiled.asl.StartAt ? compiled.machine : compiled.machinesFrom.get(from);
    if (!machine) {
      machine = createStateMachine({ ...compiled.asl, StartAt: from });
      compiled.machinesFrom.set(from, machine);
    }
    const taskHandlers = Object.fromEntries(
      [...compiled.taskResultPaths.keys()].map((name) => [
        name,
        (taskInput: unknown) => {
          const handled = handleTask(execution, compiled, name, taskInput);
          execution.taskInFlight = handled.catch(() => undefined);
          return handled;
        },
      ]),
    );
    const waitTimeOverrides = new Proxy({} as Record<string, number>, {
      get: (_target, name) => {
        const wait = typeof name === 'string' ? compiled.waits.get(name) : undefined;
        return wait ? onWaitStarted(execution, name as string, wait) : undefined;
      },
    });
    const run = machine.run(execution.position.input as never, {
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
    const failWith = (error: { error: string; cause: string }): void => {
      failure ??= error;
      execution.sleeps.abort();
      run.abort();
    };
    const onStateEntered = (name: string, type: string, input: unknown): void => {
      if (type === 'Wait') execution.loggedResumeAt = execution.waitEndsToLog.shift();
      const restored = execution.enteredFromRecord;
      if (restored && !restored.entered && restored.state === name) {
        restored.entered = true;
        return;
      }
      execution.summary.transitions++;
      execution.summary.statesEntered.push(name);
      const wakeAt = execution.loggedResumeAt;
      execution.position = { state: name, input, ...(wakeAt !== undefined ? { wakeAt: new Date(wakeAt).toISOString() } : {}) };
      execution.positionSaved = save(execution);
      execution.positionSaved.catch((error: unknown) => failWith({ error: 'JourneyRunner.StoreFailed', cause: String(error) }));
      if (type === 'Wait' && wakeAt !== undefined) parkIfLong(execution, wakeAt);
      const check = type === 'Wait' ? execution.pathWaitChecks.find((c) => c.state === name) : undefined;
      if (check) {
        execution.pathWaitChecks.splice(execution.pathWaitChecks.indexOf(check), 1);
        const actual = readPath(input, check.path);
        if (JSON.stringify(actual) !== JSON.stringify(check.value)) {
          failWith({
            error: 'JourneyRunner.ShadowMismatch',
            cause: `Wait ${check.state} read ${check.path} as ${JSON.stringify(check.value)} but the execution had ${JSON.stringify(actual)}`,
          });
        }
      }
    };
    const events = (async () => {
      for await (const event of run.eventLogs) {
        if (event.type === 'StateEntered') {
          onStateEntered(event.state.name, event.state.type, event.state.input);
          if (event.state.type === 'Task') announceTask(execution);
        } else if (event.type === 'StateRetried') {
          execution.summary.transitions++;
          if (event.state.type === 'Task') announceTask(execution);
        } else if (event.type === 'ExecutionFailed') {
          failure ??= { error: event.Error, cause: typeof event.Cause === 'string' ? event.Cause : JSON.stringify(event.Cause) };
        }
      }
    })();

    execution.done = run.result
      .then(
        async () => {
          await events;
          if (failure) return finish(execution, 'FAILED', failure);
          if (execution.sleeps.signal.aborted) return finish(execution, 'ABORTED');
          // A Wait right before the end: on a virtual clock its time has not passed yet.
          try {
            await catchUpWithWaits(execution);
          } catch {
            return finish(execution, 'ABORTED');
          }
          return finish(execution, 'SUCCEEDED');
        },
        async (error: unknown) => {
          await events;
          return finish(execution, 'FAILED', failure ?? { error: error instanceof Error ? error.name : 'Error', cause: String(error) });
        },
      )
      .catch(() => {
        // The final status could not be saved: the store still has the execution RUNNING, and a restart resumes it.
      });
  };

  const newExecution = (summary: ExecutionSummary, startedAt: Date, position: ExecutionPosition): Execution => ({
    summary,
    phase: summary.status === 'RUNNING' ? 'running' : 'done',
    startedAt,
    shadow: structuredClone(position.input) as JsonObject,
    pathWaitChecks: [],
    sleeps: new AbortController(),
    position,
    positionSaved: Promise.resolve(),
    enteredFromRecord: { state: position.state, entered: false, waitRestored: false },
    taskCalls: 0,
    taskAnnouncements: 0,
    announcementWaiters: [],
    waitEndsToLog: [],
    ...(position.wakeAt !== undefined ? { resumeAt: Date.parse(position.wakeAt), loggedResumeAt: Date.parse(position.wakeAt) } : {}),
  });

  /** Launches an execution again from its recorded position: after a restart, or when a parked one wakes. */
  const relaunch = async (execution: Execution): Promise<boolean> => {
    const { executionName, tier } = execution.summary;
    const state = execution.position.state;
    const compiled = definitionOf(execution) ?? machines.get(tier);
    if (!compiled || !(state in compiled.asl.States)) {
      const where = !compiled ? `there is no journey for tier "${tier}" any more` : `its journey has no state "${state}" any more`;
      await finish(execution, 'FAILED', {
        error: 'JourneyRunner.CannotResume',
        cause: `JourneyRunner: ${executionName} cannot carry on after the restart: ${where} (the journey was edited while it ran)`,
      });
      return false;
    }
    const wallAt = compiled.waits.has(state) && execution.resumeAt !== undefined ? parkUntil(execution.resumeAt) : undefined;
    if (wallAt !== undefined) keepDormant(execution, wallAt);
    else {
      execution.phase = 'running';
      launch(execution, compiled);
    }
    return true;
  };

  const parkWaitsOverMs = options.parkWaitsOverMs ?? DEFAULT_PARK_WAITS_OVER_MS;
  /** Parked executions by the wall time they are due, latest first: the next one due is the last. */
  const dormant: Array<{ wallAt: number; executionName: string }> = [];
  let unparkTimer: NodeJS.Timeout | undefined;
  let unparkTimerAt = Infinity;
  let suspended = false;

  const unparkDue = (): void => {
    unparkTimer = undefined;
    unparkTimerAt = Infinity;
    while (dormant.length > 0 && dormant.at(-1)!.wallAt - UNPARK_LEAD_MS <= Date.now()) {
      const execution = executions.get(dormant.pop()!.executionName);
      if (suspended || execution?.dormantUntil === undefined || execution.summary.status !== 'RUNNING') continue;
      execution.dormantUntil = undefined;
      void relaunch(execution).catch(() => undefined); // a failed final save leaves it RUNNING for the next start
    }
    armUnparkTimer();
  };

  const armUnparkTimer = (): void => {
    const next = dormant.at(-1);
    if (!next || suspended || unparkTimerAt <= next.wallAt) return;
    clearTimeout(unparkTimer);
    unparkTimerAt = next.wallAt;
    // Unref'd: a parked journey alone does not keep the process up, any more than one in Step Functions would.
    unparkTimer = setTimeout(unparkDue, Math.min(Math.max(0, next.wallAt - UNPARK_LEAD_MS - Date.now()), MAX_TIMER_MS)).unref();
  };

  /** The wall time a Wait ending at `wakeAt` ends, if it is long enough to park an execution in it. */
  const parkUntil = (wakeAt: number): number | undefined => {
    if (!store || !clock.wallDelayMs || isVirtualClock(clock)) return undefined;
    const wallMs = clock.wallDelayMs(new Date(wakeAt));
    return wallMs > parkWaitsOverMs ? Date.now() + wallMs : undefined;
  };

  /** An execution without a library run, launched again from its recorded position shortly before `wallAt`. */
  const keepDormant = (execution: Execution, wallAt: number): void => {
    execution.phase = 'done';
    execution.dormantUntil = wallAt;
    let at = dormant.length;
    while (at > 0 && dormant[at - 1]!.wallAt < wallAt) at--;
    dormant.splice(at, 0, { wallAt, executionName: execution.summary.executionName });
    armUnparkTimer();
  };

  /** Ends the library run of an execution in a long Wait once its position (the Wait, its input and end) is durable. */
  const parkIfLong = (execution: Execution, wakeAt: number): void => {
    const wallAt = parkUntil(wakeAt);
    if (wallAt === undefined) return;
    execution.parking = execution.positionSaved.then(
      async () => {
        if (execution.summary.status !== 'RUNNING' || execution.suspended) return;
        execution.leavingForPark = true;
        execution.sleeps.abort();
        execution.abortRun?.();
        await execution.done;
        if (execution.summary.status !== 'RUNNING' || execution.suspended) return;
        const parked = newExecution(execution.summary, execution.startedAt, execution.position);
        if (execution.definition !== undefined) parked.definition = execution.definition;
        executions.set(execution.summary.executionName, parked);
        keepDormant(parked, wallAt);
      },
      () => undefined, // the save failed: the run is failing already
    );
  };

  const runner: JourneyRunner = {
    async start(executionName, tier, input) {
      if (executions.has(executionName)) return 'already-exists';
      const compiled = machines.get(tier);
      if (!compiled) throw new Error(`JourneyRunner: no journey state machine for tier "${tier}" (have: ${[...machines.keys()].join(', ')})`);
      const startedAt = clock.now();
      const startState = compiled.asl.StartAt;
      // The start state counts as entered from here: StartExecution has happened once the record is durable.
      const summary: ExecutionSummary = {
        executionName,
        tier,
        status: 'RUNNING',
        startedAt: startedAt.toISOString(),
        transitions: 1,
        statesEntered: [startState],
      };
      const execution = newExecution(summary, startedAt, { state: startState, input: structuredClone(input) });
      execution.definition = compiled.key;
      executions.set(executionName, execution);
      try {
        if (store && !store.definitions().has(compiled.key)) await store.saveDefinition(compiled.key, compiled.asl);
        await save(execution);
      } catch (error) {
        executions.delete(executionName);
        throw error;
      }
      launch(execution, compiled);
      return 'started';
    },

    async stop(executionName) {
      let execution = executions.get(executionName);
      if (execution?.parking) {
        await execution.parking;
        execution = executions.get(executionName);
      }
      const stopped = (): StoppedExecution | undefined =>
        execution?.abortedWith === undefined
          ? undefined
          : { tier: execution.summary.tier, startedAt: execution.summary.startedAt, data: JSON.parse(execution.abortedWith) as unknown };
      if (execution?.summary.status !== 'RUNNING' || execution.suspended) return stopped();
      if (execution.awaitingResume || execution.dormantUntil !== undefined) {
        // Stopped before this run took it up again, or while parked: it ends where it was.
        execution.awaitingResume = false;
        execution.dormantUntil = undefined;
        await finish(execution, 'ABORTED');
        return stopped();
      }
      execution.sleeps.abort();
      execution.abortRun?.();
      await execution.done;
      return stopped();
    },

    async resume() {
      let resumed = 0;
      for (const execution of executions.values()) {
        if (!execution.awaitingResume) continue;
        execution.awaitingResume = false;
        if (await relaunch(execution)) resumed++;
      }
      return resumed;
    },

    async suspend() {
      suspended = true;
      clearTimeout(unparkTimer);
      const running = [...executions.values()].filter((execution) => execution.summary.status === 'RUNNING' && !execution.suspended);
      for (const execution of running) {
        execution.suspended = true;
        execution.sleeps.abort();
        execution.abortRun?.();
      }
      await Promise.all(running.map((execution) => execution.done));
      await Promise.all(running.map((execution) => execution.taskInFlight));
    },

    deploy(next) {
      for (const [tier, asl] of Object.entries(next)) machines.set(tier, buildMachine(asl));
    },

    async idle() {
      for (;;) {
        // One macrotask first: a sleeper just woken by the clock flips back to running in a microtask.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (savesUnderWay === 0 && ![...executions.values()].some((execution) => execution.phase === 'running')) return;
        await new Promise<void>((resolve) => phaseWaiters.push(resolve));
      }
    },

    executions() {
      return [...executions.values()].map((execution) => structuredClone(execution.summary));
    },

    parkedCount() {
      let parked = 0;
      for (const execution of executions.values()) if (execution.dormantUntil !== undefined) parked++;
      return parked;
    },
  };

  // Known from the start, so that a StartExecution or StopExecution before resume() finds them as Step Functions would.
  for (const { position, definition, ...summary } of store?.records() ?? []) {
    const execution = newExecution(summary, new Date(summary.startedAt), position ?? { state: '', input: {} });
    if (definition !== undefined) execution.definition = definition;
    // Not running in this process until resume(): idle() does not wait for it.
    execution.phase = 'done';
    execution.awaitingResume = summary.status === 'RUNNING';
    executions.set(summary.executionName, execution);
  }
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
  if (JSON.stringify(asl).includes('$$.Execution.Input')) {
    throw new Error(
      `JourneyRunner: the journey "${asl.Comment}" reads $$.Execution.Input, which a resumed execution cannot give it (the local library sets it to the input of the resumed state); put the value in the execution data and read it with a $. path`,
    );
  }
  const key = createHash('sha256').update(JSON.stringify(asl)).digest('base64url').slice(0, 22);
  return { asl, key, machine: createStateMachine(asl), machinesFrom: new Map(), taskResultPaths, waits };
}

/**
 * Built once per journey (and per resumed start state) and reused for every execution. The constructor validates
 * with asl-validator, which writes "QueryLanguage": "JSONPath" into every state of the object it is given, so it
 * gets a copy.
 */
function createStateMachine(asl: AslDefinition): StateMachine {
  return new StateMachine(structuredClone(asl) as unknown as StateMachineDefinition, {
    validationOptions: { checkArn: true, checkPaths: true },
  });
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
