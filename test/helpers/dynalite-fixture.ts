/**
 * One in-process dynalite per test file, and a fresh Strata table per test, so that tests never see each other's
 * items and need no cleanup. Call `useDynalite()` at the top level of a test file.
 */
import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import {
  type CapacityUnits,
  type DynamoTierStore,
  type DynamoTierStoreOptions,
  type StoreOperation,
  createDynamoTierStore,
} from '../../functions/aws/dynamo-store.js';
import { type RunningDynalite, createStrataTable, startDynalite } from '../../functions/local/dynalite.js';

export interface DynaliteFixture {
  readonly client: DynamoDBClient;
  /** Creates an empty Strata table under a new name. */
  freshTable(): Promise<string>;
  /** A store on a fresh table, with every request's capacity logged. */
  freshStore(overrides?: Partial<Omit<DynamoTierStoreOptions, 'client' | 'tableName' | 'onCapacity'>>): Promise<TestStore>;
}

export interface CapacityRecord extends CapacityUnits {
  operation: StoreOperation;
}

export interface TestStore {
  store: DynamoTierStore;
  tableName: string;
  capacity: CapacityLog;
}

export class CapacityLog {
  readonly records: CapacityRecord[] = [];

  add = (operation: StoreOperation, units: CapacityUnits): void => {
    this.records.push({ operation, ...units });
  };

  clear(): void {
    this.records.length = 0;
  }

  total(): CapacityUnits & { byOperation: Partial<Record<StoreOperation, CapacityUnits>> } {
    const byOperation: Partial<Record<StoreOperation, CapacityUnits>> = {};
    let read = 0;
    let write = 0;
    for (const record of this.records) {
      const sum = (byOperation[record.operation] ??= { read: 0, write: 0 });
      sum.read += record.read;
      sum.write += record.write;
      read += record.read;
      write += record.write;
    }
    return { read, write, byOperation };
  }
}

export function useDynalite(): DynaliteFixture {
  let running: RunningDynalite | undefined;
  beforeAll(async () => {
    running = await startDynalite();
  });
  afterAll(async () => {
    await running?.close();
  });
  const client = (): DynamoDBClient => {
    if (!running) throw new Error('dynalite fixture: not started; call useDynalite() at the top level of the test file');
    return running.client;
  };
  const freshTable = async (): Promise<string> => {
    const tableName = `strata-${randomUUID().slice(0, 8)}`;
    await createStrataTable(client(), tableName);
    return tableName;
  };
  return {
    get client() {
      return client();
    },
    freshTable,
    async freshStore(overrides = {}) {
      const tableName = await freshTable();
      const capacity = new CapacityLog();
      const store = createDynamoTierStore({ shardCount: 4, ...overrides, client: client(), tableName, onCapacity: capacity.add });
      return { store, tableName, capacity };
    },
  };
}
