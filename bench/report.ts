/**
 * The benchmark's table, rendered from results.json, for the terminal and for README.md's section between the
 * `<!-- bench:start -->` and `<!-- bench:end -->` markers.
 */
import type { BenchResults } from './run.js';

export const README_START = '<!-- bench:start -->';
export const README_END = '<!-- bench:end -->';

export interface TargetCheck {
  metric: string;
  target: string;
  measured: string;
  met: boolean;
}

const fixed = (value: number, digits = 2): string => value.toFixed(digits);

export function targetChecks(r: BenchResults): TargetCheck[] {
  const threeSend = Object.entries(r.journeys).find(([, j]) => j.sends === 3);
  const reads = Math.max(r.capacity.noChange.rruP95, r.capacity.tierChange.rruP95);
  const evalRatio = r.evaluation.coreUs / r.evaluation.jreUs;
  return [
    {
      metric: 'DynamoDB write units per event, no tier change (median / p95)',
      target: '≤ 1.0',
      measured: `${r.capacity.noChange.wruMedian} / ${r.capacity.noChange.wruP95}`,
      met: r.capacity.noChange.wruP95 <= 1,
    },
    { metric: 'DynamoDB read units per event (p95, any event)', target: '≤ 2.0', measured: String(reads), met: reads <= 2 },
    {
      metric: 'analytics counters: write units per event (example population, journeys running)',
      target: '≤ 0.1',
      measured: String(r.capacity.countersWruPerEvent),
      met: r.capacity.countersWruPerEvent <= 0.1,
    },
    {
      metric: 'write units per tier change (median)',
      target: '≤ 4',
      measured: String(r.capacity.tierChange.wruMedian),
      met: r.capacity.tierChange.wruMedian <= 4,
    },
    {
      metric: `a user with ${r.capacity.heavyUser.eventsPerDay} events a day: write units per event (p99); window read (p99); largest item`,
      target: '≤ 2; ≤ 4 RRU; ≤ 64 KB',
      measured: `${r.capacity.heavyUser.wruP99}; ${r.capacity.heavyUser.rruP99}; ${(r.capacity.heavyUser.maxItemBytes / 1024).toFixed(1)} KB`,
      met: r.capacity.heavyUser.wruP99 <= 2 && r.capacity.heavyUser.rruP99 <= 4 && r.capacity.heavyUser.maxItemBytes <= 64 * 1024,
    },
    {
      metric: `a user with ${r.capacity.heavyUser.windowEventsPerDay} events a day for the whole ${r.capacity.heavyUser.windowDays}-day window: window read (p99)`,
      target: '≤ 4 RRU',
      measured: String(r.capacity.heavyUser.rruP99Window),
      met: r.capacity.heavyUser.rruP99Window <= 4,
    },
    {
      metric: `Step Functions transitions, 3-send journey${threeSend ? ` (${threeSend[0]})` : ''}`,
      target: '≤ 12',
      measured: threeSend ? String(threeSend[1].transitions) : 'n/a',
      met: threeSend ? threeSend[1].transitions <= 12 : false,
    },
    {
      metric: `nightly review: items read ÷ users due (${r.review.users} users, ${r.review.due} due)`,
      target: '≤ 1.2',
      measured: fixed(r.review.ratio, 3),
      met: r.review.ratio <= 1.2,
    },
    {
      metric: 'reviews per steadily active user per 30 days',
      target: '≤ 3',
      measured: String(r.review.reviewsPerActiveUser30d),
      met: r.review.reviewsPerActiveUser30d <= 3,
    },
    { metric: 'core evaluation time ÷ bare json-rules-engine', target: '≤ 1.2', measured: fixed(evalRatio), met: evalRatio <= 1.2 },
    {
      metric: 'local end-to-end events/s ÷ dynalite UpdateItem ops/s',
      target: '≥ 0.5',
      measured: fixed(r.throughput.ratio),
      met: r.throughput.ratio >= 0.5,
    },
    {
      metric: `strata dev RSS after ${r.dev.events} events of ${r.dev.users} users`,
      target: '≤ 400 MB',
      measured: `${r.dev.rssAfter100kEventsMb} MB`,
      met: r.dev.rssAfter100kEventsMb <= 400,
    },
    {
      metric: `strata dev RSS after ${r.dev.idleSeconds} s idle ÷ after start`,
      target: '≤ 1.2',
      measured: `${fixed(r.dev.rssAfterIdleMb / r.dev.rssAfterStartMb)} (${r.dev.rssAfterIdleMb} / ${r.dev.rssAfterStartMb} MB)`,
      met: r.dev.rssAfterIdleMb <= 1.2 * r.dev.rssAfterStartMb,
    },
    {
      metric: 'strata dev data folder ÷ live data',
      target: '≤ 3',
      measured: fixed(r.dev.dataFolderOverLiveData),
      met: r.dev.dataFolderOverLiveData <= 3,
    },
    {
      metric: 'strata dev events applied per second',
      target: '≥ 500',
      measured: fixed(r.dev.appliedEventsPerSec, 0),
      met: r.dev.appliedEventsPerSec >= 500,
    },
    {
      metric: `strata simulate, in-memory events/s, one thread (${r.simulate.events} events; full stack ${fixed(r.simulate.fullStackEventsPerSec, 0)}/s on ${r.simulate.fullStackHistory.events})`,
      target: '≥ 20,000',
      measured: fixed(r.simulate.eventsPerSec, 0),
      met: r.simulate.eventsPerSec >= 20_000,
    },
    {
      metric: `strata simulate, ${r.simulate.millionEvents.events} events on ${r.simulate.millionEvents.threads} threads: seconds / peak RSS`,
      target: '≤ 60 s / ≤ 1.5 GB',
      measured: `${fixed(r.simulate.millionEvents.seconds, 1)} s / ${r.simulate.millionEvents.peakRssMb} MB`,
      met: r.simulate.millionEvents.seconds <= 60 && r.simulate.millionEvents.peakRssMb <= 1536,
    },
    {
      metric: `strata import, ${r.import.events} events into dynalite: write requests per event (${fixed(r.import.eventsPerSec, 0)} events/s, ${fixed(r.import.wruPerEvent, 3)} WRU per event)`,
      target: '≤ 0.2',
      measured: fixed(r.import.writeRequestsPerEvent, 3),
      met: r.import.writeRequestsPerEvent <= 0.2,
    },
    {
      metric: 'ingest Lambda bundle, minified',
      target: '≤ 600 KB',
      measured: `${(r.coldStart.bundleBytes / 1024).toFixed(0)} KiB`,
      met: r.coldStart.bundleBytes <= 600 * 1024,
    },
    {
      metric: `\`strata --help\` (median of ${r.cli.samples.help.length})`,
      target: '≤ 300 ms',
      measured: `${fixed(r.cli.helpMs, 0)} ms`,
      met: r.cli.helpMs <= 300,
    },
    {
      metric: `\`strata validate\` on the example project (median of ${r.cli.samples.validate.length})`,
      target: '≤ 600 ms',
      measured: `${fixed(r.cli.validateMs, 0)} ms`,
      met: r.cli.validateMs <= 600,
    },
    {
      metric: `\`strata user <id>\` against a running stack (median of ${r.cli.samples.user.length})`,
      target: '≤ 800 ms',
      measured: `${fixed(r.cli.userMs, 0)} ms`,
      met: r.cli.userMs <= 800,
    },
  ];
}

