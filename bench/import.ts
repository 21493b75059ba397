/**
 * `strata import` speed and cost: an example-population history (1,000,000 events in a full run) imported into an
 * empty local dynalite (in a worker thread, as `strata dev` runs it), timed from the parsed events to the last
 * checkpoint, with every write request and the write units dynalite reports counted. The goal is ≤ 0.2 write
 * requests per event: day items aggregate a user-day, and BatchWriteItem carries 25 items.
 *
 * Alone: `npx tsx bench/import.ts [events]`.
 */
import '../functions/local/cli-environment.js';
import { fileURLToPath } from 'node:url';
import { runImport } from '../functions/cli/commands/import.js';
import { loadRulesetOrThrow, type Ruleset } from '../functions/core/ruleset.js';
import { startDynalite } from '../functions/local/dynalite.js';
import { generateEvents } from '../functions/local/example-population.js';
import { readProjectFiles } from '../functions/local/project-files.js';

export interface ImportFigures {
  events: number;
  users: number;
  seconds: number;
  eventsPerSec: number;
  writeRequestsPerEvent: number;
  wruPerEvent: number;
  itemsWritten: number;
}

/** The example population's events per user over 60 days (seed 11), for sizing the history. */
const EVENTS_PER_USER = 30;

export async function measureImport(ruleset: Ruleset, options: { events: number }): Promise<ImportFigures> {
  const events = generateEvents({ users: Math.max(1, Math.round(options.events / EVENTS_PER_USER)), days: 60, seed: 11, start: '2026-09-01' });
  const lines = events.map((_, i) => i + 1);
  const now = new Date(Date.parse(events[events.length - 1]!.occurredAt) + 3_600_000);
  const dynalite = await startDynalite({ thread: 'worker' });
  try {
    const started = performance.now();
    const report = await runImport({
      ruleset,
      events,
      lines,
      historyId: `bench-${events.length}`,
      target: { client: dynalite.client, tableName: dynalite.tableName, shardCount: 16 },
      now,
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      events: events.length,
      users: report.imported,
      seconds,
      eventsPerSec: events.length / seconds,
      writeRequestsPerEvent: report.writeRequests / events.length,
      wruPerEvent: report.writeUnits / events.length,
      itemsWritten: report.itemsWritten,
    };
  } finally {
    await dynalite.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ruleset = loadRulesetOrThrow(await readProjectFiles('.'));
  const figures = await measureImport(ruleset, { events: Number(process.argv[2] ?? 100_000) });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
