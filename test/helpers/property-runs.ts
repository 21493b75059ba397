/** Property tests run a bounded number of cases in CI and ten times more under `npm run test:soak`. */
export function propertyRuns(ciRuns: number): number {
  return process.env['STRATA_SOAK'] ? ciRuns * 10 : ciRuns;
}
