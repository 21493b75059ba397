/**
 * The embedded EventBridge bus: an HTTP endpoint that speaks PutEvents on the AWS JSON 1.1 wire protocol, so an
 * event producer uses the real `@aws-sdk/client-eventbridge` with `endpoint: 'http://localhost:4010'` and any
 * dummy credentials and region, and the same code posts to AWS in production.
 *
 * Entries are validated the way EventBridge validates them: whole-request errors (more than 10 entries, too large)
 * fail the call; a bad entry fails alone, at its index, while the good ones in the same call are accepted.
 * Accepted entries become EventBridge envelopes and go to `onEvents`; routing them by pattern is the caller's job.
 * An entry counts as accepted only once `onEvents` resolves (the embedded stack resolves after an fsync), and when
 * `capacity` says the backlog is full, entries get `ThrottlingException`, as EventBridge answers over its quota.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventBridgeEnvelope } from '../core/event-pattern.js';

export type { EventBridgeEnvelope } from '../core/event-pattern.js';

export const DEFAULT_BUS_NAME = 'strata';
export const DEFAULT_ACCOUNT_ID = '000000000000';
/** Matches the region the rest of the embedded stack stamps on its envelopes. */
export const DEFAULT_REGION = 'local';
export const PUT_EVENTS_TARGET = 'AWSEvents.PutEvents';
/** EventBridge's limits on one PutEvents call. */
export const MAX_ENTRIES_PER_CALL = 10;
export const MAX_TOTAL_ENTRY_BYTES = 256 * 1024;
/** Entries are JSON strings inside JSON, so escaping can double them; anything beyond this is over the limit anyway. */
const MAX_BODY_BYTES = 4 * MAX_TOTAL_ENTRY_BYTES;
/**
 * How deeply a Detail may nest. EventBridge documents no figure; Strata's own user events nest a few levels, and a
 * bound keeps one pathological entry from exhausting the stack of whatever serialises it later.
 */
export const MAX_DETAIL_DEPTH = 64;
/** EventBridge counts a given Time as 14 bytes of the entry. */
const TIME_FIELD_BYTES = 14;

const JSON_1_1 = 'application/x-amz-json-1.1';

export interface PutEventsEndpointOptions {
  port: number;
  /** Defaults to 127.0.0.1: the endpoint takes unauthenticated writes, so it is not exposed beyond this machine. */
  host?: string;
  busName?: string;
  accountId?: string;
  region?: string;
  /** Receives each call's accepted entries; if it throws, those entries are reported as InternalFailure. */
  onEvents: (events: EventBridgeEnvelope[]) => Promise<void> | void;
  /** How many more entries may be accepted now; the rest of a call gets ThrottlingException. Unlimited when absent. */
  capacity?: () => number;
  now?: () => Date;
}

export interface PutEventsEndpoint {
  url: string;
  port: number;
  close(): Promise<void>;
}

export type PutEventsResultEntry = { EventId: string } | { ErrorCode: PutEventsErrorCode; ErrorMessage: string };
export type PutEventsErrorCode = 'InvalidArgument' | 'MalformedDetail' | 'ResourceNotFoundException' | 'ThrottlingException' | 'InternalFailure';

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  constructor(
    readonly port: number,
    readonly host: string,
    options?: { cause?: unknown },
  ) {
    super(
      `PutEvents endpoint: port ${port} is already in use on ${host} (is another Strata stack running?); pass --port to use a different port`,
      options,
    );
  }
}

