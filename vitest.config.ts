import { defineConfig } from 'vitest/config';

// `npm run test:soak` runs ten times more property cases (test/helpers/property-runs.ts), so their tests get ten
// times the time: a soak run should fail on a counterexample, never on the clock.
const soak = Boolean(process.env['STRATA_SOAK']);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: soak ? 600_000 : 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
