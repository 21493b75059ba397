/**
 * `strata simulate` end to end: the real command on a small fixed event file, against the shipped ruleset and a
 * stricter copy. The run is on a virtual clock, so every number below is exact and the same on every run.
 *
 * test/fixtures/simulate-events.jsonl (301 lines): 30 users of the example population over 21 days from
 * 2026-09-01 (functions/local/example-population.ts, seed 19, sorted by time), plus:
 * - hand-demoted: active 09-01..09-03 with a finished lesson on 09-03, then silent: member from 09-03, out of
 *   qualification when 09-01 leaves the 30-day window, 14 days' grace, then back to visitor in mid-October;
 * - hand-cleared: the same start, then active again 10-02..10-04 during grace: re-qualifies, grace cleared;
 * - line 100, not JSON; line 250, an event type that is not dotted lower-case words (both skipped, not fatal);
 * - line 301, a producer resend of line 10 (same eventId): counted as a duplicate, applied once.
 * test/fixtures/stricter/ is rules/ and journeys/ with member's daysActive30 raised from 3 to 5.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulationSummary } from '../../functions/local/simulation-summary.js';
import { type StrataResult, strata } from './strata-process.js';

const EVENTS = 'test/fixtures/simulate-events.jsonl';
const STRICTER = 'test/fixtures/stricter';

describe('strata simulate (the command) on a fixed event file', () => {
  let outDir = '';
  let result: StrataResult;
  let summary: SimulationSummary;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'strata-e2e-sim-'));
    // One run gives both: --compare replays the same events under the second ruleset after the first.
    result = await strata([
      'simulate',
      '--events',
      EVENTS,
      '--rules',
      '.',
      '--days',
      '20',
      '--out',
      outDir,
      '--compare',
      STRICTER,
      '--moves-csv',
      join(outDir, 'moves.csv'),
    ]);
    if (result.code === 0) summary = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as SimulationSummary;
    // About 20 s on an idle 2-core machine (two replays of 299 events over 54 virtual days); the margin is for a
    // full `vitest run`, where every file competes for the same cores.
  }, 120_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it('reports each bad line by number and carries on', () => {
    expect(result.code).toBe(0);
    expect(result.stderr.split('\n')).toEqual([
      `${EVENTS}:100: skipped: not valid JSON`,
      `${EVENTS}:250: skipped: /type: must be dotted lower-case words, for example "order.paid"`,
      '',
    ]);
    // 301 lines - 2 skipped = 299 events read; the resend among them is applied once.
    expect(summary.events).toEqual({ applied: 298, duplicates: 1, skippedLines: 2, rejected: 0, rejections: [] });
    expect(result.stdout).toContain('Simulating 299 events in memory on a virtual clock, 20 extra days of nightly reviews...');
  });

  it('moves users up and down the ladder by the shipped rules, exactly', () => {
    expect(summary.users).toBe(32); // 30 generated + hand-demoted + hand-cleared
    // The last event is hand-cleared's on 10-04; 20 more days of nightly reviews end on 10-24.
    expect([summary.firstDate, summary.lastDate, summary.days.length]).toEqual(['2026-09-01', '2026-10-24', 54]);
    expect(summary.transitions).toEqual({ promotions: 17, demotions: 6, graceStarted: 15, graceCleared: 1 });
    // Promotions 17 = 14 + 2 + 1 and demotions 6 = 5 + 1, one step at a time (member and active are one-step).
    // Everyone enters as a visitor: the generated users sign up first, and a user's first event alone never
    // qualifies for member (three active days are needed).
    expect(summary.flows).toEqual([
      { from: null, to: 'visitor', count: 32 },
      { from: 'visitor', to: 'member', count: 14 },
      { from: 'member', to: 'visitor', count: 5 },
      { from: 'member', to: 'active', count: 2 },
      { from: 'active', to: 'core', count: 1 },
      { from: 'active', to: 'member', count: 1 },
    ]);
    // 32 - 14 + 5 visitors; 14 - 5 - 2 + 1 members; 2 - 1 - 1 active; 1 core. Of the 15 graces, 6 ended in a
    // demotion and 1 was cleared (hand-cleared); the other 8 are members whose September days left the window
    // in October and whose 14 days are not over by 10-24.
    expect(summary.finalTiers).toEqual({ visitor: 23, member: 8, active: 0, core: 1 });
    expect(summary.days.at(-1)).toEqual({ date: '2026-10-24', tiers: { visitor: 23, member: 8, active: 0, core: 1 } });
    expect(result.stdout).toContain('  promotions 17, grace entries 15, graces cleared 1, demotions 6');
  });

  it('starts each tier journey once per tier entry, and holds out a deterministic few', () => {
    const entered = Object.fromEntries(summary.journeys.map((j) => [j.journeyId, { entered: j.entered, heldOut: j.heldOut }]));
    // A journey starts on every entry into its tier: visitor 32 entries + 5 demotions back to it; member 14
    // promotions + 1 demotion down to it; active 2; core 1. About 10% held out (hash of user and journey id).
    expect(entered).toEqual({
      'visitor-welcome': { entered: 37, heldOut: 4 },
      'member-nurture': { entered: 15, heldOut: 2 },
      'active-practice': { entered: 2, heldOut: 1 },
      'core-advance': { entered: 1, heldOut: 0 },
    });
    const member = summary.journeys.find((j) => j.journeyId === 'member-nurture')!;
    // 13 treated executions; each got content, invite and offer (some after a quiet-hours deferral), in order:
    // a step never sends more than the one before it.
    expect(member.steps.map((s) => [s.stepId, s.kind, s.sent])).toEqual([
      ['live_session_replay', 'content', 13],
      ['members_group', 'invite', 13],
      ['member_price', 'offer', 13],
    ]);
    for (const journey of summary.journeys) {
      const sent = journey.steps.filter((s) => s.kind !== 'branch').map((s) => s.sent);
      expect(sent).toEqual([...sent].sort((a, b) => b - a));
      expect(sent[0] ?? 0).toBeLessThanOrEqual(journey.entered - journey.heldOut);
    }
  });

  it('compares with a stricter ruleset: who would end in a different tier, and which way', async () => {
    // Raising member's daysActive30 from 3 to 5 can only take members away: 5 of the 8 final members never had 5
    // active days in a 30-day window. Nobody goes up, and active and core (10+ active days) are untouched.
    expect(summary.compare).toMatchObject({
      baseline: { label: expect.any(String), rulesetVersion: summary.rulesetVersion },
      candidate: { label: 'stricter', rulesetVersion: expect.stringMatching(/^[0-9a-f]{12}$/) },
      finalTiers: { visitor: 28, member: 3, active: 0, core: 1 },
      usersMoved: 5,
      moves: [{ from: 'member', to: 'visitor', count: 5 }],
      up: 0,
      down: 5,
    });
    const compare = summary.compare!;
    expect(compare.rulesetVersion).not.toBe(summary.rulesetVersion);
    // The moves by user id: the four generated members and hand-cleared, whose 3 active days no longer make member.
    expect(compare.users).toEqual([
      { userId: 'hand-cleared', from: 'member', to: 'visitor' },
      { userId: 'user-00006', from: 'member', to: 'visitor' },
      { userId: 'user-00008', from: 'member', to: 'visitor' },
      { userId: 'user-00009', from: 'member', to: 'visitor' },
      { userId: 'user-00019', from: 'member', to: 'visitor' },
    ]);
    // Fewer members means fewer member-journey entries and sends; every tier's journey is listed on both sides.
    expect(compare.journeys.map((j) => [j.tier, j.before?.entered, j.after?.entered])).toEqual([
      ['visitor', 37, 33],
      ['member', 15, 6],
      ['active', 2, 2],
      ['core', 1, 1],
    ]);
    expect(compare.journeys[1]!.after!.sent).toEqual({ live_session_replay: 4, members_group: 4, member_price: 4 });
    // Shipped over the baseline's end state, the stricter rules take members without 5 active days out at once
    // (demoted where tenure and grace allow, into grace otherwise); nobody is promoted.
    expect(compare.shipDay.promoted).toBe(0);
    expect(compare.shipDay.graceStarted + compare.shipDay.demoted).toBeGreaterThan(0);
    expect(compare.shipDay.users.every((u) => u.from === 'member')).toBe(true);
    expect(result.stdout).toMatch(/Comparison\. Baseline: .+ \(ruleset [0-9a-f]{12}\)\. The change: stricter.* \(ruleset [0-9a-f]{12}\)\./);
    expect(result.stdout).toContain('With the change, 5 users end in a different tier (0 up, 5 down)\n    member → visitor: 5\n');
    expect(await readFile(join(outDir, 'moves.csv'), 'utf8')).toBe(
      'userId,from,to\nhand-cleared,member,visitor\nuser-00006,member,visitor\nuser-00008,member,visitor\nuser-00009,member,visitor\nuser-00019,member,visitor\n',
    );
  });

  it('writes report.html next to summary.json', async () => {
    const report = await stat(join(outDir, 'report.html'));
    expect(report.size).toBeGreaterThan(1000);
    const html = await readFile(join(outDir, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain(summary.rulesetVersion);
  });
});
