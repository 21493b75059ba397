/**
 * One worker thread of a parallel replay (functions/replay/parallel-replay.ts): it reads the whole history file but
 * keeps only its partition's users (and, in partition 0, the lines that name no user), then replays them on the
 * whole history's clock whenever the main thread asks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadRulesetOrThrow } from '../core/ruleset.js';
import { streamEventLines } from '../local/event-lines.js';
import { readProjectFiles } from '../local/project-files.js';
import type { ReplayWorkerData, ToMain, ToWorker } from './parallel-replay.js';
import { partitionOf } from './partitions.js';
import { prepareHistory, replayPrepared } from './replay-engine.js';

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
  const { index, count } = data.partition;
  const rulesets = await Promise.all(data.rulesDirs.map(async (dir) => loadRulesetOrThrow(await readProjectFiles(dir))));
  const keep = (json: unknown): boolean => {
    const userId = json !== null && typeof json === 'object' ? (json as Record<string, unknown>)['userId'] : undefined;
    return typeof userId === 'string' ? partitionOf(userId, count) === index : index === 0;
  };
  const onReading = index === 0 ? (bytesRead: number, totalBytes: number) => send({ kind: 'reading', bytesRead, totalBytes }) : undefined;
  const { events, lines, skipped } = await streamEventLines(data.file, onReading, keep);
  send({ kind: 'read', events: events.length, skipped });

  for (;;) {
    const message = await receive();
    if (message.kind === 'close') return;
    if (message.kind !== 'run') throw new Error(`Replay worker: expected a run or close message, got ${message.kind}`);
    const ruleset = rulesets[message.ruleset]!;
    const prepared = prepareHistory(ruleset, events, lines);
    const times = prepared.times.slice();
    send({ kind: 'times', times }, [times.buffer as ArrayBuffer]);
    const clock = await receive();
    if (clock.kind !== 'clock') throw new Error(`Replay worker: expected the history's clock, got ${clock.kind}`);
    let reported = 0;
    const result = await replayPrepared(
      {
        ruleset,
        extraDays: message.extraDays,
        skippedLines: index === 0 ? message.skippedLines : 0,
        ...(message.shipDayRuleset !== undefined ? { shipDayRuleset: rulesets[message.shipDayRuleset]! } : {}),
        onProgress: (done) => {
          // A message per few thousand events is plenty for a progress bar.
          if (done - reported >= 2_000 || done === prepared.events.length) {
            send({ kind: 'progress', done: done - reported });
            reported = done;
          }
        },
      },
      prepared,
      clock.times,
    );
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
