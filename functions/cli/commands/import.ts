/**
 * `strata import --events FILE.jsonl`: bulk backfill of a business's history into the local stack or a table.
 *
 * The history is replayed in memory by the replay engine (the same ingestEvent and nightly review as production,
 * journeys off), up to today's review, and each user's final state is then written as whole items with
 * BatchWriteItem: day items aggregated per user-day with their event keys (so a live copy of an imported event is
 * a duplicate for the normal ingest path), heavy days' guards, committed history, and the profile last, which puts
 * the user in the review index. Items are built by dynamo-store.ts's own layout helpers.
 *
 * Safe to repeat: a checkpoint item in the table (SYSTEM / IMPORT#<id>, the id a hash of the file, the ruleset
 * version and the mode) records how many users, in replay order, are written; a rerun resumes there, and a finished
 * import does nothing. A user whose stored profile is not what this import would write (live data, or an import
 * judged on another day) is never overwritten: it is skipped and reported, and `--rebuild` rewrites only its day
 * items for the dates the file covers, keeping its journey sends.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SFNClient } from '@aws-sdk/client-sfn';
import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { dayItemKept, segmentsWithoutDates, dayRetentionDays, tableItemLayout } from '../../aws/dynamo-store.js';
import { createEventBridgePublisher } from '../../aws/eventbridge-publisher.js';
import { type ImportTable, createImportTable, sameItem } from '../../aws/import-table.js';
import { createSfnJourneyStarter, parseStateMachineArns } from '../../aws/sfn-journey-starter.js';
import { DEFAULT_REVIEW_SHARDS, TABLE_KEYS, dayKey } from '../../aws/table-schema.js';
import { shortHash } from '../../core/hash.js';
import {
  type ImportCounts,
  type ImportedUser,
  coveredDates,
  emptyCounts,
  importedDays,
  importedNotice,
  importedProfile,
  reviewDaysAfterHistory,
} from '../../core/import-plan.js';
import type { UserEvent } from '../../core/event.js';
import type { JourneyStarter, NoticePublisher } from '../../core/ports.js';
import type { Ruleset } from '../../core/ruleset.js';
import { DYNALITE_FOLDER, runningStack, runningStackClient } from '../../local/local-data.js';
import { streamEventLines } from '../../local/event-lines.js';
import { runReplay } from '../../replay/replay-engine.js';
import type { MemoryReplayStore } from '../../replay/memory-store.js';
import { loadValidRuleset } from '../load-ruleset.js';
import { type CliOutput, UsageError } from '../output.js';
import { progressReporter } from './simulate.js';

/** Users written per chunk: the checkpoint moves after each, so an interruption repeats at most one chunk. */
const USERS_PER_CHUNK = 250;
/** Step Functions' cap on open Standard executions per account and region. */
export const MAX_OPEN_STANDARD_EXECUTIONS = 1_000_000;
const DEFAULT_START_RATE = 50;
const PROGRESS_MIN_EVENTS = 20_000;
const LISTED = 20;
const EVENT_BUS_VARIABLE = 'STRATA_EVENT_BUS_NAME';
const STATE_MACHINES_VARIABLE = 'STRATA_JOURNEY_STATE_MACHINES';
/** As local-stack.ts's LOCAL_REVIEW_SHARDS: the embedded stack's review index shards. */
const LOCAL_REVIEW_SHARDS = 4;

type Item = ReturnType<ReturnType<typeof tableItemLayout>['profileItem']>;

export interface ImportTarget {
  client: DynamoDBClient;
  tableName: string;
  shardCount: number;
}

export interface ImportInput {
  ruleset: Ruleset;
  events: UserEvent[];
  /** Each event's line in the file, for reports. */
  lines: number[];
  /** Identifies the history (a hash of the file): with the ruleset version and the mode it names the checkpoint. */
  historyId: string;
  /** Where to write; none = `--dry-run`. */
  target?: ImportTarget;
  now: Date;
  rebuild?: boolean;
  maxWcu?: number;
  /** Batches in flight at once. */
  concurrency?: number;
  /** Users per checkpointed chunk. Default 250. */
  usersPerChunk?: number;
  journeys?: { starter: JourneyStarter; perSecond: number };
  notices?: NoticePublisher;
  onProgress?: (done: number, total: number) => void;
}

