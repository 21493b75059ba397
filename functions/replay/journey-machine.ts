/**
 * Runs compiled journey state machines (the ASL that compileJourney emits and the CDK deploys) without Step
 * Functions, for the replay engine. It interprets the definition itself, state by state, so that the replay follows
 * whatever the compiler emits: Task Parameters (with `.$` paths into the data and `$$.Execution`), ResultPath,
 * Retry and Catch, Choice rules, Wait (Seconds, Timestamp, SecondsPath, TimestampPath), Pass, Succeed and Fail.
 *
 * Time behaves as in the local journey runner on a virtual clock (functions/local/journey-runner.ts): a Wait moves
 * the execution's resume instant (never backwards, and a Seconds wait counts from the later of now and that
 * instant); the next Task runs once the clock reaches it. Retries take no journey time (their backoff is seconds).
 * `$$.Execution.StartTime` is the start on the replay clock.
 */
import { assertNever } from '../core/errors.js';
import type { AslDefinition } from '../core/journey/compile-journey.js';

type Json = unknown;
type JsonObject = Record<string, unknown>;

/** A state of any definition this interpreter accepts: the compiled shapes, plus the standard fields around them. */
interface AnyState {
  Type: 'Task' | 'Choice' | 'Wait' | 'Succeed' | 'Fail' | 'Pass';
  Next?: string;
  End?: boolean;
  Parameters?: JsonObject;
  Result?: Json;
  ResultPath?: string | null;
  InputPath?: string | null;
  OutputPath?: string | null;
  Retry?: Array<{ ErrorEquals: string[]; MaxAttempts?: number }>;
  Catch?: Array<{ ErrorEquals: string[]; ResultPath?: string | null; Next: string }>;
  Choices?: ChoiceRule[];
  Default?: string;
  Seconds?: number;
  Timestamp?: string;
  SecondsPath?: string;
  TimestampPath?: string;
  Error?: string;
  Cause?: string;
  ErrorPath?: string;
  CausePath?: string;
}

interface ChoiceRule {
  Variable?: string;
  Next?: string;
  StringEquals?: string;
  StringEqualsPath?: string;
  IsPresent?: boolean;
  NumericEquals?: number;
  BooleanEquals?: boolean;
  And?: ChoiceRule[];
  Or?: ChoiceRule[];
  Not?: ChoiceRule;
}

export class JourneyMachineError extends Error {
  override readonly name = 'JourneyMachineError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`Replay journey machine: ${message}`, options);
  }
}

