import { Command } from 'commander';
import { resolve } from 'node:path';
import { localDate } from '../../core/dates.js';
import { windowStart } from '../../core/ingest.js';
import { aggregateMetrics } from '../../core/metrics.js';
import type { Ruleset } from '../../core/ruleset.js';
import type { HistoryEntry, UserProfile } from '../../core/state.js';
import { readJourneyExecution } from '../../local/journey-execution-log.js';
import { readLastSentStep } from '../../local/journey-log.js';
import { formatExplanation } from '../format-explanation.js';
import { type CliOutput, UsageError } from '../output.js';
import { loadValidRuleset } from '../load-ruleset.js';
import { type StoreOptions, openStore, userReadFailure } from '../store-access.js';

export type { StoreOptions } from '../store-access.js';

export interface UserView {
  userId: string;
  tier: string;
  tierSince: string | null;
  graceUntil: string | null;
  reviewAt: string | null;
  lock: UserProfile['lock'] | null;
  metrics: Record<string, number | null>;
  /** The current journey; its status and times come from the local runner's record (not read with --table). */
  journey: { name: string; status: string; startedAt: string | null; stoppedAt: string | null; lastStep: string | null } | null;
  history: Array<{ at: string; fromTier: string; toTier: string; transitions: string[]; version: number }>;
}

interface StoreAccess {
  profile?: UserProfile;
  history: HistoryEntry[];
  metrics: Record<string, number | null>;
  close(): Promise<void>;
}

/**
 * Reads one user from the local data directory, or from AWS when --table is given (default credential chain).
 * Metrics are judged at the running stack's clock, which the demo runs apart from the wall clock.
 */
async function readUser(command: string, ruleset: Ruleset, userId: string, options: StoreOptions, historyLimit: number): Promise<StoreAccess> {
  const opened = await openStore(command, userId, options, ruleset.timezone);
  try {
    const now = opened.now();
    const { profile, buckets } = await opened.store.loadUser(userId, windowStart(ruleset, now));
    const history = await opened.store.listHistory(userId, historyLimit);
    const metrics = aggregateMetrics(ruleset, buckets, localDate(now, ruleset.timezone));
    return { ...(profile ? { profile } : {}), history, metrics, close: opened.close };
  } catch (error) {
    await opened.close();
    throw userReadFailure(command, userId, opened, options, error);
  }
}

export async function userView(userId: string, options: StoreOptions): Promise<UserView> {
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const access = await readUser('user', ruleset, userId, options, 50);
  await access.close();
  const { profile } = access;
  if (!profile)
    throw new UsageError(`no user "${userId}" in ${options.table ? `table ${options.table}` : options.data}`, 'check the id, or --data / --table');
  const journeyRef = profile.journey;
  const localData = options.table ? undefined : resolve(options.data);
  const execution = journeyRef && localData ? await readJourneyExecution(localData, journeyRef.executionName) : undefined;
  const lastStep = journeyRef && localData ? await readLastSentStep(localData, journeyRef.executionName) : null;
  return {
    userId,
    tier: profile.tier,
    tierSince: profile.tierSince ?? null,
    graceUntil: profile.graceUntil ?? null,
    reviewAt: profile.reviewAt ?? null,
    lock: profile.lock ?? null,
    metrics: access.metrics,
    journey: journeyRef
      ? {
          name: journeyRef.executionName,
          // No record yet: the tier change asked for the journey and the starter has not run it (or it is in AWS).
          status: execution?.status ?? 'STARTED',
          startedAt: execution?.startedAt ?? null,
          stoppedAt: execution?.stoppedAt ?? null,
          lastStep,
        }
      : null,
    history: access.history.map((h) => ({
      at: h.at,
      fromTier: h.fromTier,
      toTier: h.toTier,
      transitions: h.explanation.transitions.map((t) => t.kind),
      version: h.version,
    })),
  };
}

function printUser(view: UserView, out: CliOutput): void {
  out.info(`${view.userId}: ${view.tier} since ${view.tierSince}`);
  if (view.graceUntil) out.info(`  in grace until ${view.graceUntil} (re-qualify before then to keep the tier)`);
  if (view.lock) out.info(`  locked to ${view.lock.tier}${view.lock.until ? ` until ${view.lock.until}` : ''}: ${view.lock.reason}`);
  out.info(`  next review: ${view.reviewAt ?? 'none (nothing can change without a new event)'}`);
  out.info(
    `  journey: ${view.journey ? `${view.journey.name} (${view.journey.status}${view.journey.stoppedAt ? ` at ${view.journey.stoppedAt}` : ''}${view.journey.lastStep ? `, last step ${view.journey.lastStep}` : ''})` : 'none'}`,
  );
  out.info('  metrics:');
  for (const [name, value] of Object.entries(view.metrics)) out.info(`    ${name.padEnd(22)} ${value ?? '(none)'}`);
  out.info('  history (newest first):');
  for (const h of view.history)
    out.info(`    ${h.at}  ${h.fromTier === h.toTier ? h.toTier : `${h.fromTier} → ${h.toTier}`}  (${h.transitions.join(', ')})`);
}

const storeOptions = (command: Command): Command =>
  command
    .option('--data <dir>', 'the local data directory', '.strata')
    .option('--rules <dir>', 'the project directory with rules/ and journeys/', '.')
    .option('--table <name>', 'read from this DynamoDB table in AWS instead (default credential chain)')
    .option('--region <region>', 'AWS region, with --table');

export function userCommand(out: CliOutput): Command {
  return storeOptions(new Command('user'))
    .description("print a user's tier, grace, review date, metrics, journey and history")
    .argument('<userId>')
    .option('--json', 'machine-readable output')
    .action(async (userId: string, options: StoreOptions & { json?: boolean }) => {
      const view = await userView(userId, options);
      if (options.json) out.info(JSON.stringify(view, null, 2));
      else printUser(view, out);
    });
}

export function explainCommand(out: CliOutput): Command {
  return storeOptions(new Command('explain'))
    .description("print why a user is in their tier: the last decision's rules, conditions and values")
    .argument('<userId>')
    .action(async (userId: string, options: StoreOptions) => {
      const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
      const access = await readUser('explain', ruleset, userId, options, 1);
      await access.close();
      const latest = access.history[0];
      if (!latest) throw new UsageError(`no decision stored for "${userId}"`, 'the user may not exist yet; check the id, or --data / --table');
      for (const line of formatExplanation(userId, latest)) out.info(line);
    });
}