export interface ImportReport {
  importId: string;
  counts: ImportCounts;
  /** Users written by this run. */
  imported: number;
  /** Users before the checkpoint (an earlier, interrupted run wrote them). */
  resumedAfter: number;
  /** The whole history was already imported (the checkpoint says so): nothing was read or written. */
  alreadyComplete: boolean;
  /** Users whose stored profile is exactly what this import writes: left as they are. */
  unchanged: number;
  /** Users already in the table with other state (live data): not overwritten. */
  skippedExisting: string[];
  /** With --rebuild: users whose day items were rewritten. */
  rebuilt: number;
  futureEvents: Array<{ line: number; eventId: string }>;
  rejected: Array<{ line?: number; eventId: string; reason: string }>;
  journeysStarted: number;
  journeyStartFailures: Array<{ userId: string; reason: string }>;
  noticesPublished: number;
  noticeFailures: Array<{ userId: string; reason: string }>;
  writeRequests: number;
  writeUnits: number;
  itemsWritten: number;
  /** One item of each kind, for --dry-run. */
  samples: Record<string, unknown>;
}

function itemKind(item: Item): keyof Omit<ImportCounts, 'users' | 'expiredItems'> {
  const sortKey = item[TABLE_KEYS.sortKey]?.S ?? '';
  if (sortKey.startsWith('DAY#')) return 'dayItems';
  if (sortKey.startsWith('SEEN#')) return 'guardItems';
  if (sortKey.startsWith('TIERLOG#')) return 'historyEntries';
  return 'profiles';
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Replays the history, then writes (or with no target, counts) each user's final state. */
export async function runImport(input: ImportInput): Promise<ImportReport> {
  const { ruleset, now, target } = input;
  const mode = input.rebuild ? 'rebuild' : 'import';
  const importId = shortHash(`${input.historyId}|${ruleset.version}|${mode}`, 20);
  const report: ImportReport = {
    importId,
    counts: emptyCounts(),
    imported: 0,
    resumedAfter: 0,
    alreadyComplete: false,
    unchanged: 0,
    skippedExisting: [],
    rebuilt: 0,
    futureEvents: [],
    rejected: [],
    journeysStarted: 0,
    journeyStartFailures: [],
    noticesPublished: 0,
    noticeFailures: [],
    writeRequests: 0,
    writeUnits: 0,
    itemsWritten: 0,
    samples: {},
  };

  // An event later than now cannot have happened yet: reported, and left out of the judging.
  const events: UserEvent[] = [];
  const lines: number[] = [];
  input.events.forEach((event, i) => {
    if (Date.parse(event.occurredAt) > now.getTime()) report.futureEvents.push({ line: input.lines[i]!, eventId: event.eventId });
    else {
      events.push(event);
      lines.push(input.lines[i]!);
    }
  });
  if (events.length === 0) throw new UsageError('import: the file has no event to import (none valid, or all later than now)');

  const table: ImportTable | undefined = target
    ? createImportTable({
        client: target.client,
        tableName: target.tableName,
        ...(input.maxWcu !== undefined ? { maxWcu: input.maxWcu } : {}),
        ...(input.concurrency !== undefined ? { concurrency: input.concurrency } : {}),
      })
    : undefined;
  const checkpoint = table ? await table.readCheckpoint(importId) : undefined;
  if (checkpoint?.complete) {
    report.alreadyComplete = true;
    return report;
  }
  const usersDone = checkpoint?.usersDone ?? 0;
  report.resumedAfter = usersDone;

  const layout = tableItemLayout({
    shardCount: target?.shardCount ?? DEFAULT_REVIEW_SHARDS,
    timeZone: ruleset.timezone,
    retentionDays: dayRetentionDays(ruleset.maxWindowDays),
    now: () => now,
  });
  let firstAt = Infinity;
  let lastAt = -Infinity;
  for (const event of events) {
    const at = Date.parse(event.occurredAt);
    if (at < firstAt) firstAt = at;
    if (at > lastAt) lastAt = at;
  }
  const covered = coveredDates(ruleset, new Date(firstAt), new Date(lastAt));

  const sample = (item: Item): void => {
    const kind = itemKind(item);
    report.samples[kind] ??= item;
  };
  /** The items of one user's day buckets (and guards), counted; expired ones are left out. */
  const dayItemsOf = (user: ImportedUser, keep: (date: string) => boolean = () => true): Item[] => {
    const items: Item[] = [];
    for (const day of user.days) {
      if (!keep(day.date)) continue;
      const item = layout.dayItem(user.userId, day);
      if (!item) {
        report.counts.expiredItems += 1;
        continue;
      }
      items.push(item, ...layout.guardItems(user.userId, day));
    }
    return items;
  };

  const historyItemsOf = (user: ImportedUser): Item[] => {
    const items = user.history.map((entry) => layout.historyItem(entry)).filter((item): item is Item => item !== undefined);
    report.counts.expiredItems += user.history.length - items.length;
    return items;
  };

  let startedInWindow = 0;
  let windowStart = Date.now();
  const startJourney = async (user: ImportedUser): Promise<void> => {
    const journey = user.profile.journey;
    if (!input.journeys || !journey) return;
    if (report.journeysStarted >= MAX_OPEN_STANDARD_EXECUTIONS) {
      report.journeyStartFailures.push({
        userId: user.userId,
        reason: `not started: ${MAX_OPEN_STANDARD_EXECUTIONS} open Standard executions is the cap`,
      });
      return;
    }
    // Paced: StartExecution is throttled per account, and other starts (live ingest) share the bucket.
    if (startedInWindow >= input.journeys.perSecond) {
      await sleep(Math.max(0, 1000 - (Date.now() - windowStart)));
      startedInWindow = 0;
      windowStart = Date.now();
    }
    startedInWindow += 1;
    try {
      await input.journeys.starter.start(journey, user.userId);
      report.journeysStarted += 1;
    } catch (error) {
      // The imported state is already written; the start can be made again (its name is deterministic).
      report.journeyStartFailures.push({ userId: user.userId, reason: error instanceof Error ? error.message : String(error) });
    }
  };

  /** Writes one chunk of users; resolves once their profiles (the last items of each) are stored. */
  const writeChunk = async (users: ImportedUser[]): Promise<void> => {
    const profileItems = new Map(users.map((user) => [user.userId, layout.profileItem(user.profile)]));
    if (!table) {
      for (const user of users) {
        const items = [...dayItemsOf(user), ...historyItemsOf(user), profileItems.get(user.userId)!];
        for (const item of items) {
          report.counts[itemKind(item)] += 1;
          sample(item);
        }
      }
      return;
    }
    const stored = await table.storedProfiles(users.map((user) => user.userId));
    const before: Item[] = [];
    const profiles: Item[] = [];
    const fresh: ImportedUser[] = [];
    const rebuilt: ImportedUser[] = [];
    for (const user of users) {
      const profileItem = profileItems.get(user.userId)!;
      const existing = stored.get(user.userId);
      const unchanged = existing !== undefined && sameItem(existing, profileItem);
      if (existing && !unchanged && !input.rebuild) {
        report.skippedExisting.push(user.userId);
        continue;
      }
      if (existing && input.rebuild) {
        rebuilt.push(user);
        if (unchanged) report.unchanged += 1;
        continue;
      }
      if (unchanged) {
        report.unchanged += 1;
        continue;
      }
      before.push(...dayItemsOf(user), ...historyItemsOf(user));
      profiles.push(profileItem);
      fresh.push(user);
    }
    // Only the covered dates' counters of a stored user: the profile and history stay as live ingest left them, and
    // the journey sends recorded on those days are kept, as are the attribute changes not folded into the profile.
    const storedDays = await table.storedDays(
      rebuilt.map((user) => user.userId),
      covered.from,
      covered.to,
    );
    const segments: Item[] = [];
    for (const user of rebuilt) {
      const stored = storedDays.get(user.userId) ?? [];
      const byDate = new Map(stored.map((item) => [item[TABLE_KEYS.sortKey]!.S!, item]));
      const days = user.days.map((day) => ({ ...day, ...dayItemKept(byDate.get(dayKey(day.date)) ?? {}) }));
      const inCover = (date: string): boolean => date >= covered.from && date <= covered.to;
      before.push(...dayItemsOf({ ...user, days }, inCover));
      // The rebuilt dates leave the segments that held them (written first: a day is never counted twice).
      segments.push(...segmentsWithoutDates(stored, new Set(days.map((day) => day.date).filter(inCover))));
    }
    await table.writeItems(segments);
    report.rebuilt += rebuilt.length;
    for (const item of [...before, ...profiles]) report.counts[itemKind(item)] += 1;
    // Profiles last: a user is judged (and in the review index) only once everything it is judged on is stored.
    await table.writeItems(before);
    await table.writeItems(profiles);
    report.imported += fresh.length;
    for (const user of fresh) await startJourney(user);
    if (input.notices && fresh.length > 0) {
      // Like a failed start, a failed publish is reported and leaves the imported users as written.
      try {
        await input.notices.publishNotices(fresh.map((user) => importedNotice(user.profile, ruleset.version, now)));
        report.noticesPublished += fresh.length;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        report.noticeFailures.push(...fresh.map((user) => ({ userId: user.userId, reason })));
      }
    }
  };

  let userIndex = 0;
  let eventsDone = 0;
  let chunk: ImportedUser[] = [];
  let inFlight: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    const users = chunk;
    const position = { usersDone: userIndex, eventsDone: eventsDone };
    chunk = [];
    // One chunk writes while the replay judges the next; checkpoints move in order.
    await inFlight;
    inFlight = (async () => {
      await writeChunk(users);
      if (table) await table.writeCheckpoint(importId, { ...position, complete: false });
    })();
    // Observed here so that it is not an unhandled rejection; the next flush or the end awaits it and throws.
    inFlight.catch(() => undefined);
  };

  const onUserDone = async (userId: string, store: MemoryReplayStore): Promise<void> => {
    userIndex += 1;
    const stored = store.storedUser(userId);
    if (userIndex <= usersDone || !stored?.profile) return;
    const newestFirst = await store.listHistory(userId, Number.MAX_SAFE_INTEGER);
    chunk.push({
      userId,
      profile: importedProfile(stored.profile, input.journeys ? { startedAt: now } : undefined),
      history: newestFirst.reverse(),
      days: importedDays(stored.days.values(), stored.guards),
    });
    report.counts.users += 1;
    if (chunk.length >= (input.usersPerChunk ?? USERS_PER_CHUNK)) await flush();
  };

  const result = await runReplay({
    ruleset,
    events,
    lines,
    extraDays: reviewDaysAfterHistory(ruleset, new Date(lastAt), now),
    journeys: false,
    onUserDone,
    onProgress: (done, total) => {
      eventsDone = done;
      input.onProgress?.(done, total);
    },
  });
  report.rejected = result.rejected;
  if (chunk.length > 0) await flush();
  await inFlight;
  if (table) {
    await table.writeCheckpoint(importId, { usersDone: userIndex, eventsDone: events.length, complete: true });
    report.writeRequests = table.stats.writeRequests;
    report.writeUnits = table.stats.writeUnits;
    report.itemsWritten = table.stats.itemsWritten;
  }
  return report;
}

