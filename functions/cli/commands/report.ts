/**
 * `strata report`: the production counters read back (see core/analytics.ts): users per tier today and over time,
 * the flows between tiers, each journey's funnel and the conversion of treated against held-out users. Reads a few
 * counter items from the local stack's data or a DynamoDB table; never a user.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createDynamoCounters } from '../../aws/dynamo-counters.js';
import { createSqsTallyQueue } from '../../aws/sqs-tally-queue.js';
import { type AnalyticsReader, type ProductionReport, buildProductionReport } from '../../core/analytics.js';
import { addDays, localDate } from '../../core/dates.js';
import type { Ruleset } from '../../core/ruleset.js';
import { NoLocalDataError, openLocalData } from '../../local/local-data.js';
import { readQueuedTallies } from '../../local/local-tally-queue.js';
import { renderReportHtml } from '../../local/report-html.js';
import type { JourneyFunnel, SimulationSummary } from '../../local/simulation-summary.js';
import { describeDifference, describeGroup } from '../../replay/holdout-text.js';
import { loadValidRuleset } from '../load-ruleset.js';
import { type CliOutput, UsageError } from '../output.js';
import { TALLY_QUEUE_VARIABLE } from './operate.js';

export interface ReportOptions {
  data: string;
  rules: string;
  table?: string;
  region?: string;
  tallyQueue?: string;
  days: string;
  json?: boolean;
  out?: string;
}

const MAX_DAYS = 400;

/** Reads the counters of the last `days` days up to the store's today. */
export async function readProductionReport(ruleset: Ruleset, reader: AnalyticsReader, today: string, days: number): Promise<ProductionReport> {
  const firstDate = addDays(today, -(days - 1));
  const journeyDays = await reader.readJourneysDays(
    Object.values(ruleset.journeys).map((journey) => journey.id),
    firstDate,
  );
  return buildProductionReport({
    ruleset,
    tierDays: await reader.readTierDays(),
    journeyDays,
    snapshots: await reader.readCensusSnapshots(firstDate),
    firstDate,
    lastDate: today,
  });
}

interface OpenedReader {
  reader: AnalyticsReader;
  now: () => Date;
  where: string;
  /** How many journey tallies wait for the nightly count; undefined when the queue is not known. */
  talliesWaiting(): Promise<number | undefined>;
  close(): Promise<void>;
}

async function openReader(options: ReportOptions): Promise<OpenedReader> {
  if (options.table) {
    const region = options.region ? { region: options.region } : {};
    const client = new DynamoDBClient(region);
    const queueUrl = options.tallyQueue ?? process.env[TALLY_QUEUE_VARIABLE];
    const sqs = queueUrl ? new SQSClient(region) : undefined;
    return {
      reader: createDynamoCounters({ client, tableName: options.table }),
      now: () => new Date(),
      where: `table ${options.table}`,
      talliesWaiting: async () => (sqs && queueUrl ? createSqsTallyQueue({ client: sqs, queueUrl }).waiting() : undefined),
      close: async () => {
        client.destroy();
        sqs?.destroy();
      },
    };
  }
  try {
    const local = await openLocalData(resolve(options.data));
    return {
      reader: createDynamoCounters({ client: local.client, tableName: local.tableName }),
      now: local.now,
      where: options.data,
      talliesWaiting: async () => (await readQueuedTallies(resolve(options.data))).length,
      close: local.close,
    };
  } catch (error) {
    if (error instanceof NoLocalDataError)
      throw new UsageError(
        `report: no local data in ${options.data} (${error.reason})`,
        'start `strata dev` first, pass --data with its folder, or --table to read from AWS',
        {
          cause: error,
        },
      );
    throw error;
  }
}

/** The report in the shape the simulation's HTML renderer draws. */
export function reportAsSummary(report: ProductionReport): SimulationSummary {
  const rank = new Map(report.tiers.map((tier, i) => [tier.id, i]));
  const moves = (up: boolean): number =>
    report.flows
      .filter((flow) => flow.from !== null && flow.to !== null && rank.get(flow.to)! > rank.get(flow.from)! === up)
      .reduce((sum, flow) => sum + flow.count, 0);
  const journeys: JourneyFunnel[] = report.journeys.map((journey) => ({
    journeyId: journey.journeyId,
    tier: journey.tier,
    entered: journey.entered,
    heldOut: journey.heldOut,
    steps: journey.steps.map(({ stepId, kind, sent, deferred, exited }) => ({ stepId, kind, sent, deferred, exited })),
    observed: journey.observed,
  }));
  return {
    rulesetVersion: report.rulesetVersion,
    tiers: report.tiers,
    firstDate: report.firstDate,
    lastDate: report.lastDate,
    users: Object.values(report.census).reduce((sum, users) => sum + users, 0),
    events: { applied: 0, duplicates: 0, skippedLines: 0, rejected: 0, rejections: [] },
    transitions: { promotions: moves(true), demotions: moves(false), graceStarted: 0, graceCleared: 0 },
    days: report.overTime,
    finalTiers: report.census,
    flows: report.flows.flatMap((flow) => (flow.to === null ? [] : [{ from: flow.from, to: flow.to, count: flow.count }])),
    journeys,
  };
}

