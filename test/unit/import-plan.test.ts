/**
 * The pure part of `strata import`: how many nightly reviews the replay runs after the history (it must end with
 * tonight's review, and only once that has happened), and what a replayed user becomes in the table.
 */
import { describe, expect, it } from 'vitest';
import { importedDays, importedProfile, reviewDaysAfterHistory } from '../../functions/core/import-plan.js';
import type { UserProfile } from '../../functions/core/state.js';

const shanghai = { timezone: 'Asia/Shanghai' };

describe('reviewDaysAfterHistory', () => {
  const lastEvent = new Date('2026-10-15T06:00:00Z'); // 14:00 on 15 October in Shanghai
  it("counts today's review once its 02:00 has passed in the ruleset's zone", () => {
    // 16 October 03:00 in Shanghai: the review of the 16th has run.
    expect(reviewDaysAfterHistory(shanghai, lastEvent, new Date('2026-10-15T19:00:00Z'))).toBe(1);
    // 16 October 01:00 in Shanghai: it has not, though the UTC date is still the 15th either way.
    expect(reviewDaysAfterHistory(shanghai, lastEvent, new Date('2026-10-15T17:00:00Z'))).toBe(0);
  });
  it('is never negative, and counts every night since the export', () => {
    expect(reviewDaysAfterHistory(shanghai, lastEvent, new Date('2026-10-15T07:00:00Z'))).toBe(0);
    expect(reviewDaysAfterHistory(shanghai, lastEvent, new Date('2026-11-14T07:00:00Z'))).toBe(30);
  });
});

describe('importedProfile', () => {
  const replayed: UserProfile = {
    userId: 'u1',
    tier: 'member',
    tierSince: '2026-10-01T03:00:00.000Z',
    tierEnteredBy: 'promotion',
    version: 7,
    attributes: {},
    journey: { executionName: 'member-abc', tier: 'member', startedAt: '2026-10-01T03:00:00.000Z' },
    pendingJourney: { stopExecutionNames: ['visitor-x'] },
    pendingNotices: [],
    outboxVersion: 7,
    outboxRetryAt: '2026-10-02',
    outboxLease: { owner: 'o', until: '2026-10-01T03:01:00.000Z' },
  };
  it('is quiet by default: no running journey named and no outbox left to flush', () => {
    const profile = importedProfile(replayed, undefined);
    expect(profile).toEqual({
      userId: 'u1',
      tier: 'member',
      tierSince: '2026-10-01T03:00:00.000Z',
      tierEnteredBy: 'promotion',
      version: 7,
      attributes: {},
    });
  });
  it("with journeys started, names the tier's run under the live name, started now", () => {
    const profile = importedProfile(replayed, { startedAt: new Date('2026-11-26T10:00:00.000Z') });
    expect(profile.journey).toEqual({ executionName: 'member-abc', tier: 'member', startedAt: '2026-11-26T10:00:00.000Z' });
    expect(profile.tierSince).toBe(replayed.tierSince);
  });
});

describe('importedDays', () => {
  it("keeps a light day's keys in the day, and gives a heavy day the keys guarded on its date", () => {
    const days = importedDays(
      [
        { date: '2026-10-02', counters: { n_a: 20 }, eventKeys: new Set(), heavy: true, signals: ['s@1'] },
        { date: '2026-10-01', counters: { n_a: 2 }, eventKeys: new Set(['k2', 'k1']) },
      ],
      new Map([
        ['k9', '2026-10-02'],
        ['k8', '2026-10-02'],
        ['k1x', '2026-09-30'],
      ]),
    );
    expect(days).toEqual([
      { date: '2026-10-01', counters: { n_a: 2 }, eventKeys: ['k1', 'k2'], heavy: false, guardKeys: [] },
      { date: '2026-10-02', counters: { n_a: 20 }, eventKeys: [], heavy: true, guardKeys: ['k8', 'k9'], signals: ['s@1'] },
    ]);
  });
});