/** A SHA-256 of the file's bytes: the same history gets the same checkpoint, wherever the file lives. */
export async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------
// The command

export interface ImportCommandOptions {
  events: string;
  rules: string;
  data: string;
  table?: string;
  region?: string;
  reviewShards: string;
  rebuild?: boolean;
  dryRun?: boolean;
  maxWcu?: string;
  startJourneys?: boolean;
  startRate: string;
  notices?: boolean;
  eventBus?: string;
  stateMachines?: string;
}

function positiveNumber(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`import: ${flag} must be a positive number, not "${text}"`);
  return value;
}

interface OpenedTarget {
  target: ImportTarget;
  now: Date;
  where: string;
  journeys?: JourneyStarter;
  notices?: NoticePublisher;
  close(): Promise<void>;
}

async function openTarget(options: ImportCommandOptions, ruleset: Ruleset): Promise<OpenedTarget> {
  if (options.table) {
    const shardCount = Number(options.reviewShards);
    if (!Number.isInteger(shardCount) || shardCount < 1)
      throw new UsageError(`import: --review-shards must be a positive whole number, not "${options.reviewShards}"`);
    const region = options.region ? { region: options.region } : {};
    const client = new DynamoDBClient(region);
    const clients: Array<{ destroy(): void }> = [client];
    const opened: OpenedTarget = {
      target: { client, tableName: options.table, shardCount },
      now: new Date(),
      where: `table ${options.table}`,
      close: async () => clients.forEach((c) => c.destroy()),
    };
    if (options.startJourneys) {
      const stateMachines = options.stateMachines ?? process.env[STATE_MACHINES_VARIABLE];
      if (!stateMachines)
        throw new UsageError('import: --start-journeys needs the journey state machines', `pass --state-machines or set ${STATE_MACHINES_VARIABLE}`);
      const sfn = new SFNClient(region);
      clients.push(sfn);
      const journeyIds = Object.fromEntries(Object.entries(ruleset.journeys).map(([tier, journey]) => [tier, journey.id]));
      opened.journeys = createSfnJourneyStarter({
        client: sfn,
        stateMachineArns: parseStateMachineArns(stateMachines, '--state-machines'),
        journeyIds,
      });
    }
    if (options.notices) {
      const eventBusName = options.eventBus ?? process.env[EVENT_BUS_VARIABLE];
      if (!eventBusName) throw new UsageError('import: --notices needs the event bus', `pass --event-bus or set ${EVENT_BUS_VARIABLE}`);
      const eventBridge = new EventBridgeClient(region);
      clients.push(eventBridge);
      opened.notices = createEventBridgePublisher({ client: eventBridge, eventBusName });
    }
    return opened;
  }
  if (options.startJourneys || options.notices) {
    throw new UsageError(
      'import: --start-journeys and --notices work with --table only',
      'on the local stack, import quietly; the users enter their journeys at their next tier change',
    );
  }
  const dataDir = resolve(options.data);
  const stack = await runningStack(dataDir);
  if (stack) {
    // `strata dev` holds the LevelDB lock: write through its DynamoDB endpoint, on its clock.
    const client = runningStackClient(stack);
    const { openLocalData } = await import('../../local/local-data.js');
    const local = await openLocalData(dataDir);
    const now = local.now();
    await local.close();
    return {
      target: { client, tableName: stack.tableName, shardCount: LOCAL_REVIEW_SHARDS },
      now,
      where: `the running stack on ${options.data}`,
      close: async () => client.destroy(),
    };
  }
  // No stack runs: open (or start) the data folder's dynalite here, as `strata dev` will find it.
  await mkdir(dataDir, { recursive: true });
  const { DEFAULT_TABLE_NAME, startDynalite } = await import('../../local/dynalite.js');
  const dynalite = await startDynalite({ path: join(dataDir, DYNALITE_FOLDER), tableName: DEFAULT_TABLE_NAME });
  return {
    target: { client: dynalite.client, tableName: dynalite.tableName, shardCount: LOCAL_REVIEW_SHARDS },
    now: new Date(),
    where: `the local data in ${options.data}`,
    close: dynalite.close,
  };
}