/** A whole-request failure, sent in the JSON 1.1 error shape that the SDK turns into a thrown exception. */
class AwsJsonError extends Error {
  constructor(
    readonly code: 'ValidationException' | 'SerializationException' | 'UnknownOperationException' | 'InternalException',
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

interface BusIdentity {
  busName: string;
  busArn: string;
  accountId: string;
  region: string;
}

interface CheckedCall {
  results: Array<PutEventsResultEntry | undefined>;
  /** The accepted entries, by their index in the call. */
  accepted: Map<number, EventBridgeEnvelope>;
}

/**
 * Validates one PutEvents request body and builds the envelopes for its good entries. Throws AwsJsonError for a
 * failure of the whole call; a bad entry gets its error at its own index.
 */
function checkPutEventsRequest(body: unknown, bus: BusIdentity, now: Date): CheckedCall {
  if (!isObject(body)) throw new AwsJsonError('SerializationException', 'The request body must be a JSON object with an "Entries" list.');
  const entries = body['Entries'];
  if (entries === undefined || entries === null) {
    throw new AwsJsonError(
      'ValidationException',
      "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
    );
  }
  if (!Array.isArray(entries) || !entries.every(isObject)) {
    throw new AwsJsonError('SerializationException', '"Entries" must be a list of PutEventsRequestEntry objects.');
  }
  if (entries.length < 1 || entries.length > MAX_ENTRIES_PER_CALL) {
    const bound = entries.length < 1 ? 'greater than or equal to 1' : `less than or equal to ${MAX_ENTRIES_PER_CALL}`;
    throw new AwsJsonError(
      'ValidationException',
      `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length ${bound} (this call has ${entries.length} entries)`,
    );
  }
  entries.forEach(checkFieldTypes);
  if (entries.reduce((total, entry) => total + entrySize(entry), 0) > MAX_TOTAL_ENTRY_BYTES) {
    throw new AwsJsonError('ValidationException', 'Total size of the entries in the request is over the limit.');
  }

  const results: CheckedCall['results'] = [];
  const accepted: CheckedCall['accepted'] = new Map();
  entries.forEach((entry, index) => {
    const checked = checkEntryAlone(entry, bus, now);
    if ('envelope' in checked) {
      accepted.set(index, checked.envelope);
      results.push(undefined);
    } else {
      results.push(checked.failure);
    }
  });
  return { results, accepted };
}

type RequestEntry = Record<string, unknown>;

const STRING_FIELDS = ['Source', 'DetailType', 'Detail', 'EventBusName', 'TraceHeader'] as const;

/** A value of the wrong JSON type cannot be deserialised at all, so EventBridge fails the whole call for it. */
function checkFieldTypes(entry: RequestEntry, index: number): void {
  for (const field of STRING_FIELDS) {
    if (entry[field] !== undefined && entry[field] !== null && typeof entry[field] !== 'string') {
      throw new AwsJsonError('SerializationException', `Entries[${index}].${field} must be a string.`);
    }
  }
  const resources = entry['Resources'];
  if (resources !== undefined && resources !== null && !(Array.isArray(resources) && resources.every((r) => typeof r === 'string'))) {
    throw new AwsJsonError('SerializationException', `Entries[${index}].Resources must be a list of strings.`);
  }
  const time = entry['Time'];
  if (time !== undefined && time !== null && parseTime(time) === undefined) {
    throw new AwsJsonError('SerializationException', `Entries[${index}].Time must be epoch seconds or an ISO 8601 time.`);
  }
}

/** The size EventBridge charges and limits, per https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html */
function entrySize(entry: RequestEntry): number {
  const utf8 = (value: unknown): number => (typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : 0);
  const resources = Array.isArray(entry['Resources']) ? (entry['Resources'] as unknown[]) : [];
  return (
    (entry['Time'] !== undefined && entry['Time'] !== null ? TIME_FIELD_BYTES : 0) +
    utf8(entry['Source']) +
    utf8(entry['DetailType']) +
    utf8(entry['Detail']) +
    resources.reduce<number>((total, resource) => total + utf8(resource), 0)
  );
}

/** One entry's failure, whatever it is, stays that entry's: its neighbours in the call are still accepted. */
function checkEntryAlone(entry: RequestEntry, bus: BusIdentity, now: Date): ReturnType<typeof checkEntry> {
  try {
    return checkEntry(entry, bus, now);
  } catch (error) {
    return { failure: { ErrorCode: 'InternalFailure', ErrorMessage: `Internal Failure: this entry could not be read (${describeError(error)})` } };
  }
}

function checkEntry(entry: RequestEntry, bus: BusIdentity, now: Date): { envelope: EventBridgeEnvelope } | { failure: PutEventsResultEntry } {
  const fail = (ErrorCode: PutEventsErrorCode, ErrorMessage: string) => ({ failure: { ErrorCode, ErrorMessage } });
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    if (!entry[field]) return fail('InvalidArgument', `Parameter ${field} is not valid. Reason: ${field} is a required argument.`);
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry['Detail'] as string);
  } catch {
    return fail('MalformedDetail', 'Detail is malformed.');
  }
  // EventBridge takes only a JSON object as Detail: an array, string or number is malformed too.
  if (!isObject(detail)) return fail('MalformedDetail', 'Detail is malformed.');
  if (nestsDeeperThan(detail, MAX_DETAIL_DEPTH)) {
    return fail(
      'MalformedDetail',
      `Detail is malformed: it nests objects or arrays more than ${MAX_DETAIL_DEPTH} levels deep; flatten it (a user event needs only a few levels).`,
    );
  }
  const busName = entry['EventBusName'];
  if (typeof busName === 'string' && busName !== '' && busName !== bus.busName && busName !== bus.busArn) {
    return fail('ResourceNotFoundException', `Event bus ${busName} does not exist. (The local bus is "${bus.busName}".)`);
  }
  const time = entry['Time'] !== undefined && entry['Time'] !== null ? parseTime(entry['Time'])! : now;
  return {
    envelope: buildEnvelope(
      {
        source: entry['Source'] as string,
        detailType: entry['DetailType'] as string,
        detail,
        time,
        resources: (entry['Resources'] as string[] | undefined) ?? [],
      },
      bus,
    ),
  };
}

