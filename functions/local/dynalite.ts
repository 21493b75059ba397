/**
 * The embedded DynamoDB: dynalite in this process (in this thread or a worker thread), speaking the real DynamoDB
 * API, so that the real SDK client and the same DynamoDB store run on one machine with no AWS account. dynalite has
 * no transactions, TTL, streams or PartiQL, which is why the store uses none of them.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type CreateTableCommandInput,
  type DynamoDBClientConfig,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { TABLE_KEYS } from '../aws/table-schema.js';
import { channelRequestHandler } from './dynalite-channel.js';
import { DynaliteError, serveDynalite, serveDynaliteInWorker } from './dynalite-server.js';
import { cachePartitions, EXTERNAL_WRITE_COUNTERS, type PartitionCache } from './partition-cache.js';

export { DynaliteError, dynaliteIteratorClasses } from './dynalite-server.js';

export const DEFAULT_TABLE_NAME = 'strata';

/**
 * The partition cache's bound, in dynalite's item size: parsed items take about 4.8 times that in the heap (measured
 * on day items), so about 30 MB. It holds a few thousand recently active users' windows.
 */
const DEFAULT_PARTITION_CACHE_BYTES = 6 * 1024 * 1024;

/** A real CreateTable takes seconds; dynalite's "CREATING" lasts a timer tick, so polling starts fast. */
const TABLE_READY_TIMEOUT_MS = 5 * 60_000;
const FIRST_POLL_DELAY_MS = 10;
const MAX_POLL_DELAY_MS = 2_000;

/**
 * The SDK's default logger does nothing, yet its logger middleware first copies every request and response through
 * the operation schema's sensitive-data filter to hand them to `logger?.info?.(…)` (or `error`): about 4 % of the
 * embedded stack's CPU. A logger without `info` and `error` skips those copies; nothing is logged either way.
 */
const SILENT_SDK_LOGGER = { trace: () => undefined, debug: () => undefined, warn: () => undefined } as unknown as NonNullable<
  DynamoDBClientConfig['logger']
>;

/**
 * The SDK builds a new SigV4 signer for every request (from a copy of the whole client configuration), so the key it
 * derives with four HMACs is never reused from its cache: about 5 % of the embedded stack's main thread. The signer
 * depends only on the auth scheme (service and region), the same for every request of this client; one per scheme
 * signs exactly as before.
 */
function reuseSigner(client: DynamoDBClient): void {
  const config = client.config as { signer: (authScheme?: { name?: string; signingName?: string; signingRegion?: string }) => Promise<unknown> };
  const buildSigner = config.signer;
  const signers = new Map<string, Promise<unknown>>();
  config.signer = (authScheme) => {
    const key = `${authScheme?.name}|${authScheme?.signingName}|${authScheme?.signingRegion}`;
    let signer = signers.get(key);
    if (!signer) {
      signer = buildSigner(authScheme);
      signer.catch(() => signers.delete(key));
      signers.set(key, signer);
    }
    return signer;
  };
}

/**
 * For requests that never leave this process (the MessagePort to dynalite's worker): the header dynalite requires of
 * a signed request, without the SHA-256 and HMAC work of SigV4 (about 7 % of the main thread), since dynalite checks
 * that a request is signed, never the signature. Requests over TCP are signed with SigV4 as ever. The stamp is
 * built once per second (SigV4's resolution), not per request.
 */
function inProcessSigner(): { sign<R extends { headers: Record<string, string> }>(request: R, options?: { signingDate?: Date }): Promise<R> } {
  let second = Number.NaN;
  let stamp = '';
  let authorization = '';
  return {
    async sign(request, options) {
      const now = options?.signingDate?.getTime() ?? Date.now();
      if (Math.floor(now / 1000) !== second) {
        second = Math.floor(now / 1000);
        stamp = new Date(now).toISOString().replace(/[-:]|\.\d{3}/g, '');
        authorization = `AWS4-HMAC-SHA256 Credential=local/${stamp.slice(0, 8)}/local/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=in-process`;
      }
      request.headers['x-amz-date'] = stamp;
      request.headers['authorization'] = authorization;
      return request;
    },
  };
}

/**
 * Middleware whose only work is headers for AWS's side, which dynalite never reads: the SDK's user agent (built and
 * escaped per request, about 2 % of the main thread), the Lambda trace id, and the logger's copies (its logger is
 * silent). Taken off only the in-process client; every request still goes through serialisation, endpoint,
 * retries, signing and deserialisation as ever.
 */
const IN_PROCESS_NEEDLESS_MIDDLEWARE = ['getUserAgentMiddleware', 'recursionDetectionMiddleware', 'loggerMiddleware'];

export interface StartDynaliteOptions {
  /** A directory to persist the data in (for example `.strata/`); in memory when absent. */
  path?: string;
  /** The port to listen on; a free one when absent. */
  port?: number;
  tableName?: string;
  /** Where dynalite runs: in this thread (the default), or in a worker thread so that it gets a core of its own. */
  thread?: 'main' | 'worker';
  /**
   * With `thread: 'worker'`: the bound of the client's cache of recently read partitions (partition-cache.ts), in
   * dynalite's item size; 0 turns it off.
   */
  partitionCacheBytes?: number;
}

export interface RunningDynalite {
  endpoint: string;
  client: DynamoDBClient;
  tableName: string;
  /** The client's partition cache, when it has one. */
  partitionCache?: PartitionCache;
  /**
   * For an idle stack: the partition cache emptied, dynalite's database reopened and full garbage collections in its
   * thread, then freed native memory back (see dynalite-server.ts and release-memory.ts). Resolves when done.
   */
  releaseMemory(): Promise<void>;
  close(): Promise<void>;
}

