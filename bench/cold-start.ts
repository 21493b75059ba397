/**
 * Cold start of the ingest function: the bundle built the way infra/strata-function.ts has the CDK build it
 * (esbuild, minified, CommonJS, Node on Lambda, the AWS SDK left to the runtime, the project files baked in), and
 * the time a fresh Node process takes to load it and build the handler, as the Lambda runtime does at init.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import type { ProjectFiles } from '../functions/core/ruleset.js';
import { ENV, PROJECT_FILES_GLOBAL } from '../functions/handlers/runtime.js';
import { median } from './stats.js';

export interface ColdStartResult {
  bundleBytes: number;
  importMsMedian: number;
  importMsSamples: number[];
}

const IMPORT_SCRIPT = `const t = process.hrtime.bigint(); const m = require('./index.js'); if (typeof m.handler !== 'function') throw new Error('no handler'); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));`;

export async function measureColdStart(projectRoot: string, files: ProjectFiles, runs = 10): Promise<ColdStartResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'strata-bench-bundle-'));
  try {
    const output = await build({
      entryPoints: [join(projectRoot, 'functions', 'handlers', 'ingest.ts')],
      bundle: true,
      minify: true,
      sourcemap: false,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      mainFields: ['module', 'main'],
      external: ['@aws-sdk/*'],
      define: { [PROJECT_FILES_GLOBAL]: JSON.stringify(files) },
      write: false,
      logLevel: 'silent',
    });
    const code = output.outputFiles[0]!.contents;
    writeFileSync(join(scratch, 'index.js'), code);
    const bundleBytes = statSync(join(scratch, 'index.js')).size;
    const env = {
      PATH: process.env['PATH'] ?? '',
      // The Lambda runtime provides the AWS SDK; here it comes from the project's node_modules.
      NODE_PATH: join(resolve(projectRoot), 'node_modules'),
      AWS_REGION: 'us-east-1',
      POWERTOOLS_METRICS_DISABLED: 'true',
      [ENV.tableName]: 'strata',
      [ENV.reviewShardCount]: '16',
      [ENV.eventBusName]: 'strata-bus',
      [ENV.deadLetterQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq',
      [ENV.tallyQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/123456789012/tallies',
      [ENV.metricsNamespace]: 'Strata/Strata',
      [ENV.journeyStateMachines]: JSON.stringify({ member: 'arn:aws:states:us-east-1:123456789012:stateMachine:Member' }),
    };
    const importMsSamples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const stdout = execFileSync(process.execPath, ['--no-warnings', '-e', IMPORT_SCRIPT], { cwd: scratch, encoding: 'utf8', env });
      importMsSamples.push(Math.round(Number(stdout) * 10) / 10);
    }
    return { bundleBytes, importMsMedian: median(importMsSamples), importMsSamples };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
