/**
 * Fault injection through the adapters' ports, for tests only: nothing here is reachable from functions/, so no
 * shipped code carries a fault hook.
 *
 * `withFaults` wraps any port object (TierStore, JourneyStarter, NoticePublisher, the DynamoDB store) and throws
 * before or after the Nth call of an operation, as a killed process, a throttled table or a timed-out call would
 * look to the caller. `withClientFaults` does the same one level lower, on DynamoDBClient.send, and
 * `throttleEveryAttempt` puts throttling *inside* the SDK's retry loop so that the SDK's own retries are exercised.
 */
import { DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';

/** What a killed Lambda looks like to the code after it: the call never returns normally. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
  constructor(
    readonly operation: string,
    readonly when: 'before' | 'after',
    readonly call: number,
  ) {
    super(`simulated crash ${when} ${operation} call #${call}`);
  }
}

/** A throttled DynamoDB request, shaped as the SDK throws it after its own retries are spent. */
export function throttlingError(): ProvisionedThroughputExceededException {
  return new ProvisionedThroughputExceededException({
    message: 'The level of configured provisioned throughput for the table was exceeded (injected)',
    $metadata: { httpStatusCode: 400, attempts: 1 },
    $retryable: { throttling: true },
  } as ConstructorParameters<typeof ProvisionedThroughputExceededException>[0]);
}

/** A request that timed out on the client side: the write may or may not have happened. */
export function timeoutError(): Error {
  const error = new Error('Request timed out (injected)');
  error.name = 'TimeoutError';
  return error;
}

export interface FaultRule<Operation extends string = string> {
  /** The operation(s) whose calls are counted together; '*' counts every call of the wrapped port. */
  operation: Operation | readonly Operation[] | '*';
  /** The 1-based call (among the counted, matching calls) that fails first. */
  call: number;
  /** Throw before the call reaches the port (nothing happened) or after it returned (the work is done). */
  when: 'before' | 'after';
  /** How many consecutive matching calls fail from `call` on; Infinity = every later call (a dead process). */
  times?: number;
  /** Only calls that match are counted (checked once per call, rules in order, before the call is made). */
  match?: (args: unknown[], operation: string) => boolean;
  /** The error to throw; a SimulatedCrash by default. */
  error?: () => unknown;
}

export interface FaultLog {
  /** Every call that reached the wrapper, in order, as `operation`. */
  readonly calls: string[];
  /** The faults that fired, in order. */
  readonly fired: Array<{ operation: string; when: 'before' | 'after'; call: number }>;
}

type Faulty<T> = T & { readonly faults: FaultLog };

function appliesTo(rule: FaultRule, operation: string): boolean {
  if (rule.operation === '*') return true;
  return typeof rule.operation === 'string' ? rule.operation === operation : rule.operation.includes(operation);
}

/**
 * A view of `target` whose methods throw as the rules say. Works on plain objects and class instances alike
 * (a Proxy, so prototype methods are wrapped too), and leaves non-function members untouched.
 */
export function withFaults<T extends object>(target: T, rules: ReadonlyArray<FaultRule<Extract<keyof T, string>>>): Faulty<T> {
  const log: FaultLog = { calls: [], fired: [] };
  const counters = rules.map(() => 0);

  /** Which rule (if any) fires for this call; counts the call against every rule it matches. */
  const firing = (operation: string, args: unknown[]): { rule: FaultRule; call: number } | undefined => {
    let hit: { rule: FaultRule; call: number } | undefined;
    rules.forEach((rule, i) => {
      if (!appliesTo(rule as FaultRule, operation) || (rule.match && !rule.match(args, operation))) return;
      const call = (counters[i] = counters[i]! + 1);
      const times = rule.times ?? 1;
      if (!hit && call >= rule.call && call < rule.call + times) hit = { rule: rule as FaultRule, call };
    });
    return hit;
  };

  const fail = (hit: { rule: FaultRule; call: number }, operation: string): never => {
    log.fired.push({ operation, when: hit.rule.when, call: hit.call });
    throw hit.rule.error ? hit.rule.error() : new SimulatedCrash(operation, hit.rule.when, hit.call);
  };

  return new Proxy(target, {
    get(object, property, receiver) {
      if (property === 'faults') return log;
      const value = Reflect.get(object, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return async (...args: unknown[]) => {
        log.calls.push(property);
        const hit = firing(property, args);
        if (hit?.rule.when === 'before') fail(hit, property);
        const result = await (value as (...a: unknown[]) => unknown).apply(object, args);
        if (hit?.rule.when === 'after') fail(hit, property);
        return result;
      };
    },
  }) as Faulty<T>;
}

/** The TierStore's write points, in the order an event reaches them. */
export const STORE_WRITES = ['recordEvent', 'saveProfile', 'appendHistory', 'clearOutbox'] as const;

/**
 * A DynamoDBClient whose `send` fails as the rules say, by command name (`UpdateItemCommand`, `PutItemCommand`,
 * `QueryCommand`, ...). This sits outside the SDK's retry loop: the error is what the store sees once the SDK has
 * given up, so the store's own handling (transient errors pass through for SQS to redeliver) is what is tested.
 */
export function withClientFaults(client: DynamoDBClient, rules: ReadonlyArray<FaultRule>): DynamoDBClient & { readonly faults: FaultLog } {
  const wrapped = withFaults(
    // One "operation" per command name, so that the rules read like the store's requests.
    new Proxy({} as Record<string, (command: unknown) => Promise<unknown>>, {
      get: () => (command: unknown) => client.send(command as never) as Promise<unknown>,
    }),
    rules as ReadonlyArray<FaultRule<string>>,
  );
  return new Proxy(client, {
    get(object, property, receiver) {
      if (property === 'faults') return wrapped.faults;
      if (property !== 'send') return Reflect.get(object, property, receiver) as unknown;
      return (command: { constructor: { name: string } }) => wrapped[command.constructor.name]!(command);
    },
  }) as DynamoDBClient & { readonly faults: FaultLog };
}

/**
 * A new client on the same endpoint whose first `failures` attempts of each matching command are throttled from
 * *inside* the SDK's retry loop (a finalizeRequest middleware runs after the retry middleware), so the SDK
 * retries them with its own backoff, as it does against a throttled table.
 */
export async function throttleEveryAttempt(
  client: DynamoDBClient,
  options: { commands: readonly string[]; failures: number; maxAttempts?: number },
): Promise<{ client: DynamoDBClient; throttled: () => number }> {
  const endpoint = await client.config.endpoint!();
  const throttledClient = new DynamoDBClient({
    endpoint: `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path}`,
    region: await client.config.region(),
    credentials: await client.config.credentials(),
    maxAttempts: options.maxAttempts ?? options.failures + 1,
  });
  const remaining = new Map<string, number>();
  let throttled = 0;
  throttledClient.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      if (options.commands.includes(command)) {
        // Counted per request (the retry loop re-enters here with the same input object).
        const key = `${command}:${JSON.stringify((args.input as { Key?: unknown; Item?: unknown }).Key ?? (args.input as { Item?: unknown }).Item ?? '')}`;
        const left = remaining.get(key) ?? options.failures;
        if (left > 0) {
          remaining.set(key, left - 1);
          throttled += 1;
          throw throttlingError();
        }
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'strataTestThrottle' },
  );
  return { client: throttledClient, throttled: () => throttled };
}
