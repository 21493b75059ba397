/**
 * Opens the local data directory (default `.strata/`) for commands such as `strata user` and `strata explain`.
 *
 * dynalite keeps its data in LevelDB, which one process at a time may open. While `strata dev` runs, it writes
 * its endpoint to `<data>/stack.json` and other commands talk to it there; otherwise they open the files
 * themselves.
 */
import { ListTablesCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { existsSync } from 'node:fs';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type CatchUpClockOptions, createCatchUpClock } from './catch-up-clock.js';

export interface StackInfo {
  dynamoEndpoint: string;
  tableName: string;
  eventsEndpoint: string;
  /** Where `strata lock`, `unlock` and `forget` reach the running stack (see operator-endpoint.ts). */
  operatorEndpoint?: string;
  pid: number;
  /**
   * The stack's clock, so that another command can tell the stack's "now" (the demo's runs days behind the wall,
   * then catches up): the catch-up clock's options, instants in epoch milliseconds. Absent from older stacks.
   */
  clock?: StackClock;
}

export interface StackClock {
  from: number;
  wallStart: number;
  catchUpMsPerDay: number;
  msPerDay: number;
}

/** The options of a catch-up clock, in the form stack.json keeps them. */
export function stackClock(options: Required<CatchUpClockOptions>): StackClock {
  return { ...options, from: options.from.getTime() };
}

/** There is nothing to read in a data folder: it is missing, or no stack has kept data in it. */
export class NoLocalDataError extends Error {
  override readonly name = 'NoLocalDataError';
  constructor(
    readonly dataDir: string,
    readonly reason: string,
  ) {
    super(`LocalData: no local data in ${dataDir}: ${reason}`);
  }
}

export const STACK_FILE = 'stack.json';
export const DYNALITE_FOLDER = 'dynalite';

export async function writeStackInfo(dataDir: string, info: StackInfo): Promise<void> {
  await writeFile(join(dataDir, STACK_FILE), JSON.stringify(info, null, 2) + '\n');
}

export async function removeStackInfo(dataDir: string): Promise<void> {
  await rm(join(dataDir, STACK_FILE), { force: true });
}

/** A DynamoDB client on a running stack's dynalite (which holds the folder's LevelDB lock, so it is the only way in). */
export function runningStackClient(stack: Pick<StackInfo, 'dynamoEndpoint'>, config: { maxAttempts?: number } = {}): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    ...config,
  });
}

/** The stack `strata dev` runs on this data folder, or undefined when none answers. */
export async function runningStack(dataDir: string): Promise<StackInfo | undefined> {
  let info: StackInfo;
  try {
    info = JSON.parse(await readFile(join(dataDir, STACK_FILE), 'utf8')) as StackInfo;
  } catch {
    return undefined;
  }
  const client = runningStackClient(info, { maxAttempts: 1 });
  try {
    await client.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(1500) });
    return info;
  } catch {
    return undefined; // left behind by a stack that did not shut down cleanly
  } finally {
    client.destroy();
  }
}

export interface LocalData {
  client: DynamoDBClient;
  tableName: string;
  /** The running stack's clock, or the wall clock when no stack runs (stored data then ages in real time). */
  now(): Date;
  close(): Promise<void>;
}

/** Opens the data for reading; creates nothing, so a mistyped --data is a NoLocalDataError, not a new folder. */
export async function openLocalData(dataDir: string): Promise<LocalData> {
  const stack = await runningStack(dataDir);
  if (stack) {
    const client = runningStackClient(stack);
    const clock = stack.clock ? createCatchUpClock({ ...stack.clock, from: new Date(stack.clock.from) }) : undefined;
    return { client, tableName: stack.tableName, now: () => clock?.now() ?? new Date(), close: async () => client.destroy() };
  }
  if (!existsSync(dataDir)) throw new NoLocalDataError(dataDir, 'the folder does not exist');
  if (!existsSync(join(dataDir, DYNALITE_FOLDER)))
    throw new NoLocalDataError(dataDir, `it has no ${DYNALITE_FOLDER}/ folder, so no stack has run there`);
  // Loaded only here: with a running stack, reading a user needs the SDK client alone, not dynalite and LevelDB.
  const { DEFAULT_TABLE_NAME, startDynalite } = await import('./dynalite.js');
  const dynalite = await startDynalite({ path: join(dataDir, DYNALITE_FOLDER), tableName: DEFAULT_TABLE_NAME });
  return { client: dynalite.client, tableName: dynalite.tableName, now: () => new Date(), close: dynalite.close };
}