/** What a Task call threw, in the terms Retry and Catch match on. */
interface TaskFailure {
  Error: string;
  Cause: string;
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';

export interface MachineExecution {
  readonly name: string;
  readonly tier: string;
  readonly startedAt: number;
  status: ExecutionStatus;
  /** The state to enter next. */
  state: string;
  data: Json;
  /** The instant the latest Wait ends; the next Task runs no earlier. */
  resumeAt: number;
  failure?: TaskFailure;
}

export interface TaskCall {
  stateName: string;
  parameters: Json;
  now: number;
}

export interface MachineHooks {
  /** The Task's resource: the journey-step function. Throw to fail the Task (Retry and Catch apply). */
  runTask(execution: MachineExecution, call: TaskCall): Promise<Json>;
}

export interface CompiledJourneyMachine {
  start(name: string, tier: string, input: Json, now: number): MachineExecution;
  /**
   * Runs the execution from its current state until it ends or must wait for the clock. Returns the instant to
   * run again at, or undefined when the execution has ended.
   */
  advance(execution: MachineExecution, now: number): Promise<number | undefined>;
}

const MAX_STATES_PER_ADVANCE = 10_000;

export function journeyMachine(asl: AslDefinition, hooks: MachineHooks): CompiledJourneyMachine {
  const states = asl.States as unknown as Record<string, AnyState>;
  const stateOf = (name: string): AnyState => {
    const state = states[name];
    if (!state) throw new JourneyMachineError(`the definition has no state "${name}"; compile the journey again`);
    return state;
  };
  /** Each execution's context object (`$$`), made at its start: paths only read it. */
  const contexts = new WeakMap<MachineExecution, JsonObject>();

  const after = (execution: MachineExecution, state: AnyState): void => {
    if (state.End || state.Next === undefined) execution.status = 'SUCCEEDED';
    else execution.state = state.Next;
  };

  const fail = (execution: MachineExecution, failure: TaskFailure): void => {
    execution.status = 'FAILED';
    execution.failure = failure;
  };

  return {
    start(name, tier, input, now) {
      const execution: MachineExecution = {
        name,
        tier,
        startedAt: now,
        status: 'RUNNING',
        state: asl.StartAt,
        data: jsonCopy(input),
        resumeAt: now,
      };
      contexts.set(execution, {
        Execution: { Name: name, StartTime: new Date(now).toISOString(), Input: jsonCopy(input) },
        State: {},
      });
      return execution;
    },

    async advance(execution, now) {
      for (let entered = 0; entered < MAX_STATES_PER_ADVANCE; entered++) {
        if (execution.status !== 'RUNNING') return undefined;
        const state = stateOf(execution.state);
        const ctx = contexts.get(execution)!;
        switch (state.Type) {
          case 'Task': {
            if (execution.resumeAt > now) return execution.resumeAt;
            const input = selectPath(execution.data, state.InputPath);
            const parameters = state.Parameters ? resolveParameters(state.Parameters, input, ctx) : input;
            const outcome = await runWithRetries(hooks, execution, { stateName: execution.state, parameters, now }, state);
            if ('failure' in outcome) {
              const catcher = state.Catch?.find((c) => errorMatches(c.ErrorEquals, outcome.failure.Error));
              if (!catcher) {
                fail(execution, outcome.failure);
                return undefined;
              }
              execution.data = writeResult(execution.data, catcher.ResultPath === undefined ? '$' : catcher.ResultPath, outcome.failure);
              execution.state = catcher.Next;
              continue;
            }
            execution.data = selectPath(
              writeResult(execution.data, state.ResultPath === undefined ? '$' : state.ResultPath, outcome.result),
              state.OutputPath,
            );
            after(execution, state);
            continue;
          }
          case 'Choice': {
            const rule = state.Choices?.find((choice) => choiceMatches(choice, execution.data, ctx));
            const next = rule?.Next ?? state.Default;
            if (next === undefined) {
              fail(execution, { Error: 'States.NoChoiceMatched', Cause: `No Choice rule of state "${execution.state}" matched` });
              return undefined;
            }
            execution.state = next;
            continue;
          }
          case 'Wait': {
            execution.resumeAt = Math.max(waitEnds(state, execution, now, ctx), execution.resumeAt);
            after(execution, state);
            continue;
          }
          case 'Pass': {
            const input = selectPath(execution.data, state.InputPath);
            const result = state.Parameters ? resolveParameters(state.Parameters, input, ctx) : state.Result !== undefined ? state.Result : input;
            execution.data = selectPath(
              writeResult(execution.data, state.ResultPath === undefined ? '$' : state.ResultPath, result),
              state.OutputPath,
            );
            after(execution, state);
            continue;
          }
          case 'Succeed':
            // A Wait just before the end: the execution finishes when it is over.
            if (execution.resumeAt > now) return execution.resumeAt;
            execution.status = 'SUCCEEDED';
            return undefined;
          case 'Fail': {
            const error = state.ErrorPath ? readPath(execution.data, state.ErrorPath, ctx) : state.Error;
            const cause = state.CausePath ? readPath(execution.data, state.CausePath, ctx) : state.Cause;
            fail(execution, { Error: String(error ?? 'States.Failed'), Cause: String(cause ?? '') });
            return undefined;
          }
          default:
            return assertNever(state.Type, 'state type');
        }
      }
      throw new JourneyMachineError(`execution ${execution.name} entered ${MAX_STATES_PER_ADVANCE} states without waiting; the journey loops`);
    },
  };
}

/**
 * An execution's input as Step Functions holds it: JSON text read back, so that the execution never shares the
 * caller's objects (and a copy by JSON costs less than structuredClone, for every journey started).
 */
function jsonCopy(input: Json): Json {
  return input === undefined ? undefined : JSON.parse(JSON.stringify(input));
}

async function runWithRetries(
  hooks: MachineHooks,
  execution: MachineExecution,
  call: TaskCall,
  state: AnyState,
): Promise<{ result: Json } | { failure: TaskFailure }> {
  const attempts = new Map<number, number>();
  for (;;) {
    try {
      return { result: await hooks.runTask(execution, call) };
    } catch (error) {
      const failure: TaskFailure = {
        Error: error instanceof Error ? error.name : 'Error',
        Cause: error instanceof Error ? error.message : String(error),
      };
      const index = (state.Retry ?? []).findIndex((retrier) => errorMatches(retrier.ErrorEquals, failure.Error));
      const retrier = state.Retry?.[index];
      const used = attempts.get(index) ?? 0;
      if (!retrier || used >= (retrier.MaxAttempts ?? 3)) return { failure };
      attempts.set(index, used + 1);
    }
  }
}

function errorMatches(errorEquals: string[], error: string): boolean {
  return errorEquals.includes(error) || (errorEquals.includes('States.ALL') && !error.startsWith('States.Runtime'));
}

function waitEnds(state: AnyState, execution: MachineExecution, now: number, ctx: JsonObject): number {
  const base = Math.max(now, execution.resumeAt);
  if (state.Seconds !== undefined) return base + state.Seconds * 1000;
  if (state.Timestamp !== undefined) return parseInstant(state.Timestamp, execution);
  if (state.SecondsPath !== undefined) return base + Number(readPath(execution.data, state.SecondsPath, ctx)) * 1000;
  if (state.TimestampPath !== undefined) return parseInstant(readPath(execution.data, state.TimestampPath, ctx), execution);
  throw new JourneyMachineError(`Wait state "${execution.state}" has none of Seconds, Timestamp, SecondsPath, TimestampPath`);
}

function parseInstant(value: unknown, execution: MachineExecution): number {
  const instant = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(instant))
    throw new JourneyMachineError(`Wait state "${execution.state}" of ${execution.name} got ${JSON.stringify(value)}, not a timestamp`);
  return instant;
}

