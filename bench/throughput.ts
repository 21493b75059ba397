/**
 * End-to-end local throughput: events go onto the local bus, through the bus rule to the local queue, into the
 * real ingest handler and the DynamoDB store on dynalite (tier changes also start journeys, as they would). The
 * yardstick is dynalite's own rate of conditional UpdateItem calls from the same SDK, measured in the same run.
 */
import { UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeEnvelope } from '../functions/core/event-pattern.js';
import type { UserEvent } from '../functions/core/event.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { createVirtualClock } from '../functions/local/clock.js';
import { generateEvents } from '../functions/local/example-population.js';
import { localEnvelope } from '../functions/local/local-bus.js';
import { startLocalStack } from '../functions/local/local-stack.js';

export interface ThroughputResult {
  events: number;
  eventsPerSec: number;
  dynaliteOpsPerSec: number;
  ratio: number;
  /** Batches the local queue hands to the ingest handler at once (Lambda concurrency). */
  concurrency: number;
  batchWindowMs: number;
}

function envelope(event: UserEvent): EventBridgeEnvelope {
  return localEnvelope({ source: 'bench.producer', detailType: event.type, detail: { ...event }, time: new Date(event.occurredAt), resources: [] });
}

/** dynalite's raw rate: the same kind of guarded ADD that recordEvent sends, each to its own day item. */
export async function rawUpdateOpsPerSec(client: DynamoDBClient, tableName: string, operations: number, concurrency: number): Promise<number> {
  const run = Math.random().toString(36).slice(2, 8);
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < operations; i = next++) {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: `USER#raw-${run}-${i % 1000}` }, sk: { S: `DAY#2026-10-${String(1 + (i % 28)).padStart(2, '0')}` } },
          UpdateExpression: 'ADD #ids :keys, #n :one',
          ConditionExpression: 'NOT contains(#ids, :key)',
          ExpressionAttributeNames: { '#ids': 'ids', '#n': 'n_raw' },
          ExpressionAttributeValues: { ':keys': { SS: [`k${i}`] }, ':key': { S: `k${i}` }, ':one': { N: '1' } },
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return operations / ((performance.now() - started) / 1000);
}

export async function measureThroughput(
  ruleset: Ruleset,
  options: { events: number; concurrency?: number; batchWindowMs?: number; rawConcurrency?: number },
): Promise<ThroughputResult> {
  const concurrency = options.concurrency ?? 4;
  const batchWindowMs = options.batchWindowMs ?? 5;
  // Enough users that most events belong to different users, as in a busy community.
  const all = generateEvents({ users: Math.max(50, Math.ceil(options.events / 10)), days: 30, seed: 11, start: '2026-09-01' });
  const events = all.slice(0, options.events);
  const clock = createVirtualClock(new Date(Date.parse(events[events.length - 1]!.occurredAt) + 60_000));
  const stack = await startLocalStack({ ruleset, clock, ingestConcurrency: concurrency, batchWindowMs });
  clock.settleWith(() => stack.settle());
  try {
    // Warm up the SDK, the handler and dynalite's table before timing anything.
    await rawUpdateOpsPerSec(stack.dynalite.client, stack.dynalite.tableName, 100, 8);
    const dynaliteOpsPerSec = await rawUpdateOpsPerSec(
      stack.dynalite.client,
      stack.dynalite.tableName,
      Math.max(100, options.events),
      options.rawConcurrency ?? 16,
    );
    const started = performance.now();
    await stack.bus.put(events.map(envelope));
    await stack.settle();
    const seconds = (performance.now() - started) / 1000;
    const applied = stack.counters.eventsRecorded + stack.counters.duplicates;
    if (applied !== events.length) throw new Error(`Bench: ${events.length} events sent, ${applied} reached the store`);
    const eventsPerSec = events.length / seconds;
    return { events: events.length, eventsPerSec, dynaliteOpsPerSec, ratio: eventsPerSec / dynaliteOpsPerSec, concurrency, batchWindowMs };
  } finally {
    await stack.close();
  }
}