export function renderProductionHtml(report: ProductionReport): string {
  const summary = reportAsSummary(report);
  return renderReportHtml(summary, {
    title: 'Strata production report',
    subtitle: `users per tier from the census counters; flows of the ${report.firstDate} – ${report.lastDate} period; funnels and conversions of the journeys entered in it`,
    headline: [
      { label: 'Users', value: summary.users, key: 'users', note: 'users in the ladder now' },
      { label: 'Promotions', value: summary.transitions.promotions, key: 'promotions', note: 'moves up the ladder in the period' },
      { label: 'Demotions', value: summary.transitions.demotions, key: 'demotions', note: 'moves down in the period' },
    ],
    conversionLede:
      'Share of journey entries that converted within the same window after entry, treated and held out alike: until the user left the tier, the journey’s planned length ended, or now. The held-out users received nothing, so the difference is what the journey adds, within its interval.',
  });
}

function printReport(report: ProductionReport, out: CliOutput, where: string): void {
  out.info(`Tier distribution from ${where} (ruleset ${report.rulesetVersion}):`);
  const ids = report.tiers.map((tier) => tier.id);
  out.info(`  ${'date'.padEnd(11)} ${ids.map((id) => id.padStart(9)).join(' ')}`);
  for (const day of report.overTime.slice(-14))
    out.info(`  ${day.date.padEnd(11)} ${ids.map((id) => String(day.tiers[id] ?? 0).padStart(9)).join(' ')}`);
  out.info(`  ${'now'.padEnd(11)} ${ids.map((id) => String(report.census[id] ?? 0).padStart(9)).join(' ')}`);
  out.info(`Flows ${report.firstDate} to ${report.lastDate}:`);
  if (report.flows.length === 0) out.info('  none');
  for (const flow of report.flows) out.info(`  ${(flow.from ?? '(new)').padEnd(12)} → ${(flow.to ?? '(erased)').padEnd(12)} ${flow.count}`);
  if (report.talliesWaiting !== undefined && report.talliesWaiting > 0)
    out.info(`${report.talliesWaiting} ended journey executions wait for the nightly count: their steps are not in the funnels below yet`);
  else if (report.talliesWaiting === undefined && report.journeys.length > 0)
    out.info(`funnels hold the journey executions counted by the last nightly review (pass --tally-queue to see how many wait)`);
  for (const journey of report.journeys) {
    const steps = journey.steps.map((step) => `${step.stepId} ${step.sent}${step.deferred > 0 ? ` (+${step.deferred} deferred)` : ''}`).join(' → ');
    out.info(
      `journey ${journey.journeyId}: entered ${journey.entered} (treated ${journey.treated}, held out ${journey.heldOut}); sent ${steps || 'nothing'}`,
    );
    const exits = Object.entries(journey.exits).map(([reason, count]) => `${reason} ${count}`);
    if (exits.length > 0) out.info(`  exits: ${exits.join(', ')}`);
    const horizon = journey.observed.horizonDays === null ? 'for the tier stay' : `within ${journey.observed.horizonDays} days of entry`;
    out.info(
      `  converted ${horizon} or until leaving the tier: treated ${describeGroup(journey.observed.treated)}, held out ${describeGroup(journey.observed.heldOut)}; ${describeDifference(journey.observed)}`,
    );
  }
}

export function reportCommand(out: CliOutput): Command {
  return new Command('report')
    .description('report production counters: users per tier today and over time, flows, journey funnels, treated vs held-out conversion')
    .option('--data <dir>', 'the local data directory', '.strata')
    .option('--rules <dir>', 'the project directory with rules/ and journeys/', '.')
    .option('--table <name>', 'read from this DynamoDB table in AWS instead (default credential chain)')
    .option('--region <region>', 'AWS region, with --table')
    .option(
      '--tally-queue <url>',
      `with --table: the stack's tally queue (output TallyQueueUrl; default $${TALLY_QUEUE_VARIABLE}), to say how many journey tallies wait for the nightly count`,
    )
    .option('--days <n>', 'the period: this many days up to today', '30')
    .option('--json', 'machine-readable output')
    .option('--out <dir>', 'also write report.json and report.html here')
    .action(async (options: ReportOptions) => {
      const days = Number(options.days);
      if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS)
        throw new UsageError(`report: --days must be a whole number from 1 to ${MAX_DAYS}, got "${options.days}"`, 'for example --days 30');
      const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
      const opened = await openReader(options);
      let report: ProductionReport;
      try {
        report = await readProductionReport(ruleset, opened.reader, localDate(opened.now(), ruleset.timezone), days);
        const waiting = await opened.talliesWaiting();
        if (waiting !== undefined) report.talliesWaiting = waiting;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new UsageError(
          `report: could not read the counters from ${opened.where}: ${reason}`,
          'check --data / --table, the region and your credentials',
          {
            cause: error,
          },
        );
      } finally {
        await opened.close();
      }
      if (options.out) {
        await mkdir(options.out, { recursive: true });
        await writeFile(join(options.out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
        await writeFile(join(options.out, 'report.html'), renderProductionHtml(report));
      }
      if (options.json) out.info(JSON.stringify(report, null, 2));
      else {
        printReport(report, out, opened.where);
        if (options.out) out.info(`wrote ${join(options.out, 'report.json')} and ${join(options.out, 'report.html')}`);
      }
    });
}
