/**
 * Wilson intervals and Newcombe's difference interval, checked against the worked examples in Newcombe (1998),
 * "Interval estimation for the difference between independent proportions", Statistics in Medicine 17, table II.
 */
import { describe, expect, it } from 'vitest';
import { MIN_GROUP_SIZE, conversionDifference, newcombeDifference, wilsonInterval } from '../../functions/core/uplift.js';

describe('wilsonInterval', () => {
  it('matches the published intervals', () => {
    // Newcombe 1998 (single proportion paper, table I): 81/263 → 0.2553 to 0.3662; 0/20 → 0 to 0.1611.
    const a = wilsonInterval({ successes: 81, trials: 263 });
    expect([a.low, a.high].map((v) => v.toFixed(4))).toEqual(['0.2553', '0.3662']);
    const b = wilsonInterval({ successes: 0, trials: 20 });
    expect([b.low, b.high].map((v) => v.toFixed(4))).toEqual(['0.0000', '0.1611']);
  });
});

describe('newcombeDifference', () => {
  it('matches the published method-10 intervals', () => {
    // Table II: 56/70 − 48/80, 9/10 − 3/10, 6/7 − 2/7 and 5/56 − 0/29 (an interval across 0).
    const cases: Array<[number, number, number, number, string, string]> = [
      [56, 70, 48, 80, '0.0524', '0.3339'],
      [9, 10, 3, 10, '0.1705', '0.8090'],
      [6, 7, 2, 7, '0.0582', '0.8062'],
      [5, 56, 0, 29, '-0.0381', '0.1926'],
    ];
    for (const [sa, na, sb, nb, low, high] of cases) {
      const d = newcombeDifference({ successes: sa, trials: na }, { successes: sb, trials: nb });
      expect([d.low.toFixed(4), d.high.toFixed(4)]).toEqual([low, high]);
    }
  });

  it('says nothing below the minimum group size', () => {
    expect(conversionDifference({ successes: 3, trials: MIN_GROUP_SIZE - 1 }, { successes: 1, trials: 400 })).toBeUndefined();
    expect(conversionDifference({ successes: 3, trials: 400 }, { successes: 1, trials: MIN_GROUP_SIZE })).toBeDefined();
  });
});