/** The Strata table exactly as functions/aws/table-schema.ts lays it out (the CDK stack builds the same). */
export function strataTableDefinition(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, reviewIndexName, reviewPartitionKey, reviewSortKey } = TABLE_KEYS;
  const stringAttributes = [...new Set([partitionKey, sortKey, reviewPartitionKey, reviewSortKey])];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: stringAttributes.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: reviewIndexName,
        KeySchema: [
          { AttributeName: reviewPartitionKey, KeyType: 'HASH' },
          { AttributeName: reviewSortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

async function describeTable(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return Table;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

/** Refuses a table left over from an older layout (for example a persisted .strata/) instead of failing later. */
function layoutProblems(table: TableDescription): string[] {
  const problems: string[] = [];
  const keyOf = (schema: TableDescription['KeySchema']): string => (schema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
  const { partitionKey, sortKey, reviewIndexName, reviewPartitionKey, reviewSortKey } = TABLE_KEYS;
  if (keyOf(table.KeySchema) !== `${partitionKey}:HASH,${sortKey}:RANGE`) problems.push(`its key is (${keyOf(table.KeySchema)})`);
  const index = table.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === reviewIndexName);
  if (!index) problems.push(`it has no "${reviewIndexName}" index`);
  else if (keyOf(index.KeySchema) !== `${reviewPartitionKey}:HASH,${reviewSortKey}:RANGE`) {
    problems.push(`its "${reviewIndexName}" index is keyed (${keyOf(index.KeySchema)})`);
  }
  return problems;
}

function isReady(table: TableDescription | undefined): boolean {
  return table?.TableStatus === 'ACTIVE' && (table.GlobalSecondaryIndexes ?? []).every((gsi) => gsi.IndexStatus === 'ACTIVE');
}

/**
 * Creates the Strata table unless it exists, and resolves once it and its index are usable. Safe to call again,
 * and from several processes at once.
 */
export async function createStrataTable(client: DynamoDBClient, tableName: string): Promise<void> {
  let table = await describeTable(client, tableName);
  if (!table) {
    try {
      table = (await client.send(new CreateTableCommand(strataTableDefinition(tableName)))).TableDescription;
    } catch (error) {
      // Another process created it between our describe and create.
      if ((error as Error).name !== 'ResourceInUseException') throw new DynaliteError(`cannot create table "${tableName}"`, { cause: error });
    }
  }
  const deadline = Date.now() + TABLE_READY_TIMEOUT_MS;
  for (let delay = FIRST_POLL_DELAY_MS; !isReady(table); delay = Math.min(delay * 2, MAX_POLL_DELAY_MS)) {
    if (Date.now() > deadline)
      throw new DynaliteError(`table "${tableName}" is still ${table?.TableStatus ?? 'missing'} after ${TABLE_READY_TIMEOUT_MS / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    table = await describeTable(client, tableName);
  }
  const problems = layoutProblems(table!);
  if (problems.length > 0) {
    throw new DynaliteError(
      `table "${tableName}" does not have the Strata layout: ${problems.join('; ')}; delete it (or the data directory) and start again`,
    );
  }
}

/**
 * Starts dynalite on 127.0.0.1, creates the Strata table if needed, and returns a client pointed at it. With
 * `thread: 'worker'` dynalite runs in a worker thread of this process.
 */
export async function startDynalite(options: StartDynaliteOptions = {}): Promise<RunningDynalite> {
  const where = { ...(options.path ? { path: options.path } : {}), ...(options.port !== undefined ? { port: options.port } : {}) };
  const externalWrites = options.thread === 'worker' ? new SharedArrayBuffer(EXTERNAL_WRITE_COUNTERS * Int32Array.BYTES_PER_ELEMENT) : undefined;
  const server = options.thread === 'worker' ? await serveDynaliteInWorker({ ...where, externalWrites }) : await serveDynalite(where);
  const endpoint = `http://127.0.0.1:${server.port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    // dynalite checks that requests are signed, not by whom.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    logger: SILENT_SDK_LOGGER,
    // This process's own requests to a worker-thread dynalite skip TCP and HTTP; other processes use the port.
    // Such a client also builds each command's middleware chain once, not per request (about 7 % of the main
    // thread): middleware added to it later reaches only commands it has not sent yet.
    ...(server.requestPort ? { requestHandler: channelRequestHandler(server.requestPort), cacheMiddleware: true, signer: inProcessSigner() } : {}),
  });
  if (!server.requestPort) reuseSigner(client);
  else for (const name of IN_PROCESS_NEEDLESS_MIDDLEWARE) client.middlewareStack.remove(name);
  const tableName = options.tableName ?? DEFAULT_TABLE_NAME;
  // Only this process's own requests come through the channel, and those over TCP are counted apart: the cache
  // can then tell every write it did not see.
  const partitionCache =
    server.requestPort && externalWrites && options.partitionCacheBytes !== 0
      ? cachePartitions(client, {
          tableName,
          partitionKey: TABLE_KEYS.partitionKey,
          sortKey: TABLE_KEYS.sortKey,
          externalWrites: new Int32Array(externalWrites),
          maxBytes: options.partitionCacheBytes ?? DEFAULT_PARTITION_CACHE_BYTES,
        })
      : undefined;
  const close = async (): Promise<void> => {
    // Closing the client first frees its keep-alive sockets, which would otherwise hold the server open.
    client.destroy();
    await server.close();
  };
  try {
    await createStrataTable(client, tableName);
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
  const releaseMemory = (): Promise<void> => {
    // An idle stack keeps no cached partitions: they are tens of MB of heap, and the next event reads its window again.
    partitionCache?.clear();
    return server.releaseMemory();
  };
  return { endpoint, client, tableName, ...(partitionCache ? { partitionCache } : {}), releaseMemory, close };
}
