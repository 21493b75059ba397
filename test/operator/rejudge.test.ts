/**
 * Re-judge after a rules change, as `strata dev` does on a restart: the same dynalite files, the stack started
 * again with the other ruleset, and the re-judge handler's plan / segment / complete steps. member's daysActive30
 * threshold is 3 in rules/ and 5 in test/fixtures/stricter/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadValidRuleset } from '../../functions/cli/load-ruleset.js';
import { addDays } from '../../functions/core/dates.js';
import { instantAtLocalTime } from '../../functions/core/local-time.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { TierNotice } from '../../functions/core/state.js';
import { createVirtualClock, type VirtualClock } from '../../functions/local/clock.js';
import { type LocalStack, startLocalStack } from '../../functions/local/local-stack.js';
import { createRejudgeHandler } from '../../functions/handlers/rejudge.js';

const DAY0 = '2026-03-02';
let usual: Ruleset;
let stricter: Ruleset;
const cleanups: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  usual = await loadValidRuleset(process.cwd(), 'the ruleset');
  stricter = await loadValidRuleset(join(process.cwd(), 'test', 'fixtures', 'stricter'), 'the stricter ruleset');
  expect(usual.version).not.toBe(stricter.version);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Run {
  stack: LocalStack;
  notices: TierNotice[];
}

async function start(ruleset: Ruleset, dynalitePath: string, clock: VirtualClock): Promise<Run> {
  const notices: TierNotice[] = [];
  const stack = await startLocalStack({
    ruleset,
    clock,
    dynalitePath,
    batchWindowMs: 0,
    onActivity: (a) => void (a.kind === 'notice' && notices.push(a.notice)),
  });
  return { stack, notices };
}

/** Active on days 0..3 (four distinct days) with one lesson finished on day 0. */
async function fourActiveDays(run: Run, clock: VirtualClock, userId: string, ruleset: Ruleset): Promise<void> {
  for (let day = 0; day < 4; day++) {
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, day), 10 * 60, ruleset.timezone));
    const at = clock.now().toISOString();
    const types = day === 0 ? ['app.opened', 'content.completed'] : ['app.opened'];
    for (const type of types) {
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

async function setup(): Promise<{ dynalitePath: string; clock: VirtualClock }> {
  const folder = await mkdtemp(join(tmpdir(), 'strata-rejudge-'));
  cleanups.push(() => rm(folder, { recursive: true, force: true }));
  return { dynalitePath: join(folder, 'dynalite'), clock: createVirtualClock(instantAtLocalTime(DAY0, 9 * 60, usual.timezone)) };
}

describe('re-judge on a ruleset change', () => {
  it('promotes at once when the new rules are looser', async () => {
    const { dynalitePath, clock } = await setup();
    const before = await start(stricter, dynalitePath, clock);
    expect(await before.stack.runRejudge()).toEqual({ needed: true, usersJudged: 0, usersChanged: 0 });
    await fourActiveDays(before, clock, 'p-1', stricter);
    expect((await before.stack.store.loadUser('p-1', DAY0)).profile!.tier).toBe('visitor');
    await before.stack.close();

    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 4), 3 * 60, usual.timezone));
    const after = await start(usual, dynalitePath, clock);
    cleanups.push(() => after.stack.close());
    expect(await after.stack.runRejudge()).toEqual({ needed: true, usersJudged: 1, usersChanged: 1 });
    await after.stack.settle();
    expect((await after.stack.store.loadUser('p-1', DAY0)).profile!.tier).toBe('member');
    expect(after.notices.map((n) => [n.kind, n.toTier, n.rulesetVersion])).toEqual([['promoted', 'member', usual.version]]);
    // Once per version: a second start with the same rules judges nobody.
    expect(await after.stack.runRejudge()).toEqual({ needed: false, usersJudged: 0, usersChanged: 0 });
  });

  it('starts grace on the first night when the new rules are stricter, and resumes a partial run', async () => {
    const { dynalitePath, clock } = await setup();
    const before = await start(usual, dynalitePath, clock);
    await fourActiveDays(before, clock, 'g-1', usual);
    expect((await before.stack.store.loadUser('g-1', DAY0)).profile!.tier).toBe('member');
    await before.stack.close();

    // Past member's 7-day tenure, so the shortfall starts grace rather than waiting.
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 12), 3 * 60, usual.timezone));
    const after = await start(stricter, dynalitePath, clock);
    cleanups.push(() => after.stack.close());
    // An interrupted run: one segment done, the completion refused, nothing marked re-judged.
    const rejudge = createRejudgeHandler({ services: after.stack.services, store: after.stack.store, totalSegments: 4 });
    await rejudge({ step: 'segment', segment: 0 });
    expect(await rejudge({ step: 'complete' })).toEqual({ completed: false, rulesetVersion: stricter.version });

    const result = await after.stack.runRejudge();
    expect(result.needed).toBe(true);
    await after.stack.settle();
    const { profile } = await after.stack.store.loadUser('g-1', DAY0);
    expect(profile).toMatchObject({ tier: 'member', graceUntil: addDays(DAY0, 12 + 14) });
    expect(after.notices.filter((n) => n.userId === 'g-1').map((n) => n.kind)).toEqual(['grace-started']);
    expect(await after.stack.runRejudge()).toMatchObject({ needed: false });
  });
});