function describeCounts(counts: ImportCounts): string {
  return `${counts.profiles} profiles, ${counts.historyEntries} history entries, ${counts.dayItems} day items, ${counts.guardItems} event guards`;
}

function printReport(report: ImportReport, options: ImportCommandOptions, where: string, out: CliOutput): void {
  for (const event of report.futureEvents.slice(0, LISTED))
    out.error(`${options.events}:${event.line}: skipped: event ${event.eventId} happens after now; import it once it has happened`);
  if (report.futureEvents.length > LISTED) out.error(`... and ${report.futureEvents.length - LISTED} more events after now`);
  for (const event of report.rejected.slice(0, LISTED))
    out.error(`${options.events}:${event.line ?? '?'}: rejected by ingest (event ${event.eventId}): ${event.reason}`);
  if (report.rejected.length > LISTED) out.error(`... and ${report.rejected.length - LISTED} more events rejected by ingest`);
  if (report.alreadyComplete) {
    out.info(`Already imported into ${where} (checkpoint ${report.importId}): nothing to do.`);
    return;
  }
  if (options.dryRun) {
    out.info(
      `Dry run: would write ${describeCounts(report.counts)} for ${report.counts.users} users (${report.counts.expiredItems} items past their retention left out).`,
    );
    // Binary attributes (compressed explanations) are shown by size.
    const readable = (key: string, value: unknown): unknown =>
      key === 'B' && typeof value === 'object' && value !== null ? `<${(value as { data?: unknown[] }).data?.length ?? '?'} bytes>` : value;
    for (const [kind, item] of Object.entries(report.samples)) out.info(`  sample ${kind}: ${JSON.stringify(item, readable)}`);
    return;
  }
  if (report.resumedAfter > 0) out.info(`Resumed after ${report.resumedAfter} users written by an earlier run.`);
  out.info(
    `Imported ${report.imported} users into ${where}: ${describeCounts(report.counts)}; ${report.writeRequests} write requests, ${Math.round(report.writeUnits)} write units.`,
  );
  if (report.unchanged > 0) out.info(`  ${report.unchanged} users were already stored exactly as imported: left as they are.`);
  if (report.rebuilt > 0)
    out.info(`  --rebuild: rewrote the day items of ${report.rebuilt} users already in the table, for the dates the file covers.`);
  if (report.skippedExisting.length > 0) {
    out.error(
      `import: ${report.skippedExisting.length} users were already in the table with other state (live data) and were left as they are: ${report.skippedExisting.slice(0, LISTED).join(', ')}${report.skippedExisting.length > LISTED ? ', …' : ''}`,
    );
    out.error('  hint: run again with --rebuild to rewrite their day items from the file (their tier stays as live ingest decided it)');
  }
  if (options.startJourneys) out.info(`  journeys started: ${report.journeysStarted}`);
  for (const failure of report.journeyStartFailures.slice(0, LISTED))
    out.error(`import: journey of ${failure.userId} not started: ${failure.reason}`);
  if (options.notices) out.info(`  TierChanged (imported) notices published: ${report.noticesPublished}`);
  if (report.noticeFailures.length > 0)
    out.error(
      `import: ${report.noticeFailures.length} notices not published (${report.noticeFailures[0]!.reason}); the users are imported all the same`,
    );
}