export function renderTable(r: BenchResults): string {
  const rows = targetChecks(r).map((c) => `| ${c.metric} | ${c.target} | ${c.measured} | ${c.met ? 'met' : 'missed'} |`);
  const c = r.capacity;
  const other = [
    `| capacity per event, tier change (WRU median / p95, RRU median / p95) | ${c.tierChange.wruMedian} / ${c.tierChange.wruP95}, ${c.tierChange.rruMedian} / ${c.tierChange.rruP95} |`,
    `| evaluation µs per event: core / bare json-rules-engine / plain JS | ${r.evaluation.coreUs} / ${r.evaluation.jreUs} / ${r.evaluation.plainJsUs} |`,
    `| local throughput: events/s / dynalite ops/s | ${fixed(r.throughput.eventsPerSec, 0)} / ${fixed(r.throughput.dynaliteOpsPerSec, 0)} |`,
    `| nightly review time (index) / full scan time and items | ${fixed(r.review.seconds, 1)} s / ${fixed(r.review.fullScanSeconds, 1)} s, ${r.review.fullScanItemsRead} items |`,
    `| journey transitions per tier | ${Object.entries(r.journeys)
      .map(([tier, j]) => `${tier} ${j.transitions}`)
      .join(', ')} |`,
    `| ingest cold start: import time (median of 10) | ${r.coldStart.importMsMedian} ms |`,
    `| strata dev: events accepted/s, CPU ms per applied event, data folder bytes per 1k events (live data) | ${fixed(r.dev.acceptedEventsPerSec, 0)}, ${r.dev.cpuMsPerEvent} ms, ${r.dev.dataFolderBytesPer1kEvents} (${Math.round(r.dev.liveDataBytes / (r.dev.events / 1000))}) |`,
    `| cost per 1M events / per 1M journeys | $${fixed(r.cost.per1MEvents)} / $${fixed(r.cost.per1MJourneys)} |`,
    `| one user, ${r.capacity.heavyUser.extremeEvents} events in one day: applied / failed, largest item | ${r.capacity.heavyUser.extremeApplied} / ${r.capacity.heavyUser.extremeFailures}, ${r.capacity.heavyUser.extremeMaxItemBytes} B |`,
    `| storage per user, live after TTL: 60 days / 365 days (365 days with no expiry) | ${r.storage.bytesPerUser['60d']} B / ${r.storage.bytesPerUser['365d']} B (${r.storage.bytesPerUserWithoutExpiry365d} B) |`,
    `| monthly, 1M users × 20 events (Strata / Pinpoint journeys) | $${fixed(r.cost.monthly1MUsers)} / $${fixed(r.cost.pinpointMonthly1MUsers)} |`,
  ];
  return [
    `Measured by \`npm run bench\` on ${r.machine.cpu} (${r.machine.cores} cores), Node ${r.machine.node}; ${r.capacity.users} users for capacity. ${describeSectionRuns(r)} Ratios inside a section come from the same run.`,
    '',
    '| metric | target | measured | |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    '| other figures | measured |',
    '| --- | --- |',
    ...other,
  ].join('\n');
}

/** Which sections ran in which mode on which day: `--only` lets a slow section be measured apart from the rest. */
export function describeSectionRuns(r: BenchResults): string {
  const runs = Object.entries(r.sections ?? {});
  if (runs.length === 0) return `A ${r.quick ? 'quick' : 'full'} run on ${r.at.slice(0, 10)}.`;
  const groups = new Map<string, string[]>();
  for (const [name, run] of runs) {
    const label = `${run.quick ? 'quick' : 'full'} run on ${run.at.slice(0, 10)}`;
    groups.set(label, [...(groups.get(label) ?? []), name]);
  }
  if (groups.size === 1) return `A ${[...groups.keys()][0]}.`;
  return `Sections: ${[...groups].map(([label, names]) => `${names.join(', ')} from a ${label}`).join('; ')}.`;
}

/** Replaces the marked section; undefined when README.md has no markers yet. */
export function replaceReadmeSection(readme: string, table: string): string | undefined {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) return undefined;
  return `${readme.slice(0, start + README_START.length)}\n${table}\n${readme.slice(end)}`;
}
