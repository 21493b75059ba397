/**
 * One worker thread of a parallel replay (functions/replay/parallel-replay.ts). It reads the whole history file but
 * keeps only its partition's users (and, in partition 0, the lines that name no user). Their events go to temporary
 * files, one per sub-partition of those users (functions/replay/spilled-history.ts), and only the instants of the
 * events each ruleset accepts stay in memory. Whenever the main thread asks, it replays the sub-partitions one after
 * the other on the whole history's clock, each loaded, replayed and dropped before the next, and sends their sum:
 * users never share state, so the sum is the replay of all its users at once (functions/replay/partitions.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { instantMs } from '../core/dates.js';
import { loadRulesetOrThrow } from '../core/ruleset.js';
import { eventCollector, visitEventLines } from '../local/event-lines.js';
import { readProjectFiles } from '../local/project-files.js';
import type { ReplayWorkerData, ToMain, ToWorker } from './parallel-replay.js';
import { mergeResults, partitionOf } from './partitions.js';
import { ingestRejection } from './rejections.js';
import { type SimulationResult, prepareHistory, replayPrepared } from './replay-engine.js';
import { SpilledHistory } from './spilled-history.js';

const data = workerData as ReplayWorkerData;
const port = parentPort!;
const send = (message: ToMain, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

/** Every message from the main thread, in order: each step awaits the next one it needs. */
const inbox: ToWorker[] = [];
let wake: (() => void) | undefined;
port.on('message', (message: ToWorker) => {
  inbox.push(message);
  wake?.();
});
async function receive(): Promise<ToWorker> {
  while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
  return inbox.shift()!;
}

async function main(): Promise<void> {
  const { index, count, subPartitions } = data.partition;
  const rulesets = await Promise.all(data.rulesDirs.map(async (dir) => loadRulesetOrThrow(await readProjectFiles(dir))));
  const keep = (json: unknown): boolean => {
    const userId = json !== null && typeof json === 'object' ? (json as Record<string, unknown>)['userId'] : undefined;
    return typeof userId === 'string' ? partitionOf(userId, count) === index : index === 0;
  };
  // The partitions of all threads' sub-partitions together: those of this thread's users are `index` modulo `count`.
  const subPartitionOf = (userId: string): number => Math.floor(partitionOf(userId, count * subPartitions) / count);
  const onReading = index === 0 ? (bytesRead: number, totalBytes: number) => send({ kind: 'reading', bytesRead, totalBytes }) : undefined;

  const spill = new SpilledHistory(data.spillDir, `partition-${index}`, subPartitions);
  // Under each ruleset, the instants of the events it accepts: this thread's share of the history's clock.
  const acceptedTimes = rulesets.map((): number[] => []);
  let events = 0;
  const skipped = await visitEventLines(
    data.file,
    (event, lineNumber) => {
      const at = instantMs(event.occurredAt);
      rulesets.forEach((ruleset, r) => {
        if (ingestRejection(ruleset, event) === undefined) acceptedTimes[r]!.push(at);
      });
      spill.add(subPartitionOf(event.userId), lineNumber, event);
      events += 1;
    },
    onReading,
    keep,
  ).finally(() => spill.close());
  send({ kind: 'read', events, skipped });

  for (;;) {
    const message = await receive();
    if (message.kind === 'close') return;
    if (message.kind !== 'run') throw new Error(`Replay worker: expected a run or close message, got ${message.kind}`);
    const ruleset = rulesets[message.ruleset]!;
    const times = Float64Array.from(acceptedTimes[message.ruleset]!);
    const accepted = times.length;
    send({ kind: 'times', times }, [times.buffer as ArrayBuffer]);
    const clock = await receive();
    if (clock.kind !== 'clock') throw new Error(`Replay worker: expected the history's clock, got ${clock.kind}`);
    const parts: SimulationResult[] = [];
    let replayed = 0;
    let reported = 0;
    for (let part = 0; part < spill.parts; part++) {
      const { read: own, sink } = eventCollector();
      spill.read(part, sink);
      const prepared = prepareHistory(ruleset, own.events, own.lines);
      const before = replayed;
      parts.push(
        await replayPrepared(
          {
            ruleset,
            extraDays: message.extraDays,
            // The skipped lines are counted once, in the first sub-partition of the first thread.
            skippedLines: index === 0 && part === 0 ? message.skippedLines : 0,
            ...(message.shipDayRuleset !== undefined ? { shipDayRuleset: rulesets[message.shipDayRuleset]! } : {}),
            onProgress: (done) => {
              // A message per few thousand events is plenty for a progress bar.
              if (before + done - reported >= 2_000 || done === prepared.events.length) {
                send({ kind: 'progress', done: before + done - reported });
                reported = before + done;
              }
            },
          },
          prepared,
          clock.times,
        ),
      );
      replayed += prepared.events.length;
    }
    if (replayed !== accepted)
      throw new Error(`Replay worker: replayed ${replayed} events of partition ${index}, but its share of the clock has ${accepted}`);
    const result = mergeResults(ruleset, parts);
    send({
      kind: 'result',
      summary: result.summary,
      finalTierByUser: [...result.finalTierByUser],
      rejected: result.rejected,
      ...(result.shipDay ? { shipDay: result.shipDay } : {}),
    });
  }
}

main().catch((error: unknown) => {
  send({
    kind: 'failed',
    message: error instanceof Error ? error.message : String(error),
    ...(error instanceof Error && error.stack ? { stack: error.stack } : {}),
  });
});
