/**
 * dynalite reads the table's description from LevelDB at the start of every request (its `getTable`): under full
 * ingest two thirds of the LevelDB reads of dynalite's thread were that one key, each a round trip through the
 * thread pool and a JSON decode, for a record that changes only when a table is created, updated or deleted.
 *
 * Here the table store remembers each description it has read, as the JSON text LevelDB holds, and hands every
 * read a fresh decode of it, as LevelDB would (dynalite's table actions modify what they read before writing it
 * back). Any write to the table store forgets everything: those are the only writes of descriptions, and they are
 * rare. A read that overlapped a write is not remembered, since it may hold either version. Nothing is served from
 * memory once the database is closing or closed: those reads fail as before.
 */

type Callback = (error: Error | null | undefined, value?: unknown) => void;

/** dynalite's table store (`store.tableDb`): a prefixed view of its LevelDB with callback methods. */
export interface DynaliteTableStore {
  get(key: string, callback: Callback): void;
  put(key: string, value: unknown, callback: Callback): void;
  del(key: string, callback: Callback): void;
  batch(operations: unknown[], callback: Callback): void;
}

export interface TableCacheStats {
  hits: number;
  reads: number;
}

/** Wraps the store's methods in place (dynalite's own functions hold this object). */
export function cacheTableDescriptions(tableStore: DynaliteTableStore, isOpen: () => boolean): TableCacheStats {
  const remembered = new Map<string, string>();
  const stats: TableCacheStats = { hits: 0, reads: 0 };
  /** Writes issued and not yet answered; bumped generation on every write so that reads across one are not kept. */
  let writesInFlight = 0;
  let generation = 0;
  const get = tableStore.get.bind(tableStore);

  tableStore.get = (key, callback) => {
    const text = isOpen() ? remembered.get(key) : undefined;
    if (text !== undefined) {
      stats.hits += 1;
      // Asynchronous, as LevelDB's answer is, so that callers see the same order of events.
      setImmediate(callback, null, JSON.parse(text));
      return;
    }
    stats.reads += 1;
    const startedAt = generation;
    get(key, (error, value) => {
      if (!error && value !== null && typeof value === 'object' && writesInFlight === 0 && generation === startedAt && isOpen())
        remembered.set(key, JSON.stringify(value));
      callback(error, value);
    });
  };

  for (const method of ['put', 'del', 'batch'] as const) {
    const write = (tableStore[method] as (...args: unknown[]) => void).bind(tableStore);
    (tableStore as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const callback = (typeof args.at(-1) === 'function' ? args.pop() : () => undefined) as Callback;
      writesInFlight += 1;
      generation += 1;
      remembered.clear();
      write(...args, (error: Error | null | undefined, value?: unknown) => {
        writesInFlight -= 1;
        generation += 1;
        remembered.clear();
        callback(error, value);
      });
    };
  }
  return stats;
}
