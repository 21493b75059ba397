/**
 * `strata dev` as a producer meets it: the real command in a child process, fed by the real
 * `@aws-sdk/client-eventbridge` client with the example population (by default 100,000 events of 10,000 users),
 * as fast as the endpoint accepts them. Measures the child's memory (after start, once every event is applied,
 * and after a pause), how fast events are accepted and applied, and the data folder against the live data in it.
 *
 * The virtual day lasts a real day, so that neither journeys' waits nor the nightly review fire during the run:
 * the figures are ingest's.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { UserEvent } from '../functions/core/event.js';
import { startDynalite } from '../functions/local/dynalite.js';
import { generateEvents } from '../functions/local/example-population.js';
import { INGEST_PROGRESS_PATTERN } from '../functions/local/ingest-progress.js';
import { DYNALITE_FOLDER } from '../functions/local/local-data.js';

export interface DevBenchOptions {
  projectRoot: string;
  events: number;
  users: number;
  /** How long the stack is left alone after the last event is applied, before its memory is measured again. */
  idleSeconds: number;
  /** PutEvents calls in flight at once. */
  producers?: number;
  /** Extra options for the child's node, for example `--cpu-prof`. */
  nodeArgs?: string[];
  log?: (line: string) => void;
}

export interface DevFigures {
  events: number;
  users: number;
  rssAfterStartMb: number;
  /** Right when the last event is applied (with the default 100,000 events, the key the target names). */
  rssAfter100kEventsMb: number;
  rssPeakMb: number;
  rssAfterIdleMb: number;
  idleSeconds: number;
  acceptedEventsPerSec: number;
  appliedEventsPerSec: number;
  /** The child's CPU time (user + system) from the first PutEvents to the last event applied, per event: unlike the
   * rates, it hardly depends on what else the machine is doing. */
  cpuMsPerEvent: number;
  /** PutEvents entries the endpoint refused (throttled) and the producer sent again. */
  resentEntries: number;
  dataFolderBytes: number;
  dynaliteFolderBytes: number;
  /** The stored items as dynalite writes them (DynamoDB JSON), keys included: what compaction converges to. */
  liveDataBytes: number;
  liveItems: number;
  dataFolderBytesPer1kEvents: number;
  dataFolderOverLiveData: number;
}

/** Thrown when the child does not start, or stops applying events. */
export class DevBenchError extends Error {
  override readonly name = 'DevBenchError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`Bench dev: ${message}`, options);
  }
}

const MB = 1024 * 1024;
const PROGRESS_SECONDS = 0.5;
const ENTRIES_PER_CALL = 10;
const RESEND_DELAY_MS = 100;
const r1 = (value: number): number => Math.round(value * 10) / 10;

/** The population's first `events` events in time order, dated over the two weeks before `now`. */
export function benchEvents(events: number, users: number, now: Date): UserEvent[] {
  const start = new Date(now.getTime() - 15 * 86_400_000).toISOString().slice(0, 10);
  // 14 days of the example population average a little over 10 events per user.
  const population = generateEvents({ users, days: 14, seed: 29, start });
  if (population.length < events)
    throw new DevBenchError(
      `${users} users make only ${population.length} events; ask for at least ${Math.ceil((users * events) / Math.max(1, population.length)) + 1} users`,
    );
  return population.slice(0, events);
}

async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new DevBenchError(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** User plus system CPU time of a process so far. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces; utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;
  return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000;
}

