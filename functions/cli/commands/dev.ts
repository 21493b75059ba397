/**
 * `strata dev` (and `npm start`): the whole system on one machine. A PutEvents endpoint for producers using the
 * real AWS SDK, the ingest handler behind an in-process queue, journeys on the local runner, the nightly review
 * on a virtual day, and a readable live log. With the demo (the default), 60 days of an example population are
 * posted through the SDK at 0.8 s per virtual day, so promotions, graces, demotions and every kind of
 * journey step show up within a minute; the clock then runs at one day every --day-seconds.
 */
import { Command } from 'commander';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { addDays, localDate } from '../../core/dates.js';
import type { UserEvent } from '../../core/event.js';
import { formatLocalMinute, instantAtLocalTime } from '../../core/local-time.js';
import type { Ruleset } from '../../core/ruleset.js';
import { openActionLog } from '../../local/action-log.js';
import { createCatchUpClock } from '../../local/catch-up-clock.js';
import { keepClockCheckpoint, readClockCheckpoint } from '../../local/clock-checkpoint.js';
import type { Clock } from '../../local/clock.js';
import { generateEvents } from '../../local/example-population.js';
import { reportIngestProgress } from '../../local/ingest-progress.js';
import { releaseIdleMemory, releaseMemoryWhenIdle } from '../../local/release-memory.js';
import { appendJourneyLog } from '../../local/journey-log.js';
import { CHANNEL_DLQ_FILE, describeDelivery, startChannelDelivery } from '../deliveries.js';
import { DLQ_FILE, compactDeadLetters, deadLetterLine } from '../../local/dead-letter-file.js';
import { INGEST_LOG_FILE } from '../../local/ingest-log.js';
import { DYNALITE_FOLDER, removeStackInfo, stackClock, writeStackInfo } from '../../local/local-data.js';
import { type LocalStack, type StackActivity, startLocalStack } from '../../local/local-stack.js';
import { PortInUseError, startPutEventsEndpoint } from '../../local/put-events-endpoint.js';
import { startOperatorEndpoint } from '../../local/operator-endpoint.js';
import { type CliOutput, UsageError } from '../output.js';
import { loadValidRuleset } from '../load-ruleset.js';

export const DEMO_DAYS = 60;
export const DEMO_USERS = 60;
const DEMO_MS_PER_DAY = 800;
const REVIEW_MINUTE_OF_DAY = 2 * 60;
/** About 10-20 MB of waiting events, and under a minute of work at the embedded stack's applied rate. */
export const DEFAULT_MAX_BACKLOG = 10_000;
/** How long ingest must be quiet before the stack gives the memory a burst grew back to the system. */
const IDLE_MEMORY_RELEASE_MS = 5_000;
/**
 * Busy, the main thread's live heap stays under 100 MB with 10,000 users (their journeys parked), but V8 let it
 * grow to 240 MB between collections; past this it is collected at once (checked every BUSY_HEAP_CHECK_MS). At
 * 160 MB, checked every 5 s, RSS at the end of 100,000 events was 410 MB.
 */
const BUSY_HEAP_BOUND_BYTES = 128 * 1024 * 1024;
const BUSY_HEAP_CHECK_MS = 1_000;

export interface DevOptions {
  port: string;
  daySeconds: string;
  data: string;
  rules: string;
  reset?: boolean;
  demo: boolean;
  progressSeconds: string;
  maxBacklog: string;
  maxFutureHours: string;
}

export interface RunningDev {
  stack: LocalStack;
  eventsUrl: string;
  clock: Clock;
  /** Resolves with how many accepted events are not applied yet (they are applied on the next start). */
  stop(): Promise<{ remaining: number }>;
}