export async function importCommandAction(options: ImportCommandOptions, out: CliOutput): Promise<ImportReport> {
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const maxWcu = positiveNumber(options.maxWcu, '--max-wcu');
  const startRate = positiveNumber(options.startRate, '--start-rate') ?? DEFAULT_START_RATE;
  const file = resolve(options.events);
  const read = await streamEventLines(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new UsageError(`import: no events file at ${options.events}`, 'pass --events FILE.jsonl, one event per line');
    throw error;
  });
  for (const line of read.skipped.slice(0, LISTED)) out.error(`${options.events}:${line.line}: skipped: ${line.reason}`);
  if (read.skipped.length > LISTED) out.error(`... and ${read.skipped.length - LISTED} more skipped lines`);
  if (read.events.length === 0) throw new UsageError(`import: ${options.events} has no valid events`);
  const historyId = await fileDigest(file);
  // Off a terminal, a short history needs no progress lines (as simulate).
  const progress = read.events.length >= PROGRESS_MIN_EVENTS || process.stderr.isTTY ? progressReporter('import', 'events', out) : () => undefined;

  if (options.dryRun) {
    const report = await runImport({ ruleset, events: read.events, lines: read.lines, historyId, now: new Date(), onProgress: progress });
    printReport(report, options, 'nowhere', out);
    return report;
  }
  const opened = await openTarget(options, ruleset);
  try {
    out.info(`Importing ${read.events.length} events into ${opened.where}${options.rebuild ? ' (--rebuild)' : ''}...`);
    const report = await runImport({
      ruleset,
      events: read.events,
      lines: read.lines,
      historyId,
      target: opened.target,
      now: opened.now,
      ...(options.rebuild ? { rebuild: true } : {}),
      ...(maxWcu !== undefined ? { maxWcu } : {}),
      ...(opened.journeys ? { journeys: { starter: opened.journeys, perSecond: startRate } } : {}),
      ...(opened.notices ? { notices: opened.notices } : {}),
      onProgress: progress,
    }).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      throw new UsageError(`import: stopped: ${reason}`, 'what was written stays; run the same command again to resume from the checkpoint', {
        cause: error,
      });
    });
    printReport(report, options, opened.where, out);
    return report;
  } finally {
    await opened.close();
  }
}