async function folderBytes(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function liveData(dynalitePath: string): Promise<{ bytes: number; items: number }> {
  const dynalite = await startDynalite({ path: dynalitePath });
  let bytes = 0;
  let items = 0;
  try {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await dynalite.client.send(
        new ScanCommand({ TableName: dynalite.tableName, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
      );
      for (const item of page.Items ?? []) {
        bytes += Buffer.byteLength(JSON.stringify(item)) + Buffer.byteLength(`${item['pk']?.S ?? ''}${item['sk']?.S ?? ''}`);
        items += 1;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  } finally {
    await dynalite.close();
  }
  return { bytes, items };
}

function entryOf(event: UserEvent): PutEventsRequestEntry {
  return {
    EventBusName: 'strata',
    Source: 'bench.producer',
    DetailType: event.type,
    Detail: JSON.stringify(event),
    Time: new Date(event.occurredAt),
  };
}

/** Posts every event, ten per call, resending entries the endpoint refused until each is accepted. */
async function postAll(client: EventBridgeClient, events: UserEvent[], producers: number): Promise<{ resent: number }> {
  let next = 0;
  let resent = 0;
  const producer = async (): Promise<void> => {
    for (let from = next; from < events.length; from = next) {
      next += ENTRIES_PER_CALL;
      let entries = events.slice(from, from + ENTRIES_PER_CALL).map(entryOf);
      while (entries.length > 0) {
        const response = await client.send(new PutEventsCommand({ Entries: entries }));
        const failed = entries.filter((_, i) => response.Entries?.[i]?.ErrorCode !== undefined);
        if (failed.length === 0) break;
        const codes = new Set(response.Entries?.flatMap((e) => (e.ErrorCode ? [e.ErrorCode] : [])));
        if (![...codes].every((code) => code.includes('Throttl'))) throw new DevBenchError(`PutEvents refused entries: ${[...codes].join(', ')}`);
        resent += failed.length;
        entries = failed;
        await new Promise((resolveDelay) => setTimeout(resolveDelay, RESEND_DELAY_MS));
      }
    }
  };
  await Promise.all(Array.from({ length: producers }, producer));
  return { resent };
}

export async function measureDev(options: DevBenchOptions): Promise<DevFigures> {
  const log = options.log ?? (() => undefined);
  const events = benchEvents(options.events, options.users, new Date());
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-dev-'));
  const bin = resolve(options.projectRoot, 'bin', 'strata.js');
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      bin,
      'dev',
      '--no-demo',
      '--port',
      '0',
      '--data',
      dataDir,
      '--rules',
      resolve(options.projectRoot),
      '--day-seconds',
      '86400',
      '--progress-seconds',
      String(PROGRESS_SECONDS),
    ],
    { cwd: resolve(options.projectRoot), env: { ...process.env, STRATA_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | string>((resolveExit) => child.once('exit', (code, signal) => resolveExit(code ?? signal ?? -1)));
  let url: string | undefined;
  let onRunning: (() => void) | undefined;
  const running = new Promise<void>((resolveRunning) => (onRunning = resolveRunning));
  let applied = 0;
  let appliedAt = 0;
  let onAllApplied: (() => void) | undefined;
  const allApplied = new Promise<void>((resolveAll) => (onAllApplied = resolveAll));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const started = /^Strata is running: PutEvents at (http:\/\/\S+) /.exec(line);
    if (started) {
      url = started[1];
      onRunning?.();
    }
    const progress = INGEST_PROGRESS_PATTERN.exec(line);
    if (progress) {
      applied = Number(progress[1]!.replaceAll(',', ''));
      appliedAt = performance.now();
      if (applied >= events.length) onAllApplied?.();
    }
  });
  const failIfExited = exited.then((code): never => {
    throw new DevBenchError(`strata dev exited (${code}) during the run; stderr:\n${stderr}`);
  });
  failIfExited.catch(() => undefined); // observed through within(); an expected exit at the end is not a failure
  const within = async <T>(what: string, promise: Promise<T>, seconds: number, { exitFails = true } = {}): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(
          () => reject(new DevBenchError(`${what} took over ${seconds} s (${applied} of ${events.length} events applied)`)),
          seconds * 1000,
        )),
    );
    try {
      return await Promise.race(exitFails ? [promise, failIfExited, timeout] : [promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  let rssPeak = 0;
  const sampler = setInterval(() => {
    void residentBytes(child.pid!).then(
      (bytes) => (rssPeak = Math.max(rssPeak, bytes)),
      () => undefined,
    );
  }, 500);
  let producerClient: EventBridgeClient | undefined;
  try {
    await within('starting strata dev', running, 120);
    producerClient = new EventBridgeClient({ endpoint: url!, region: 'local', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
    // Let start-up work (table creation, compilation) finish before taking the baseline.
    await new Promise((resolveWait) => setTimeout(resolveWait, 2_000));
    const rssAfterStart = await residentBytes(child.pid!);
    log(`dev: started, RSS ${r1(rssAfterStart / MB)} MB; posting ${events.length} events of ${options.users} users`);

    const cpuAtStart = await cpuMs(child.pid!);
    const postStarted = performance.now();
    const { resent } = await within('posting', postAll(producerClient, events, options.producers ?? 4), Math.max(120, events.length / 20));
    const acceptedSeconds = (performance.now() - postStarted) / 1000;
    log(`dev: ${events.length} accepted in ${r1(acceptedSeconds)} s (${applied} applied so far)`);
    await within('applying', allApplied, Math.max(120, events.length / 20));
    const rssAfterEvents = await residentBytes(child.pid!);
    const cpuForEvents = (await cpuMs(child.pid!)) - cpuAtStart;
    const appliedSeconds = (appliedAt - postStarted) / 1000;
    log(`dev: all applied after ${r1(appliedSeconds)} s, RSS ${r1(rssAfterEvents / MB)} MB; idle for ${options.idleSeconds} s`);

    await within('idling', new Promise((resolveIdle) => setTimeout(resolveIdle, options.idleSeconds * 1000)), options.idleSeconds + 10);
    const rssAfterIdle = await residentBytes(child.pid!);
    const dynalitePath = join(dataDir, DYNALITE_FOLDER);
    const [dataFolderBytes, dynaliteFolderBytes] = [await folderBytes(dataDir), await folderBytes(dynalitePath)];

    child.kill('SIGINT');
    await within('stopping', exited, 60, { exitFails: false }).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
    const live = await liveData(dynalitePath);
    log(
      `dev: data folder ${r1(dataFolderBytes / MB)} MB (dynalite ${r1(dynaliteFolderBytes / MB)} MB), live data ${r1(live.bytes / MB)} MB in ${live.items} items`,
    );
    return {
      events: events.length,
      users: options.users,
      rssAfterStartMb: r1(rssAfterStart / MB),
      rssAfter100kEventsMb: r1(rssAfterEvents / MB),
      rssPeakMb: r1(Math.max(rssPeak, rssAfterEvents) / MB),
      rssAfterIdleMb: r1(rssAfterIdle / MB),
      idleSeconds: options.idleSeconds,
      acceptedEventsPerSec: r1(events.length / acceptedSeconds),
      appliedEventsPerSec: r1(events.length / appliedSeconds),
      cpuMsPerEvent: Math.round((cpuForEvents / events.length) * 100) / 100,
      resentEntries: resent,
      dataFolderBytes,
      dynaliteFolderBytes,
      liveDataBytes: live.bytes,
      liveItems: live.items,
      dataFolderBytesPer1kEvents: Math.round(dataFolderBytes / (events.length / 1000)),
      dataFolderOverLiveData: Math.round((dataFolderBytes / live.bytes) * 100) / 100,
    };
  } finally {
    clearInterval(sampler);
    producerClient?.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `tsx bench/dev.ts [--quick] [--events N --users N --idle S]`: this section alone, printed as JSON (npm run bench runs it with the others). */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const quick = process.argv.includes('--quick');
  const flag = (name: string): number | undefined => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? Number(process.argv[at + 1]) : undefined;
  };
  const size = quick ? { events: 3_000, users: 300, idleSeconds: 10 } : { events: 100_000, users: 10_000, idleSeconds: 60 };
  const nodeArgs = process.env['STRATA_BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
  measureDev({
    projectRoot: '.',
    nodeArgs,
    events: flag('events') ?? size.events,
    users: flag('users') ?? size.users,
    idleSeconds: flag('idle') ?? size.idleSeconds,
    log: (line) => process.stderr.write(`bench: ${line}\n`),
  })
    .then((figures) => process.stdout.write(JSON.stringify(figures, null, 2) + '\n'))
    .catch((error: unknown) => {
      process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    });
}