/** A live-log line for what the stack did, or undefined for what the log leaves out; times local to `timeZone`. */
export function describeActivity(activity: StackActivity, timeZone: string): string | undefined {
  switch (activity.kind) {
    case 'notice': {
      const n = activity.notice;
      if (n.kind === 'grace-started') return `${n.userId}  grace started in ${n.toTier}, until ${n.graceUntil}`;
      if (n.kind === 'grace-cleared') return `${n.userId}  grace cleared, stays ${n.toTier}`;
      if (n.kind === 'entered') return `${n.userId}  entered as ${n.toTier}`;
      return `${n.userId}  ${n.kind} ${n.fromTier} → ${n.toTier}`;
    }
    case 'action': {
      const a = activity.action;
      const what = a.kind === 'content' ? a.templateId : a.kind === 'invite' ? a.groupId : a.offerId;
      return `${a.userId}  ${a.kind.padEnd(7)} ${what} via ${a.channel}  (${a.journeyId}/${a.stepId})`;
    }
    case 'dead-letter':
      return `dead letter ${activity.letter.eventRef}: ${activity.letter.reason}`;
    case 'journey-step':
      return activity.result.outcome === 'deferred'
        ? `${activity.task.userId}  deferred ${activity.task.stepId} until ${formatLocalMinute(activity.result.until, timeZone)} (${activity.result.reason})`
        : activity.result.outcome === 'exit' && activity.result.reason !== 'held-out'
          ? `${activity.task.userId}  left ${activity.task.journeyId} (${activity.result.reason})`
          : undefined;
    case 'forgotten':
      return `${activity.notice.userRef}  forgotten (every stored item deleted)`;
    case 'roll-up-stopped':
      return `${activity.userId}  roll-up of sealed heavy days stopped (${activity.reason}); the next window read resumes it`;
    case 'journey-started':
    case 'journey-stopped':
      return undefined;
  }
}

/** When the reported thing happened, as the stack's clock read it then. */
export function activityTime(activity: StackActivity): Date | undefined {
  switch (activity.kind) {
    case 'notice':
    case 'forgotten':
      return new Date(activity.notice.at);
    case 'action':
      return new Date(activity.action.at);
    case 'journey-step':
    case 'journey-started':
    case 'journey-stopped':
      return new Date(activity.at);
    case 'dead-letter':
    case 'roll-up-stopped':
      return undefined;
  }
}

