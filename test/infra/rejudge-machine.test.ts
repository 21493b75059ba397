/**
 * The nightly review machine as synthesized (its real ASL, re-judge included) run by aws-local-stepfunctions, with
 * each Task calling the real re-judge and review handlers on a dynalite table, as Lambda would. The rules change
 * between two starts of the local stack on the same dynalite files: member's daysActive30 threshold is 3 in rules/
 * and 5 in test/fixtures/stricter/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadValidRuleset } from '../../functions/cli/load-ruleset.js';
import { addDays } from '../../functions/core/dates.js';
import { instantAtLocalTime } from '../../functions/core/local-time.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { TierNotice } from '../../functions/core/state.js';
import { REJUDGE_SEGMENTS, type RejudgeHandler, createRejudgeHandler } from '../../functions/handlers/rejudge.js';
import { createReviewHandler } from '../../functions/handlers/review.js';
import { createDynamoCounters } from '../../functions/aws/dynamo-counters.js';
import { createVirtualClock, type VirtualClock } from '../../functions/local/clock.js';
import { LOCAL_REVIEW_SHARDS, type LocalStack, startLocalStack } from '../../functions/local/local-stack.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { generateEvents } from '../../functions/local/example-population.js';
import { seedHistory } from '../../bench/population.js';
import type { RejudgeSegmentResult } from '../../functions/handlers/rejudge.js';
import { PROJECT_ROOT, buildApp } from '../../infra/app.js';

const DAY0 = '2026-03-02';
const REJUDGE_TASKS = ['PlanRejudge', 'RejudgeSegment', 'CompleteRejudge'];
const REVIEW_TASKS = ['PlanReview', 'ReviewShard', 'CountTallies', 'AdvanceCheckpoint'];

let usual: Ruleset;
let stricter: Ruleset;
let reviewAsl: StateMachineDefinition;
const cleanups: Array<() => Promise<unknown>> = [];

/** The review machine's ASL from a synthesized template (no bundling), each function reference made a Lambda ARN. */
async function synthesizedReviewAsl(): Promise<StateMachineDefinition> {
  const outdir = mkdtempSync(join(tmpdir(), 'strata-cdk-rejudge-'));
  try {
    const projectFiles = await readProjectFiles(PROJECT_ROOT);
    const { app, stack } = buildApp({ projectFiles, context: { 'aws:cdk:bundling-stacks': [] }, outdir });
    app.synth();
    const template = JSON.parse(readFileSync(join(outdir, `${stack.stackName}.template.json`), 'utf8'));
    const logicalId = stack.getLogicalId(stack.reviewMachine.node.defaultChild as never);
    const body = template.Resources[logicalId].Properties.DefinitionString as { 'Fn::Join': [string, unknown[]] };
    const text = body['Fn::Join'][1]
      .map((part) => {
        if (typeof part === 'string') return part;
        const [target] = (part as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'];
        return `arn:aws:lambda:eu-west-1:123456789012:function:${target}`;
      })
      .join('');
    return JSON.parse(text) as StateMachineDefinition;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  usual = await loadValidRuleset(process.cwd(), 'the ruleset');
  stricter = await loadValidRuleset(join(process.cwd(), 'test', 'fixtures', 'stricter'), 'the stricter ruleset');
  expect(usual.version).not.toBe(stricter.version);
  reviewAsl = await synthesizedReviewAsl();
}, 120_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Run {
  stack: LocalStack;
  notices: TierNotice[];
}

/** The local stack on dynalite files at `dynalitePath`, or in memory. */
async function start(ruleset: Ruleset, dynalitePath: string | undefined, clock: VirtualClock): Promise<Run> {
  const notices: TierNotice[] = [];
  const stack = await startLocalStack({
    ruleset,
    clock,
    ...(dynalitePath !== undefined ? { dynalitePath } : {}),
    batchWindowMs: 0,
    onActivity: (activity) => void (activity.kind === 'notice' && notices.push(activity.notice)),
  });
  return { stack, notices };
}

/** Active on days 0..3 (four distinct days), with one lesson finished on day 0. */
async function fourActiveDays(run: Run, clock: VirtualClock, userId: string, ruleset: Ruleset): Promise<void> {
  for (let day = 0; day < 4; day++) {
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, day), 10 * 60, ruleset.timezone));
    const at = clock.now().toISOString();
    for (const type of day === 0 ? ['app.opened', 'content.completed'] : ['app.opened']) {
      const eventId = `${userId}-${day}-${type}`;
      await run.stack.bus.put([
        {
          version: '0',
          id: eventId,
          'detail-type': type,
          source: 'test.app',
          account: '0',
          time: at,
          region: 'local',
          resources: [],
          detail: { eventId, userId, type, occurredAt: at, properties: { templateId: 't' } },
        },
      ]);
      await run.stack.settle();
    }
  }
}

