/**
 * The module-level `handler` of each Lambda entry: built once at module load from the env and the ruleset baked
 * into the bundle, failing the cold start with a clear message when either is wrong, and harmless to import
 * anywhere else (the embedded stack and the tests use the factories).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../functions/handlers/runtime.js';
import { testProjectFiles, testTiers, testTiersFile } from '../helpers/fixtures.js';
import { journeyDocument } from '../helpers/journey-fixtures.js';

const ENTRIES = {
  ingest: () => import('../../functions/handlers/ingest.js'),
  review: () => import('../../functions/handlers/review.js'),
  'journey-step': () => import('../../functions/handlers/journey-step.js'),
} as const;

const projectFiles = testProjectFiles({
  tiers: testTiersFile({ tiers: testTiers({ member: { journey: 'journeys/member.json' } }) }),
  extra: { 'journeys/member.json': JSON.stringify(journeyDocument()) },
});

const FULL_ENV = {
  [ENV.tableName]: 'strata-table',
  [ENV.reviewShardCount]: '16',
  [ENV.journeyStateMachines]: JSON.stringify({ member: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Member' }),
  [ENV.eventBusName]: 'strata-bus',
  [ENV.deadLetterQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
  [ENV.tallyQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/tallies',
  [ENV.metricsNamespace]: 'Strata/Strata-test',
  AWS_REGION: 'eu-west-1',
};

function bake(files: Record<string, string> | undefined): void {
  if (files) globalThis.__STRATA_PROJECT_FILES__ = files;
  else delete (globalThis as { __STRATA_PROJECT_FILES__?: unknown }).__STRATA_PROJECT_FILES__;
}

// Each test loads the entry afresh (vi.resetModules), so error classes are the fresh module's: match by name.
beforeEach(() => {
  vi.resetModules();
});
afterEach(() => {
  bake(undefined);
  vi.unstubAllEnvs();
});

describe.each(Object.entries(ENTRIES))('the %s entry', (name, load) => {
  it('outside a bundle, imports cleanly and explains itself when called', async () => {
    bake(undefined);
    const module = await load();
    await expect(module.handler(undefined as never)).rejects.toMatchObject({
      name: 'HandlerOutsideBundleError',
      message: expect.stringContaining(name),
    });
  });

  it('in a bundle, is built once at module load from the env', async () => {
    bake(projectFiles);
    for (const [key, value] of Object.entries(FULL_ENV)) vi.stubEnv(key, value);
    const module = await load();
    expect(typeof module.handler).toBe('function');
  });

  it('fails the cold start when an env var is missing or wrong', async () => {
    bake(projectFiles);
    for (const [key, value] of Object.entries(FULL_ENV)) vi.stubEnv(key, value);
    vi.stubEnv(ENV.tableName, '');
    await expect(load()).rejects.toMatchObject({ name: 'MissingEnvironmentError', message: expect.stringContaining(ENV.tableName) });
    vi.resetModules();
    vi.stubEnv(ENV.tableName, 'strata-table');
    vi.stubEnv(ENV.reviewShardCount, 'sixteen');
    await expect(load()).rejects.toMatchObject({ name: 'InvalidEnvironmentError', message: expect.stringContaining(ENV.reviewShardCount) });
    // Each stage's metrics go to its own namespace, so a handler without one refuses to start.
    vi.resetModules();
    vi.stubEnv(ENV.reviewShardCount, '16');
    vi.stubEnv(ENV.metricsNamespace, '');
    await expect(load()).rejects.toMatchObject({ name: 'MissingEnvironmentError', message: expect.stringContaining(ENV.metricsNamespace) });
    // A handler that may stop a journey must have somewhere to queue its tally.
    vi.resetModules();
    vi.stubEnv(ENV.metricsNamespace, 'Strata/Strata-test');
    vi.stubEnv(ENV.tallyQueueUrl, '');
    await expect(load()).rejects.toMatchObject({ name: 'MissingEnvironmentError', message: expect.stringContaining(ENV.tallyQueueUrl) });
  });

  it('fails the cold start when the baked-in rules are broken, naming the file', async () => {
    bake({ ...projectFiles, 'rules/active.json': '{ "conditions": ' });
    for (const [key, value] of Object.entries(FULL_ENV)) vi.stubEnv(key, value);
    await expect(load()).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringContaining('rules/active.json') });
  });
});