export async function startDev(options: DevOptions, out: CliOutput): Promise<RunningDev> {
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`dev: --port must be a port number, not "${options.port}"`);
  const daySeconds = Number(options.daySeconds);
  if (!(daySeconds > 0)) throw new UsageError(`dev: --day-seconds must be a positive number, not "${options.daySeconds}"`);
  const progressSeconds = Number(options.progressSeconds);
  if (!(progressSeconds >= 0))
    throw new UsageError(`dev: --progress-seconds must be a number of seconds (0 for none), not "${options.progressSeconds}"`);
  const maxBacklog = Number(options.maxBacklog);
  if (!Number.isInteger(maxBacklog) || maxBacklog < 1)
    throw new UsageError(`dev: --max-backlog must be a positive whole number, not "${options.maxBacklog}"`);
  const maxFutureHours = Number(options.maxFutureHours);
  if (!(maxFutureHours > 0) || !Number.isFinite(maxFutureHours))
    throw new UsageError(`dev: --max-future-hours must be a positive number, not "${options.maxFutureHours}"`);
  const dataDir = resolve(options.data);
  const ruleset: Ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  if (options.reset) await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  await compactDeadLetters(dataDir);

  const startedAt = Date.now();
  // Journey time carries on from where the last run left it, never behind the wall clock.
  const reached = options.demo ? undefined : await readClockCheckpoint(dataDir);
  // Both modes use the catch-up clock, so that stack.json can publish it for `strata user`. Without the demo there
  // is nothing to catch up: both speeds are one day per --day-seconds, from the wall time or where the last run left it.
  const msPerDay = daySeconds * 1000;
  const clockOptions = options.demo
    ? { from: new Date(startedAt - DEMO_DAYS * 86_400_000), catchUpMsPerDay: DEMO_MS_PER_DAY, msPerDay, wallStart: startedAt }
    : { from: reached && reached.getTime() > startedAt ? reached : new Date(startedAt), catchUpMsPerDay: msPerDay, msPerDay, wallStart: startedAt };
  const clock = createCatchUpClock(clockOptions);
  const stamp = (at: Date = clock.now()): string => formatLocalMinute(at, ruleset.timezone);
  const write = async (file: string, value: unknown): Promise<void> => appendFile(join(dataDir, file), JSON.stringify(value) + '\n');
  const delivery = startChannelDelivery(ruleset, 'dev', async (record) => {
    out.info(`${stamp()}  ${describeDelivery(record)}`);
    if (record.status === 'dead-letter') await write(CHANNEL_DLQ_FILE, { at: new Date().toISOString(), ...record });
  });

  // Notices are delivered at least once (a concurrent event may flush an outbox again); print each once, as a
  // consumer deduplicating by noticeId would.
  const noticesSeen = new Set<string>();
  const actions = await openActionLog(dataDir);
  const stack = await startLocalStack({
    ruleset,
    clock,
    dynalitePath: join(dataDir, DYNALITE_FOLDER),
    journeyDataDir: dataDir,
    ingestLogDir: dataDir,
    tallyQueueDir: dataDir,
    // The demo's clock starts DEMO_DAYS back and catches up with the wall clock; a producer's event stamped with the
    // wall time during the catch-up is not from the future.
    maxEventFutureMs: maxFutureHours * 3_600_000 + (options.demo ? DEMO_DAYS * 86_400_000 : 0),
    // dynalite on a core of its own roughly halves the main thread's work per event.
    dynaliteThread: 'worker',
    onActivity: async (activity) => {
      if (activity.kind === 'notice') {
        if (noticesSeen.has(activity.notice.noticeId)) return;
        noticesSeen.add(activity.notice.noticeId);
      }
      if (activity.kind === 'action' && !(await actions.deliver(activity.action))) return;
      const line = describeActivity(activity, ruleset.timezone);
      // Stamped with the decision's own time: while the demo catches up, an hour of stack time passes in a few
      // wall milliseconds, so the time of printing can be hours after the send or tier change it reports.
      if (line) out.info(`${stamp(activityTime(activity))}  ${line}`);
      // Not awaited: a slow or rate-limited provider must not hold up the journey that sent the action. Only the
      // first of repeated publishes gets here (the action log drops the rest), so a channel sees each action once.
      if (activity.kind === 'action') void delivery.deliver(activity.action);
      if (activity.kind === 'dead-letter') await write(DLQ_FILE, deadLetterLine(activity.letter, new Date()));
      if (activity.kind === 'journey-step') {
        await appendJourneyLog(dataDir, [
          {
            at: activity.at,
            executionName: activity.task.executionName,
            tier: activity.task.tier,
            stepId: activity.task.stepId,
            outcome: activity.result.outcome,
          },
        ]);
      }
    },
  });
  let endpoint;
  try {
    endpoint = await startPutEventsEndpoint({
      port,
      busName: 'strata',
      onEvents: (envelopes) => stack.bus.put(envelopes),
      // Over the bound, producers get ThrottlingException per entry and resend, instead of the backlog growing.
      capacity: () => maxBacklog - stack.queue.stats().inFlight,
      now: () => clock.now(),
    });
  } catch (error) {
    await stack.close();
    await actions.close();
    if (error instanceof PortInUseError) throw new UsageError(`dev: port ${port} is already in use`, 'stop whatever uses it, or pass --port');
    throw error;
  }
  const operatorEndpoint = await startOperatorEndpoint(stack.operator);
  await writeStackInfo(dataDir, {
    dynamoEndpoint: stack.dynalite.endpoint,
    tableName: stack.dynalite.tableName,
    eventsEndpoint: endpoint.url,
    operatorEndpoint: operatorEndpoint.url,
    pid: process.pid,
    clock: stackClock(clockOptions),
  });
  const clockCheckpoint = keepClockCheckpoint(dataDir, clock);

  // A restart with changed rules judges everyone under them now, not at each user's next review date.
  const rejudged = await stack.runRejudge();
  if (rejudged.needed && rejudged.usersJudged > 0)
    out.info(`${stamp()}  ruleset ${ruleset.version} is new: ${rejudged.usersJudged} users re-judged, ${rejudged.usersChanged} changed`);

  const stopping = new AbortController();
  const reviewLoop = (async () => {
    while (!stopping.signal.aborted) {
      const today = localDate(clock.now(), ruleset.timezone);
      let next = instantAtLocalTime(today, REVIEW_MINUTE_OF_DAY, ruleset.timezone);
      if (next <= clock.now()) next = instantAtLocalTime(addDays(today, 1), REVIEW_MINUTE_OF_DAY, ruleset.timezone);
      try {
        await clock.sleepUntil(next, stopping.signal);
      } catch {
        return;
      }
      const result = await stack.runNightlyReview();
      if (result.usersDue > 0) out.info(`${stamp()}  nightly review: ${result.usersDue} users due, ${result.usersChanged} changed`);
      if (result.talliesCounted > 0) out.info(`${stamp()}  nightly count: ${result.talliesCounted} ended journeys added to the funnels`);
    }
  })();

  const demoLoop = options.demo ? postDemo(endpoint.url, clock, ruleset, stopping.signal, out, stamp) : Promise.resolve();
  const progress =
    progressSeconds > 0
      ? reportIngestProgress({
          applied: () => stack.counters.eventsRecorded + stack.counters.duplicates,
          intervalMs: progressSeconds * 1000,
          print: (line) => out.info(`${stamp()}  ${line}`),
        })
      : undefined;

  // After a burst, hand the heap it grew back to the system: an idle stack should not sit on its peak.
  const idleMemory = releaseMemoryWhenIdle({
    activity: () => {
      const { sent, handled } = stack.queue.stats();
      return sent + handled;
    },
    quietMs: IDLE_MEMORY_RELEASE_MS,
    busyHeapBytes: BUSY_HEAP_BOUND_BYTES,
    busyCheckMs: BUSY_HEAP_CHECK_MS,
    release: async (stillQuiet) => {
      // dynalite's thread first: its database closes and opens again, so the native memory it frees is trimmed too.
      try {
        await stack.dynalite.releaseMemory();
      } finally {
        await releaseIdleMemory(stillQuiet);
      }
    },
  });

  out.info(`Strata is running: PutEvents at ${endpoint.url} (bus "strata"), data in ${options.data}, one day every ${daySeconds} s.`);
  out.info(
    `Ruleset ${ruleset.version}: ${ruleset.tiers.map((t) => t.id).join(' < ')}. Try \`npx strata user <id>\` in another terminal; Ctrl-C stops.`,
  );
  out.info(`Log times are the stack's clock, in the ruleset's time zone ${ruleset.timezone}.`);
  if (options.demo) out.info(`Demo: ${DEMO_USERS} example users, the last ${DEMO_DAYS} days at ${DEMO_MS_PER_DAY / 1000} s per day.`);
  if (stack.resumedJourneys > 0)
    out.info(
      `Resumed ${stack.resumedJourneys} journey${stack.resumedJourneys === 1 ? '' : 's'} where ${stack.resumedJourneys === 1 ? 'it' : 'they'} stopped.`,
    );
  const { replayed } = stack.queue.stats();
  if (replayed > 0) {
    out.info(`Resuming: ${replayed} accepted events from the last run were not applied yet; applying them now.`);
    void stack.queue.drain().then(() => out.info(`${stamp()}  backlog applied: every accepted event so far is applied`));
  }

  return {
    stack,
    eventsUrl: endpoint.url,
    clock,
    async stop() {
      stopping.abort();
      progress?.stop();
      idleMemory.stop();
      await Promise.allSettled([reviewLoop, demoLoop]);
      await endpoint.close();
      await operatorEndpoint.close();
      const undelivered = await delivery.close();
      if (undelivered > 0) out.info(`Stopped delivering: ${undelivered} actions were still waiting for their channel (they are in actions.jsonl).`);
      const { remaining } = await stack.close();
      await actions.close();
      await clockCheckpoint.stop();
      await removeStackInfo(dataDir);
      return { remaining };
    },
  };
}