interface MachineRun {
  /** The execution's error name when it failed. */
  failed?: string;
  statesEntered: string[];
}

/**
 * One execution of the synthesized review machine, each Task state calling the real handler its Resource names.
 * `segmentFails` makes a segment step throw, as a re-judge Lambda that keeps failing would.
 */
/** Review executions run so far: each gets an id of its own, as in Step Functions. */
let nightsRun = 0;

async function runReviewMachine(run: Run, segmentFails?: (segment: number) => boolean): Promise<MachineRun> {
  const quiet = (serviceName: string) => new Logger({ serviceName, logLevel: 'SILENT' });
  const rejudge: RejudgeHandler = createRejudgeHandler({
    services: run.stack.services,
    store: run.stack.store,
    totalSegments: REJUDGE_SEGMENTS,
    logger: quiet('strata-rejudge'),
  });
  const review = createReviewHandler({
    services: run.stack.services,
    shardCount: LOCAL_REVIEW_SHARDS,
    logger: quiet('strata-review'),
    metrics: new Metrics({ namespace: 'StrataTest', serviceName: 'strata-review' }),
    tallies: {
      source: run.stack.tallies,
      batches: createDynamoCounters({ client: run.stack.dynalite.client, tableName: run.stack.dynalite.tableName }),
    },
  });
  const rejudgeStep = async (input: unknown) => {
    const { segment } = input as { segment?: number };
    if (segment !== undefined && segmentFails?.(segment)) throw new Error(`segment ${segment} failed (test)`);
    return JSON.parse(JSON.stringify(await rejudge(input)));
  };
  const reviewStep = async (input: unknown) => JSON.parse(JSON.stringify(await review(input)));
  const handlers = Object.fromEntries([
    ...REJUDGE_TASKS.map((name) => [name, rejudgeStep] as const),
    ...REVIEW_TASKS.map((name) => [name, reviewStep] as const),
  ]);
  const machine = new StateMachine(reviewAsl, { validationOptions: { checkArn: true, checkPaths: true } });
  const execution = machine.run(
    { trigger: 'schedule' },
    {
      // Step Functions gives every execution its id; the count step's lease is owned by it.
      context: { Execution: { Id: `arn:aws:states:us-east-1:123456789012:execution:review:night-${++nightsRun}` } },
      overrides: {
        taskResourceLocalHandlers: handlers,
        retryIntervalOverrides: Object.fromEntries([...REJUDGE_TASKS, ...REVIEW_TASKS].map((name) => [name, 0])),
      },
    },
  );
  const statesEntered: string[] = [];
  const logs = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') statesEntered.push(event.state.name);
    }
  })();
  let failed: string | undefined;
  try {
    await execution.result;
  } catch (error) {
    failed = error instanceof Error ? error.message : String(error);
  }
  await logs;
  await run.stack.settle();
  return { ...(failed !== undefined ? { failed } : {}), statesEntered };
}

async function setup(): Promise<{ dynalitePath: string; clock: VirtualClock }> {
  const folder = await mkdtemp(join(tmpdir(), 'strata-rejudge-machine-'));
  cleanups.push(() => rm(folder, { recursive: true, force: true }));
  return { dynalitePath: join(folder, 'dynalite'), clock: createVirtualClock(instantAtLocalTime(DAY0, 9 * 60, usual.timezone)) };
}

