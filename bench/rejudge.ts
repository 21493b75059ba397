/**
 * What re-judging every user after a rules change costs: the example population's history seeded into dynalite
 * (60 days), then one re-judge run (every Scan segment, every user reviewed, the checkpoint) with every request's
 * consumed capacity counted, scaled to 1,000,000 users and priced with prices.json. Step Functions transitions
 * are the states the review machine's re-judge part enters (plan, the choice, the Map, complete, and each segment's
 * loop; test/infra checks these counts against the synthesized ASL), with the pauses a segment of a million users
 * takes at this run's own pace; journeys started by tier changes are priced per tier change in the main cost model,
 * not here. On a night without a new ruleset the re-judge costs two transitions (its plan and the choice).
 * Lambda duration (and so the pauses) cannot be measured locally: a user's judgement is a Query of the window and
 * one or two writes, the shape of an ingested event, so it takes the cost model's ingest duration per event.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { createDynamoTierStore } from '../functions/aws/dynamo-store.js';
import { localDate } from '../functions/core/dates.js';
import type { TierServices } from '../functions/core/ingest.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { startDynalite } from '../functions/local/dynalite.js';
import { generateEvents } from '../functions/local/example-population.js';
import { REJUDGE_SEGMENTS, REJUDGE_TIME_MARGIN_MS, createRejudgeHandler, type RejudgePlan } from '../functions/handlers/rejudge.js';
import { REJUDGE_MEMORY_MB } from '../infra/strata-stack.js';
import { COST_ASSUMPTIONS, type Prices } from './cost.js';
import { seedHistory } from './population.js';

/** States a re-judge run enters once: PlanRejudge, RejudgeNeeded, RejudgeEachSegment, CompleteRejudge. */
export const REJUDGE_FIXED_TRANSITIONS = 4;
/** Per segment: RejudgeSegment, SegmentPaused, SegmentDone. */
export const REJUDGE_TRANSITIONS_PER_SEGMENT = 3;
/** Per pause of a segment (its time budget used): ResumeSegment, RejudgeSegment, SegmentPaused. */
export const REJUDGE_TRANSITIONS_PER_PAUSE = 3;
/** Lambda's longest timeout (the re-judge function's, see infra), less the margin a segment keeps: its working time per call. */
const SEGMENT_BUDGET_SECONDS = 15 * 60 - REJUDGE_TIME_MARGIN_MS / 1000;

export interface RejudgeCost {
  users: number;
  itemsPerUser: number;
  usersChanged: number;
  costPer1MUsers: { readUnits: number; writeUnits: number; transitions: number; lambdaGbSeconds: number; dollars: number };
  seconds: number;
}

export async function measureRejudge(ruleset: Ruleset, prices: Prices, options: { users: number; days?: number }): Promise<RejudgeCost> {
  const events = generateEvents({ users: options.users, days: options.days ?? 60, seed: 11, start: '2026-09-01' });
  const now = new Date(Date.parse(events[events.length - 1]!.occurredAt) + 3_600_000);
  const dynalite = await startDynalite();
  const counted = { read: 0, write: 0, on: false };
  try {
    const store = createDynamoTierStore({
      client: dynalite.client,
      tableName: dynalite.tableName,
      shardCount: 16,
      timeZone: ruleset.timezone,
      onCapacity: (_operation, units) => {
        if (!counted.on) return;
        counted.read += units.read;
        counted.write += units.write;
      },
    });
    const seeded = await seedHistory({ client: dynalite.client, tableName: dynalite.tableName, store, ruleset, events, now });
    const services: TierServices = {
      ruleset,
      store,
      journeys: { start: async () => 'started', stop: async () => undefined },
      publisher: { publishNotices: async () => undefined },
      clock: { now: () => now },
    };
    const rejudge = createRejudgeHandler({
      services,
      store,
      totalSegments: REJUDGE_SEGMENTS,
      logger: new Logger({ serviceName: 'strata-rejudge', logLevel: 'ERROR' }),
    });
    counted.on = true;
    const started = performance.now();
    const plan = (await rejudge({ step: 'plan' })) as RejudgePlan;
    let usersJudged = 0;
    let usersChanged = 0;
    for (const segment of plan.segments) {
      const result = (await rejudge({ step: 'segment', segment })) as { usersJudged: number; usersChanged: number };
      usersJudged += result.usersJudged;
      usersChanged += result.usersChanged;
    }
    await rejudge({ step: 'complete' });
    const seconds = (performance.now() - started) / 1000;
    if (usersJudged !== seeded.users)
      throw new Error(`Bench: re-judge judged ${usersJudged} of ${seeded.users} users (as of ${localDate(now, ruleset.timezone)})`);
    const scale = 1_000_000 / seeded.users;
    const readUnits = counted.read * scale;
    const writeUnits = counted.write * scale;
    const secondsPerUser = COST_ASSUMPTIONS.ingestLambdaMsPerEvent / 1000;
    const segmentSeconds = secondsPerUser * (1_000_000 / REJUDGE_SEGMENTS);
    const pausesPerSegment = Math.max(0, Math.ceil(segmentSeconds / SEGMENT_BUDGET_SECONDS) - 1);
    const transitions =
      REJUDGE_FIXED_TRANSITIONS + REJUDGE_SEGMENTS * (REJUDGE_TRANSITIONS_PER_SEGMENT + pausesPerSegment * REJUDGE_TRANSITIONS_PER_PAUSE);
    const lambdaGbSeconds = secondsPerUser * 1_000_000 * (REJUDGE_MEMORY_MB / 1024);
    const lambdaRequests = 2 + REJUDGE_SEGMENTS * (1 + pausesPerSegment);
    const dollars =
      lambdaGbSeconds * prices.lambdaPerGbSecondArm64 +
      (lambdaRequests / 1e6) * prices.lambdaPerMillionRequests +
      (readUnits / 1e6) * prices.dynamoDbPerMillionReadUnits +
      (writeUnits / 1e6) * prices.dynamoDbPerMillionWriteUnits +
      (transitions / 1000) * prices.stepFunctionsPerThousandTransitions;
    const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;
    return {
      users: seeded.users,
      itemsPerUser: round((seeded.dayItems + seeded.users) / seeded.users, 2),
      usersChanged,
      costPer1MUsers: {
        readUnits: round(readUnits),
        writeUnits: round(writeUnits),
        transitions,
        lambdaGbSeconds: round(lambdaGbSeconds),
        dollars: round(dollars, 3),
      },
      seconds: round(seconds, 1),
    };
  } finally {
    await dynalite.close();
  }
}
