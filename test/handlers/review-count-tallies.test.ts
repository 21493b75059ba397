/**
 * The review handler's countTallies step (core/tally-batches.ts behind it), as the review state machine drives it:
 * called again with the `next` it returns while its invocation's time runs out, until the queue is empty. Every
 * tally is counted once, however many invocations it takes.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { createDynamoCounters } from '../../functions/aws/dynamo-counters.js';
import { createDynamoTierStore } from '../../functions/aws/dynamo-store.js';
import { COUNTER_NAMES } from '../../functions/core/analytics.js';
import { TALLY_DRAIN_ROUND } from '../../functions/core/tally-batches.js';
import {
  type InvocationClock,
  REVIEW_TIME_MARGIN_MS,
  type TallyCountStepResult,
  createReviewHandler,
  parseReviewStepInput,
} from '../../functions/handlers/review.js';
import { openLocalTallyQueue } from '../../functions/local/local-tally-queue.js';
import { captureProcessOutput } from '../helpers/captured-output.js';
import { useDynalite } from '../helpers/dynalite-fixture.js';
import { testRuleset } from '../helpers/fixtures.js';
import { ManualClock, RecordingJourneyStarter, RecordingPublisher } from '../helpers/memory-ports.js';

const dynalite = useDynalite();
const ruleset = testRuleset();
captureProcessOutput();

async function servicesOn(tableName: string) {
  const store = createDynamoTierStore({ client: dynalite.client, tableName, shardCount: 1, timeZone: ruleset.timezone });
  const clock = new ManualClock(new Date('2026-03-12T02:30:00Z'));
  return { ruleset, store, journeys: new RecordingJourneyStarter(), publisher: new RecordingPublisher(), clock };
}

async function setup(tallies: number) {
  const tableName = await dynalite.freshTable();
  const counters = createDynamoCounters({ client: dynalite.client, tableName });
  const queue = await openLocalTallyQueue();
  const sent = COUNTER_NAMES.sent('intro');
  for (let i = 0; i < tallies; i++)
    await queue.enqueue({ id: `j${i}`, journeyId: 'welcome', date: i % 2 === 0 ? '2026-03-10' : '2026-03-11', counts: { [sent]: 1 } });
  // A retried final Task's copy.
  await queue.enqueue({ id: 'j0', journeyId: 'welcome', date: '2026-03-10', counts: { [sent]: 1 } });
  const handler = createReviewHandler({
    services: await servicesOn(tableName),
    shardCount: 1,
    logger: new Logger({ serviceName: 'strata-review-test' }),
    metrics: new Metrics({ namespace: 'StrataTest', serviceName: 'strata-review-test' }),
    tallies: { source: queue, batches: counters },
  });
  return { handler, counters, queue, sent };
}

/** A Lambda context with time for `answers` more checks, then only the safety margin left. */
const budgetOf = (answers: number): InvocationClock => {
  let left = answers;
  return { getRemainingTimeInMillis: () => (left-- > 0 ? 10 * 60_000 : REVIEW_TIME_MARGIN_MS - 1) };
};

describe('review handler: countTallies', () => {
  it('parses the step the state machine passes', () => {
    expect(parseReviewStepInput({ step: 'countTallies' })).toEqual({ step: 'countTallies' });
  });

  it('pauses when its time runs out and carries on from the `next` it returns, counting each tally once', async () => {
    const tallies = 2 * TALLY_DRAIN_ROUND + 50;
    const { handler, counters, queue, sent } = await setup(tallies);
    const results: TallyCountStepResult[] = [];
    let input: unknown = { step: 'countTallies' };
    for (let invocation = 0; invocation < 10 && input !== undefined; invocation++) {
      // Time for one round per invocation.
      const result = (await handler(input, budgetOf(1))) as TallyCountStepResult;
      results.push(result);
      input = result.next ? JSON.parse(JSON.stringify(result.next)) : undefined;
    }
    expect(results.map((result) => result.next !== undefined)).toEqual([true, true, true, false]);
    expect(results.reduce((sum, result) => sum + result.counted, 0)).toBe(tallies);
    expect(results.reduce((sum, result) => sum + result.duplicates, 0)).toBe(1);
    expect(await queue.waiting()).toBe(0);
    const days = await counters.readJourneyDays('welcome', '2026-03-01');
    expect(days).toEqual([
      { date: '2026-03-10', counts: { [sent]: tallies / 2 } },
      { date: '2026-03-11', counts: { [sent]: tallies / 2 } },
    ]);
    // The night's batch items: about 1 KB each, so far fewer than the tallies.
    const batches = results.reduce((sum, result) => sum + result.batches, 0);
    expect(batches).toBeLessThan(tallies / 10);
    expect((await counters.readTallyBatches('2026-03-12')).every((batch) => batch.drainDate === '2026-03-12')).toBe(true);
  });

  it('counts nothing, and says it is done, where nothing reports on journeys', async () => {
    const handler = createReviewHandler({
      services: await servicesOn(await dynalite.freshTable()),
      shardCount: 1,
      logger: new Logger({ serviceName: 'strata-review-test' }),
    });
    expect(await handler({ step: 'countTallies' })).toEqual({ received: 0, counted: 0, duplicates: 0, batches: 0 });
  });
});
