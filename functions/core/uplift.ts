/**
 * The difference between two conversion rates with a 95 % interval: Newcombe's hybrid score method (method 10 in
 * Newcombe 1998), built on each group's Wilson score interval. It behaves at rates near 0 and with small groups,
 * where the plain normal approximation gives intervals that leave [0, 1]. Pure, so that the replay report and
 * production reporting compute the same numbers.
 */

/** Below this many users in either group the interval is too wide to say anything; report "too few to tell". */
export const MIN_GROUP_SIZE = 30;

/** The normal quantile for a two-sided 95 % interval. */
const Z_95 = 1.959963984540054;

export interface Proportion {
  successes: number;
  trials: number;
}

export interface Interval {
  low: number;
  high: number;
}

export interface RateDifference extends Interval {
  /** rate(a) − rate(b), as a fraction. */
  difference: number;
}

export function wilsonInterval({ successes, trials }: Proportion, z = Z_95): Interval {
  if (trials <= 0) return { low: 0, high: 1 };
  const p = successes / trials;
  const z2 = z * z;
  const centre = p + z2 / (2 * trials);
  const spread = z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  const denominator = 1 + z2 / trials;
  return { low: Math.max(0, (centre - spread) / denominator), high: Math.min(1, (centre + spread) / denominator) };
}

export function newcombeDifference(a: Proportion, b: Proportion, z = Z_95): RateDifference {
  const pa = a.trials > 0 ? a.successes / a.trials : 0;
  const pb = b.trials > 0 ? b.successes / b.trials : 0;
  const ia = wilsonInterval(a, z);
  const ib = wilsonInterval(b, z);
  const difference = pa - pb;
  return {
    difference,
    low: difference - Math.sqrt((pa - ia.low) ** 2 + (ib.high - pb) ** 2),
    high: difference + Math.sqrt((ia.high - pa) ** 2 + (pb - ib.low) ** 2),
  };
}

/** The treated − held-out difference, or undefined when either group is under MIN_GROUP_SIZE users. */
export function conversionDifference(treated: Proportion, heldOut: Proportion): RateDifference | undefined {
  if (treated.trials < MIN_GROUP_SIZE || heldOut.trials < MIN_GROUP_SIZE) return undefined;
  return newcombeDifference(treated, heldOut);
}