export function importCommand(out: CliOutput): Command {
  return new Command('import')
    .description("bring in a history: replay it (quietly), then write each user's day items, history and judged profile in batches")
    .requiredOption('--events <file>', 'user events, one JSON object per line')
    .option('--rules <dir>', 'the project directory with rules/ and journeys/', '.')
    .option('--data <dir>', 'the local data directory (a running `strata dev` on it is written through)', '.strata')
    .option('--table <name>', 'import into this DynamoDB table in AWS instead (default credential chain)')
    .option('--region <region>', 'AWS region, with --table')
    .option('--review-shards <n>', 'review index shards of the deployed stack, with --table', String(DEFAULT_REVIEW_SHARDS))
    .option('--rebuild', "also rewrite the day items of users already stored, for the file's dates, with the current ruleset's counters")
    .option('--dry-run', 'print what would be written (counts per item kind and a sample of each), write nothing')
    .option('--max-wcu <units>', 'write capacity units per second to stay under (a provisioned or shared table)')
    .option('--start-journeys', "start each imported user's current tier journey (with --table; paced)")
    .option('--start-rate <n>', 'journey starts per second, with --start-journeys', String(DEFAULT_START_RATE))
    .option('--notices', 'publish a TierChanged notice of kind "imported" per imported user (with --table)')
    .option('--event-bus <name>', `the Strata event bus, with --notices (default $${EVENT_BUS_VARIABLE})`)
    .option('--state-machines <json>', `tier → journey state machine ARN, with --start-journeys (default $${STATE_MACHINES_VARIABLE})`)
    .action(async (options: ImportCommandOptions) => {
      await importCommandAction(options, out);
    });
}