function choiceMatches(rule: ChoiceRule, data: Json, ctx: JsonObject): boolean {
  if (rule.And) return rule.And.every((r) => choiceMatches(r, data, ctx));
  if (rule.Or) return rule.Or.some((r) => choiceMatches(r, data, ctx));
  if (rule.Not) return !choiceMatches(rule.Not, data, ctx);
  if (rule.Variable === undefined) throw new JourneyMachineError('a Choice rule has no Variable');
  const value = readPath(data, rule.Variable, ctx);
  if (rule.IsPresent !== undefined) return (value !== undefined) === rule.IsPresent;
  if (rule.StringEquals !== undefined) return value === rule.StringEquals;
  if (rule.StringEqualsPath !== undefined) return value === readPath(data, rule.StringEqualsPath, ctx);
  if (rule.NumericEquals !== undefined) return value === rule.NumericEquals;
  if (rule.BooleanEquals !== undefined) return value === rule.BooleanEquals;
  throw new JourneyMachineError(`a Choice rule on ${rule.Variable} uses a comparison this interpreter does not know; add it here`);
}

/** A Parameters object's entries, listed once per definition object: Parameters are resolved on every Task. */
const templateEntries = new WeakMap<JsonObject, ReadonlyArray<[string, Json]>>();

function entriesOf(template: JsonObject): ReadonlyArray<[string, Json]> {
  let entries = templateEntries.get(template);
  if (!entries) {
    entries = Object.entries(template);
    templateEntries.set(template, entries);
  }
  return entries;
}