describe('the synthesized review machine re-judges after a ruleset change', () => {
  it('promotes on the first night when the new rules are looser, and judges nobody again on the next run', async () => {
    const { dynalitePath, clock } = await setup();
    const before = await start(stricter, dynalitePath, clock);
    await before.stack.runRejudge();
    await fourActiveDays(before, clock, 'p-1', stricter);
    expect((await before.stack.store.loadUser('p-1', DAY0)).profile!.tier).toBe('visitor');
    await before.stack.close();

    // The first night after the deploy: p-1's review date has not come, the re-judge reaches them anyway.
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 4), 3 * 60 + 30, usual.timezone));
    const after = await start(usual, dynalitePath, clock);
    cleanups.push(() => after.stack.close());
    const night = await runReviewMachine(after);
    expect(night.failed).toBeUndefined();
    expect((await after.stack.store.loadUser('p-1', DAY0)).profile!.tier).toBe('member');
    expect(night.statesEntered.filter((name) => name === 'RejudgeSegment')).toHaveLength(REJUDGE_SEGMENTS);
    expect(night.statesEntered).toContain('CompleteRejudge');
    expect(night.statesEntered).toContain('CountTallies');
    expect(after.notices.map((notice) => [notice.kind, notice.toTier, notice.rulesetVersion])).toEqual([['promoted', 'member', usual.version]]);
    expect(await after.stack.store.getRejudgedVersion()).toBe(usual.version);

    // Once per version: the next run plans nothing and goes straight to the review.
    const again = await runReviewMachine(after);
    expect(again.failed).toBeUndefined();
    expect(again.statesEntered.slice(0, 3)).toEqual(['PlanRejudge', 'RejudgeNeeded', 'PlanReview']);
    expect(again.statesEntered).not.toContain('RejudgeSegment');
    expect(after.notices).toHaveLength(1);
  }, 120_000);

  it('starts grace on the first night when the rules are stricter; a failed segment still lets the review run, and the next run resumes', async () => {
    const { dynalitePath, clock } = await setup();
    const before = await start(usual, dynalitePath, clock);
    await before.stack.runRejudge();
    await fourActiveDays(before, clock, 'g-1', usual);
    expect((await before.stack.store.loadUser('g-1', DAY0)).profile!.tier).toBe('member');
    await before.stack.close();

    // Past member's 7-day tenure, so the shortfall starts grace rather than waiting.
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 12), 3 * 60 + 30, usual.timezone));
    const after = await start(stricter, dynalitePath, clock);
    cleanups.push(() => after.stack.close());

    // One segment keeps failing: the Map fails after its retries, the review still runs, and the execution fails.
    const failing = await runReviewMachine(after, (segment) => segment === REJUDGE_SEGMENTS - 1);
    expect(failing.failed).toMatch(/RejudgeFailed|re-judge failed/);
    expect(failing.statesEntered).toContain('PlanReview');
    expect(failing.statesEntered).not.toContain('CompleteRejudge');
    expect(failing.statesEntered.at(-1)).toBe('ReviewedButRejudgeFailed');
    expect(await after.stack.store.getRejudgedVersion()).not.toBe(stricter.version);

    // The next run resumes: finished segments are skipped, the failed one is judged, and the version is marked.
    const resumed = await runReviewMachine(after);
    const { profile } = await after.stack.store.loadUser('g-1', DAY0);
    expect(profile).toMatchObject({ tier: 'member', graceUntil: addDays(DAY0, 12 + 14) });
    expect(resumed.failed).toBeUndefined();
    expect(resumed.statesEntered).toContain('CompleteRejudge');
    expect(await after.stack.store.getRejudgedVersion()).toBe(stricter.version);
    // Judged twice over two runs where its segment was done once: one grace, one notice.
    expect(after.notices.filter((notice) => notice.userId === 'g-1').map((notice) => notice.kind)).toEqual(['grace-started']);
  }, 120_000);
});

describe('a re-judge segment near its Lambda timeout', () => {
  it('stops between Scan pages and returns `next`; called again from there, it judges every user exactly once', async () => {
    const events = generateEvents({ users: 150, days: 60, seed: 5, start: '2026-09-01' });
    const now = new Date(Date.parse(events[events.length - 1]!.occurredAt) + 3_600_000);
    const { stack } = await start(usual, undefined, createVirtualClock(now));
    cleanups.push(() => stack.close());
    const seeded = await seedHistory({
      client: stack.dynalite.client,
      tableName: stack.dynalite.tableName,
      store: stack.store,
      ruleset: usual,
      events,
      now,
    });
    // More items than one Scan page reads, so a single segment has more than one page.
    expect(seeded.users + seeded.dayItems).toBeGreaterThan(1000);

    // One segment holds the whole table; the invocation always reports its time as used up.
    const rejudge = createRejudgeHandler({
      services: stack.services,
      store: stack.store,
      totalSegments: 1,
      logger: new Logger({ logLevel: 'SILENT' }),
    });
    const nearTimeout = { getRemainingTimeInMillis: () => 0 };
    const results: RejudgeSegmentResult[] = [];
    let input: unknown = { step: 'segment', segment: 0 };
    for (let invocation = 0; invocation < 20 && input; invocation++) {
      const result = (await rejudge(input, nearTimeout)) as RejudgeSegmentResult;
      results.push(result);
      input = result.next && JSON.parse(JSON.stringify(result.next));
    }
    expect(results.length).toBeGreaterThan(1);
    expect(results.slice(0, -1).every((result) => result.paused && result.next?.segment === 0)).toBe(true);
    expect(results.at(-1)!.next).toBeUndefined();
    expect(results.reduce((sum, result) => sum + result.usersJudged, 0)).toBe(seeded.users);
    expect(await rejudge({ step: 'complete' })).toEqual({ completed: true, rulesetVersion: usual.version });
  }, 120_000);
});