/** Posts the demo population through the real SDK client as the clock reaches each event's time. */
async function postDemo(url: string, clock: Clock, ruleset: Ruleset, signal: AbortSignal, out: CliOutput, stamp: () => string): Promise<void> {
  const start = localDate(clock.now(), ruleset.timezone);
  const events: UserEvent[] = generateEvents({ users: DEMO_USERS, days: DEMO_DAYS, seed: 11, start });
  const client = new EventBridgeClient({ endpoint: url, region: 'local', credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' } });
  try {
    let next = 0;
    while (next < events.length && !signal.aborted) {
      try {
        await clock.sleepUntil(new Date(events[next]!.occurredAt), signal);
      } catch {
        return;
      }
      const due: UserEvent[] = [];
      while (next < events.length && Date.parse(events[next]!.occurredAt) <= clock.now().getTime()) due.push(events[next++]!);
      for (let i = 0; i < due.length; i += 10) {
        const entries: PutEventsRequestEntry[] = due.slice(i, i + 10).map((event) => ({
          EventBusName: 'strata',
          Source: 'demo.app',
          DetailType: event.type,
          Detail: JSON.stringify(event),
          Time: new Date(event.occurredAt),
        }));
        const response = await client.send(new PutEventsCommand({ Entries: entries }));
        if (response.FailedEntryCount) out.error(`demo: ${response.FailedEntryCount} entries rejected`);
      }
    }
    if (!signal.aborted) out.info(`${stamp()}  demo: all ${events.length} events posted; the stack now runs live`);
  } finally {
    client.destroy();
  }
}

export function devCommand(out: CliOutput): Command {
  return new Command('dev')
    .description('run the whole system locally: PutEvents endpoint, ingest, journeys and the nightly review')
    .option('--port <port>', 'the PutEvents endpoint port', '4010')
    .option('--day-seconds <n>', 'wall seconds per virtual day', '10')
    .option('--data <dir>', 'where the local data lives', '.strata')
    .option('--rules <dir>', 'the project directory with rules/ and journeys/', '.')
    .option('--reset', 'wipe the data directory first')
    .option('--no-demo', 'do not post the example population')
    .option('--progress-seconds <n>', 'how often to print how many events were applied (0: never)', '5')
    .option('--max-backlog <n>', 'accepted events waiting to be applied before PutEvents answers ThrottlingException', String(DEFAULT_MAX_BACKLOG))
    .option('--max-future-hours <n>', "how far ahead of the clock an event's occurredAt may be", '24')
    .action(async (options: DevOptions) => {
      const running = await startDev(options, out);
      await new Promise<void>((resolveStop) => {
        let stopping = false;
        const shutdown = (): void => {
          // Under `npm start` one Ctrl-C arrives more than once: from the terminal and again relayed by npm.
          // A listener that is gone after the first would let the second kill the process mid-shutdown,
          // leaving stack.json behind; so the listeners stay, and repeats are ignored.
          if (stopping) return;
          stopping = true;
          out.info('\nStopping: flushing state...');
          void running.stop().then(({ remaining }) => {
            out.info(
              remaining === 0
                ? 'Stopped: every accepted event is applied.'
                : `Stopped: ${remaining} accepted events are not applied yet; they are kept in ${join(options.data, INGEST_LOG_FILE)} and applied on the next start.`,
            );
            resolveStop();
          });
        };
        process.on('SIGINT', shutdown);
        process.on('SIGTERM', shutdown);
      });
    });
}