/**
 * A Parameters part with no path anywhere in it, copied and frozen once: every Task run then shares that copy rather
 * than building its own (a journey step's settings and step are such parts). Nothing downstream writes to a Task's
 * input, and the freezing makes sure of it. Undefined for a part that holds a path.
 */
const constantParts = new WeakMap<object, { value: Json } | undefined>();

function constantPart(template: object): { value: Json } | undefined {
  if (constantParts.has(template)) return constantParts.get(template);
  const holdsPath = (node: Json): boolean =>
    node !== null &&
    typeof node === 'object' &&
    (Array.isArray(node) ? node.some(holdsPath) : Object.entries(node).some(([key, value]) => key.endsWith('.$') || holdsPath(value)));
  const part = holdsPath(template) ? undefined : { value: deepFreeze(structuredClone(template)) };
  constantParts.set(template, part);
  return part;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Parameters: keys ending in `.$` take the value at a path (`$…` in the input, `$$…` in the context). */
function resolveParameters(template: Json, input: Json, ctx: JsonObject): Json {
  if (template === null || typeof template !== 'object') return template;
  const constant = constantPart(template);
  if (constant) return constant.value;
  if (Array.isArray(template)) return template.map((item) => resolveParameters(item, input, ctx));
  const out: JsonObject = {};
  for (const [key, value] of entriesOf(template as JsonObject)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string') throw new JourneyMachineError(`Parameters key ${key} must hold a path`);
      if (value.startsWith('States.'))
        throw new JourneyMachineError(`intrinsic function ${value.split('(')[0]} in Parameters is not supported; add it here`);
      out[key.slice(0, -2)] = readPath(input, value, ctx);
    } else {
      out[key] = resolveParameters(value, input, ctx);
    }
  }
  return out;
}

/** A definition has a few dozen paths, read on every state: each is split once (the arrays are never changed). */
const splitPaths = new Map<string, readonly string[]>();

function pathKeys(path: string): readonly string[] {
  let keys = splitPaths.get(path);
  if (keys === undefined) {
    const body = path.startsWith('$$') ? path.slice(2) : path.slice(1);
    if (body !== '' && !/^(\.[A-Za-z0-9_-]+)+$/.test(body))
      throw new JourneyMachineError(`path ${path} is not a plain dotted path; only those are supported`);
    keys = body === '' ? [] : body.slice(1).split('.');
    if (splitPaths.size >= 10_000) splitPaths.clear();
    splitPaths.set(path, keys);
  }
  return keys;
}

function readPath(data: Json, path: string, ctx: JsonObject): Json {
  let value: Json = path.startsWith('$$') ? ctx : data;
  for (const key of pathKeys(path)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as JsonObject)[key];
  }
  return value;
}

function selectPath(data: Json, path: string | null | undefined): Json {
  if (path === null) return {};
  if (path === undefined || path === '$') return data;
  return readPath(data, path, {});
}

/** ResultPath: null discards the result, `$` replaces the data, `$.a.b` writes into a copy. */
function writeResult(data: Json, path: string | null, result: Json): Json {
  if (path === null) return data;
  const keys = pathKeys(path);
  if (keys.length === 0) return result;
  const root: JsonObject = data !== null && typeof data === 'object' && !Array.isArray(data) ? { ...(data as JsonObject) } : {};
  let node = root;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) {
      node[key] = result;
      return;
    }
    const child = node[key];
    const copy: JsonObject = child !== null && typeof child === 'object' && !Array.isArray(child) ? { ...(child as JsonObject) } : {};
    node[key] = copy;
    node = copy;
  });
  return root;
}