export interface EnvelopeParts {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
  time: Date;
  resources?: string[];
}

/** The envelope EventBridge wraps around an accepted entry; also used for Strata's own in-process events. */
export function buildEnvelope(parts: EnvelopeParts, identity: { accountId: string; region: string }): EventBridgeEnvelope {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': parts.detailType,
    source: parts.source,
    account: identity.accountId,
    time: toEventTime(parts.time),
    region: identity.region,
    resources: [...(parts.resources ?? [])],
    detail: parts.detail,
  };
}

/** The SDK sends Time as epoch seconds (possibly fractional); a hand-written client may send ISO 8601. */
function parseTime(value: unknown): Date | undefined {
  const millis = typeof value === 'number' ? value * 1000 : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(millis) ? new Date(millis) : undefined;
}

/** EventBridge stamps envelopes to the second: 2026-11-02T09:30:00Z. */
function toEventTime(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Iterative, so that the check itself cannot overflow the stack on the input it guards against. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(current)) if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// ---- HTTP --------------------------------------------------------------------------------------------------

export async function startPutEventsEndpoint(options: PutEventsEndpointOptions): Promise<PutEventsEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const accountId = options.accountId ?? DEFAULT_ACCOUNT_ID;
  const region = options.region ?? DEFAULT_REGION;
  const busName = options.busName ?? DEFAULT_BUS_NAME;
  const bus: BusIdentity = { busName, accountId, region, busArn: `arn:aws:events:${region}:${accountId}:event-bus/${busName}` };
  const now = options.now ?? (() => new Date());

  const server = createServer((request, response) => {
    handleRequest(request, bus, now, options).then(
      (result) => send(response, 200, result),
      (error: unknown) => {
        const failure = error instanceof AwsJsonError ? error : new AwsJsonError('InternalException', describeError(error), 500);
        send(response, failure.status, { __type: failure.code, message: failure.message }, failure.code);
      },
    );
  });
  const port = await listen(server, options.port, host);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // SDK clients keep sockets alive; without this, close would wait for them to time out.
        server.closeAllConnections();
      }),
  };
}

async function handleRequest(
  request: IncomingMessage,
  bus: BusIdentity,
  now: () => Date,
  options: Pick<PutEventsEndpointOptions, 'onEvents' | 'capacity'>,
): Promise<{ FailedEntryCount: number; Entries: PutEventsResultEntry[] }> {
  const body = await readBody(request);
  const target = request.headers['x-amz-target'];
  if (request.method !== 'POST' || (request.url ?? '/').split('?')[0] !== '/' || target !== PUT_EVENTS_TARGET) {
    const operation = typeof target === 'string' ? `"${target}"` : `${request.method} ${request.url}`;
    throw new AwsJsonError('UnknownOperationException', `Strata's local EventBridge endpoint only serves ${PUT_EVENTS_TARGET}; got ${operation}.`);
  }
  if (body === undefined) throw new AwsJsonError('ValidationException', 'Total size of the entries in the request is over the limit.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new AwsJsonError('SerializationException', `The request body is not valid JSON: ${(error as Error).message}`);
  }
  const { results, accepted } = checkPutEventsRequest(parsed, bus, now());
  if (options.capacity && accepted.size > 0) {
    let room = Math.max(0, options.capacity());
    for (const index of [...accepted.keys()]) {
      if (room > 0) room -= 1;
      else {
        accepted.delete(index);
        results[index] = {
          ErrorCode: 'ThrottlingException',
          ErrorMessage: 'Rate exceeded. (The local stack has a full backlog of events to apply; resend this entry shortly.)',
        };
      }
    }
  }
  if (accepted.size > 0) {
    try {
      await options.onEvents([...accepted.values()]);
    } catch (error) {
      // The producer must learn that these were not delivered, so it resends them; ingest dedupes by eventId.
      const failure = { ErrorCode: 'InternalFailure' as const, ErrorMessage: `Internal Failure: the local router failed: ${describeError(error)}` };
      for (const index of accepted.keys()) results[index] = failure;
      accepted.clear();
    }
  }
  const entries = results.map((result, index) => result ?? { EventId: accepted.get(index)!.id });
  return { FailedEntryCount: entries.filter((entry) => 'ErrorCode' in entry).length, Entries: entries };
}

/** The body as text, or undefined when it is larger than any valid call can be (read to the end, not kept). */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  return size <= MAX_BODY_BYTES ? Buffer.concat(chunks).toString('utf8') : undefined;
}

function send(response: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': JSON_1_1,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  response.end(text);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const refuse = (error: NodeJS.ErrnoException): void => {
      reject(error.code === 'EADDRINUSE' ? new PortInUseError(port, host, { cause: error }) : error);
    };
    server.once('error', refuse);
    server.listen(port, host, () => {
      server.off('error', refuse);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
