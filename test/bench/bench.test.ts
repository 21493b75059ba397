/**
 * Runs the benchmark code itself on a tiny population so that it cannot rot. No timing is asserted (the machine
 * decides those); capacity units are, because on dynalite they follow from item sizes alone.
 */
import { describe, expect, it } from 'vitest';
import { README_END, README_START, renderTable, replaceReadmeSection } from '../../bench/report.js';
import { BENCH_SECTIONS, type BenchResults, benchOptions, parseOnly, runBench } from '../../bench/run.js';

const tinyBench = {
  ...benchOptions(true),
  capacityUsers: 40,
  evaluationIterations: 50,
  throughputEvents: 60,
  reviewUsers: 200,
  reviewShardUsers: 30,
  coldStartRuns: 1,
  activeUserDays: 35,
  heavyUser: { eventsPerDay: 40, days: 1, extremeEvents: 80, windowEventsPerDay: 20 },
  storageUsers: 4,
  simulateUsers: 12,
  simulateBigEvents: 2_000,
  cliRuns: 1,
  rejudgeUsers: 40,
  importEvents: 2_000,
  countersUsers: 6,
  devEvents: 200,
  devUsers: 30,
  devIdleSeconds: 1,
};

let measuredOnce: BenchResults | undefined;

describe('npm run bench', () => {
  it('measures every section on a tiny population, with the keys results.json promises', async () => {
    const results: BenchResults = await runBench(tinyBench);
    measuredOnce = results;
    expect(Object.keys(results.sections).sort()).toEqual([...BENCH_SECTIONS].sort());

    expect(results.machine.cores).toBeGreaterThan(0);
    // An event that changes no tier: one guarded UpdateItem of a day item under 1 KB, one consistent Query under 4 KB.
    // The example population now opens the journeys' content and joins their groups, so a busy user's window can
    // pass 4 KB and take a second read unit at p95: still within the design's 2.0 read units per event.
    expect(results.capacity.noChange).toMatchObject({ wruMedian: 1, wruP95: 1, rruMedian: 1 });
    expect(results.capacity.noChange.rruP95).toBeLessThanOrEqual(2);
    expect(results.capacity.noChange.events).toBeGreaterThan(0);
    for (const key of ['coreUs', 'jreUs', 'plainJsUs'] as const) expect(results.evaluation[key]).toBeGreaterThan(0);
    expect(results.throughput.eventsPerSec).toBeGreaterThan(0);
    expect(Number.isFinite(results.throughput.ratio)).toBe(true);
    // 200 users, every 50th due: 4 due; listing them reads 4 index items plus the checkpoint. The scan reads every
    // item: 200 profiles, the checkpoint and the 4 history items the review wrote when it started their grace.
    expect(results.review).toMatchObject({ users: 200, due: 4, itemsRead: 5, ratio: 1.25, fullScanItemsRead: 205 });
    expect(results.review.reviewsPerActiveUser30d).toBeGreaterThan(0);
    expect(results.review.usersPerSecondPerShard).toBeGreaterThan(0);
    expect(Object.keys(results.journeys).sort()).toEqual(['active', 'core', 'member', 'visitor']);
    expect(results.journeys['member']).toMatchObject({ transitions: 9, sends: 3, status: 'SUCCEEDED' });
    // Past 16 events the day is heavy: a guard item and the day item per event, and no item grows with the day.
    expect(results.capacity.heavyUser).toMatchObject({ eventsPerDay: 40, wruP50: 2, extremeApplied: 80, extremeFailures: 0 });
    expect(results.capacity.heavyUser.maxItemBytes).toBeLessThan(1024);
    expect(results.storage.bytesPerUser['60d']).toBeGreaterThan(0);
    expect(results.storage.bytesPerUser['365d']).toBeLessThan(results.storage.bytesPerUserWithoutExpiry365d);
    expect(results.coldStart.bundleBytes).toBeGreaterThan(100_000);
    expect(results.coldStart.importMsMedian).toBeGreaterThan(0);
    for (const key of ['helpMs', 'validateMs', 'userMs'] as const) expect(results.cli[key]).toBeGreaterThan(0);
    // Every posted event was applied (the bench waits for that) and is in the data folder when it measures.
    expect(results.dev).toMatchObject({ events: 200, users: 30, idleSeconds: 1 });
    for (const key of [
      'rssAfterStartMb',
      'rssAfter100kEventsMb',
      'rssAfterIdleMb',
      'appliedEventsPerSec',
      'acceptedEventsPerSec',
      'cpuMsPerEvent',
    ] as const)
      expect(results.dev[key]).toBeGreaterThan(0);
    expect(results.dev.liveItems).toBeGreaterThan(30);
    expect(results.dev.dynaliteFolderBytes).toBeGreaterThan(0);
    expect(results.dev.dataFolderBytes).toBeGreaterThanOrEqual(results.dev.dynaliteFolderBytes);
    for (const key of ['per1MEvents', 'per1MJourneys', 'monthly1MUsers'] as const)
      expect(Number.isFinite(results.cost[key]) && results.cost[key] > 0).toBe(true);
    expect(results.cost.pinpointMonthly1MUsers).toBe(1200);
    // Every user enters the ladder and a journey: the counters wrote, and the cost model prices them.
    expect(results.capacity.countersWruPerEvent).toBeGreaterThan(0);
    expect(results.capacity.counters.counterWrites.tierItems).toBeGreaterThan(0);
    expect(results.cost.breakdownPer1MEvents['analyticsCounters']).toBeGreaterThan(0);
    // Re-judge: every user read and written once at least (the review always rewrites the profile).
    expect(results.rejudge.users).toBeGreaterThan(0);
    expect(results.rejudge.costPer1MUsers.writeUnits).toBeGreaterThanOrEqual(1_000_000);
    expect(results.rejudge.costPer1MUsers.dollars).toBeGreaterThan(0);
    // Both engines replayed the same history (the bench checks their summaries are equal), and the big one ran.
    expect(results.simulate.events).toBeGreaterThan(100);
    for (const key of ['eventsPerSec', 'fullStackEventsPerSec', 'eventsPerCpuSec'] as const) expect(results.simulate[key]).toBeGreaterThan(0);
    expect(results.simulate.millionEvents.events).toBeGreaterThan(1_000);
    expect(results.simulate.millionEvents.seconds).toBeGreaterThan(0);
    expect(results.simulate.millionEvents.peakRssMb).toBeGreaterThan(0);
    // Import: every user written, in far fewer requests than events (day items per user-day, 25 items a request).
    expect(results.import.users).toBeGreaterThan(0);
    expect(results.import.writeRequestsPerEvent).toBeGreaterThan(0);
    expect(results.import.writeRequestsPerEvent).toBeLessThanOrEqual(0.2);
    expect(results.import.wruPerEvent).toBeGreaterThan(0);

    const table = renderTable(results);
    expect(table).toContain('| nightly review: items read ÷ users due');
    expect(table).toContain('| strata dev events applied per second');
    expect(replaceReadmeSection('# Strata\n', table)).toBeUndefined();
    expect(replaceReadmeSection(`a\n${README_START}\nold\n${README_END}\nb`, table)).toBe(`a\n${README_START}\n${table}\n${README_END}\nb`);
  }, 240_000);

  it('--only measures the named sections and keeps the others, with when and how each was measured', async () => {
    // The whole tiny run above stands for the results.json an earlier run wrote.
    const previous = measuredOnce!;
    const earlier = {
      ...previous,
      sections: { ...previous.sections, evaluation: { ...previous.sections.evaluation!, at: '2026-01-02T00:00:00.000Z', quick: false } },
    };
    const results = await runBench({ ...tinyBench, evaluationIterations: 10, only: new Set(['journeys']), previous: earlier });
    expect(results.evaluation).toEqual(previous.evaluation);
    expect(results.dev).toEqual(previous.dev);
    expect(results.sections.dev).toEqual(previous.sections.dev);
    expect(results.sections.evaluation).toMatchObject({ at: '2026-01-02T00:00:00.000Z', quick: false });
    expect(results.sections.journeys).toMatchObject({ quick: true });
    expect(results.journeys['member']).toMatchObject({ sends: 3 });
    const header = renderTable(results).split('\n')[0]!;
    expect(header).toContain('Sections: evaluation from a full run on 2026-01-02; capacity, heavyUser,');
    expect(header).toMatch(/journeys, .* from a quick run on \d{4}-\d\d-\d\d\./);
    expect(parseOnly(['tsx', 'bench/run.ts', '--only', 'dev,simulate'])).toEqual(new Set(['dev', 'simulate']));
    expect(parseOnly(['tsx', 'bench/run.ts', '--only=import'])).toEqual(new Set(['import']));
    expect(parseOnly(['tsx', 'bench/run.ts'])).toBeUndefined();
    expect(() => parseOnly(['--only', 'dev,simulat'])).toThrow(/unknown sections \(simulat\); choose from evaluation, capacity/);
  }, 240_000);
});
