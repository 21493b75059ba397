/**
 * How the read commands (`strata user`, `strata explain`, and any other that reads one user's items) reach the
 * store: the local stack's data folder by default, or a DynamoDB table in AWS with --table. Also the clock they
 * judge metrics at, and the wording of their failures, so that every such command reports the same way.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { resolve } from 'node:path';
import { type DynamoTierStore, createDynamoTierStore } from '../aws/dynamo-store.js';
import { DEFAULT_REVIEW_SHARDS } from '../aws/table-schema.js';
import { NoLocalDataError, openLocalData } from '../local/local-data.js';
import { UsageError } from './output.js';

export interface StoreOptions {
  data: string;
  rules: string;
  table?: string;
  region?: string;
}

export interface OpenedStore {
  store: DynamoTierStore;
  /** The running stack's clock when there is one (the demo's runs ahead of the wall), else the wall clock. */
  now(): Date;
  /** Where the data was read, for messages: "table strata-prod in eu-west-1" or "the local data in .strata". */
  where: string;
  close(): Promise<void>;
}

const REGION_HINT = 'pass --region, set AWS_REGION, or use a profile (AWS_PROFILE) that names a region';

/** A read command could not read a user: names the id as typed and where it looked, with the store's reason. */
export class UserReadError extends UsageError {
  override readonly name = 'UserReadError';
}

/**
 * Opens the store a command reads `userId` from. `command` starts the error messages ("user", "explain", …), and
 * they name the id as typed.
 */
export async function openStore(command: string, userId: string, options: StoreOptions, timeZone: string): Promise<OpenedStore> {
  if (options.table) {
    const client = new DynamoDBClient(options.region ? { region: options.region } : {});
    let region: string;
    try {
      region = await client.config.region();
    } catch (error) {
      client.destroy();
      throw new UserReadError(`${command}: cannot read user "${userId}" from table ${options.table}: no AWS region is set`, REGION_HINT, {
        cause: error,
      });
    }
    const store = createDynamoTierStore({ client, tableName: options.table, shardCount: DEFAULT_REVIEW_SHARDS, timeZone });
    return { store, now: () => new Date(), where: `table ${options.table} in ${region}`, close: async () => client.destroy() };
  }
  let local;
  try {
    local = await openLocalData(resolve(options.data));
  } catch (error) {
    if (error instanceof NoLocalDataError) {
      throw new UserReadError(
        `${command}: cannot read user "${userId}": no local data in ${options.data} (${error.reason})`,
        'start `strata dev` first, pass --data with the folder it uses, or --table to read from AWS',
        { cause: error },
      );
    }
    throw error;
  }
  const store = createDynamoTierStore({ client: local.client, tableName: local.tableName, shardCount: DEFAULT_REVIEW_SHARDS, timeZone });
  return { store, now: local.now, where: `the local data in ${options.data}`, close: local.close };
}

/** Wraps a store failure so that it names the user id as typed, not the store's hashed reference to it. */
export function userReadFailure(command: string, userId: string, opened: OpenedStore, options: StoreOptions, error: unknown): UserReadError {
  const reason = error instanceof Error ? error.message : String(error);
  const hint = options.table ? `check --table and the region (${REGION_HINT}), and your AWS credentials` : 'check --data, or restart `strata dev`';
  return new UserReadError(`${command}: could not read user "${userId}" from ${opened.where}: ${reason}`, hint, { cause: error });
}
