/**
 * The CDK app: reads the project (rules/ and journeys/) and the stage settings, builds the stack, and checks it
 * with cdk-nag's AwsSolutions pack, where any unacknowledged finding fails the synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { fileURLToPath } from 'node:url';
import { readProjectFiles } from '../functions/local/project-files.js';
import type { ProjectFiles } from '../functions/core/ruleset.js';
import { readStageSettings } from './stage-settings.js';
import { StrataStack } from './strata-stack.js';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DEFAULT_STACK_NAME = 'Strata';

export interface BuildAppOptions {
  projectRoot?: string;
  projectFiles: ProjectFiles;
  /** Extra context (tests pass stage settings here, or `aws:cdk:bundling-stacks` to skip bundling). */
  context?: Record<string, unknown>;
  outdir?: string;
}

/** The app and its stack, with cdk-nag attached; `app.synth()` runs the checks. */
export function buildApp(options: BuildAppOptions): { app: App; stack: StrataStack } {
  const app = new App({ ...(options.context ? { context: options.context } : {}), ...(options.outdir ? { outdir: options.outdir } : {}) });
  const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? DEFAULT_STACK_NAME;
  const stack = new StrataStack(app, stackName, {
    projectRoot: options.projectRoot ?? PROJECT_ROOT,
    projectFiles: options.projectFiles,
    settings: readStageSettings(app.node),
    description: 'Strata: tiered user operations (events, tiers, journeys, nightly review)',
    // Environment-agnostic on purpose: one template deploys to any account and region of a stage.
  });
  // cdk-nag 3 is a validation plugin (Aspects no longer work): findings are reported after synthesis, and any
  // that is not acknowledged with a reason fails it.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

// Run as the CDK entry point (cdk.json "app"), not when imported by tests.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { app } = buildApp({ projectFiles: await readProjectFiles(PROJECT_ROOT) });
  app.synth();
}
