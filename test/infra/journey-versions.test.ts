/**
 * Journey versions and aliases in the synthesized template: every deploy publishes the journey machine's revision
 * as a version (kept when a later deploy replaces it), a `live` alias points at it, and ingest and the review start
 * executions on the alias only. The synth skips bundling (the template is what matters) but keeps cdk-nag on.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journeyVersion } from '../../functions/core/journey/compile-journey.js';
import type { ProjectFiles } from '../../functions/core/ruleset.js';
import { ENV } from '../../functions/handlers/runtime.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { PROJECT_ROOT, buildApp } from '../../infra/app.js';
import { JOURNEY_ALIAS_NAME, type StrataStack } from '../../infra/strata-stack.js';

type Resources = Record<string, { Type: string; Properties: Record<string, any>; UpdateReplacePolicy?: string; DeletionPolicy?: string }>;

let outdir: string;
let projectFiles: ProjectFiles;
let stack: StrataStack;
let template: Template;
let resources: Resources;
let validationFindings: unknown[];

const logicalIdOf = (construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId((construct.node.defaultChild ?? construct) as never);
const idOfCfn = (element: unknown): string => stack.getLogicalId(element as never);

beforeAll(async () => {
  projectFiles = await readProjectFiles(PROJECT_ROOT);
  outdir = mkdtempSync(join(tmpdir(), 'strata-cdk-versions-'));
  const built = buildApp({ projectFiles, context: { 'aws:cdk:bundling-stacks': [] }, outdir });
  stack = built.stack;
  // Throws if any cdk-nag finding (the new resources' included) is not acknowledged.
  built.app.synth();
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: Array<{ violations?: unknown[] }> };
  validationFindings = report.pluginReports.flatMap((plugin) => plugin.violations ?? []);
  template = Template.fromJSON(JSON.parse(readFileSync(join(outdir, `${stack.stackName}.template.json`), 'utf8')));
  resources = template.toJSON().Resources as Resources;
}, 120_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('journey versions and aliases', () => {
  it('adds no validation findings (cdk-nag and the template checks)', () => {
    expect(validationFindings).toEqual([]);
  });

  it("publishes each journey machine's revision as a version, kept when a later deploy replaces it", () => {
    const tiers = Object.keys(stack.journeyMachines);
    expect(tiers.length).toBeGreaterThan(0);
    template.resourceCountIs('AWS::StepFunctions::StateMachineVersion', tiers.length);
    for (const tier of tiers) {
      const machineId = logicalIdOf(stack.journeyMachines[tier]!);
      const version = resources[idOfCfn(stack.journeyTargets[tier]!.version)]!;
      expect(version.Type).toBe('AWS::StepFunctions::StateMachineVersion');
      // A new revision id (any change to the definition) replaces the version resource: one version per deploy.
      expect(version.Properties).toEqual({
        StateMachineArn: { Ref: machineId },
        StateMachineRevisionId: { 'Fn::GetAtt': [machineId, 'StateMachineRevisionId'] },
        Description: `Strata journey "${stack.ruleset.journeys[tier]!.id}" version ${journeyVersion(stack.ruleset.journeys[tier]!)}`,
      });
      // The replaced version stays, so a rollback has somewhere to go.
      expect(version.UpdateReplacePolicy).toBe('Retain');
      expect(version.DeletionPolicy).toBe('RetainExceptOnCreate');
    }
  });

  it("points a live alias at this deploy's version, and outputs its ARN for the rollback command", () => {
    for (const [tier, target] of Object.entries(stack.journeyTargets)) {
      const aliasId = idOfCfn(target.alias);
      expect(resources[aliasId]!.Properties).toMatchObject({
        Name: JOURNEY_ALIAS_NAME,
        RoutingConfiguration: [{ StateMachineVersionArn: { 'Fn::GetAtt': [idOfCfn(target.version), 'Arn'] }, Weight: 100 }],
      });
      const outputs = template.findOutputs('*', { Value: { 'Fn::GetAtt': [aliasId, 'Arn'] } });
      expect(Object.keys(outputs), tier).toHaveLength(1);
    }
  });

  it('starts executions on the alias: the functions get alias ARNs, and StartExecution only with its qualifier', () => {
    const aliasArns = Object.fromEntries(
      Object.entries(stack.journeyTargets).map(([tier, target]) => [tier, { 'Fn::GetAtt': [idOfCfn(target.alias), 'Arn'] }]),
    );
    for (const fn of [stack.ingestFunction, stack.reviewFunction]) {
      const variables = resources[logicalIdOf(fn.function)]!.Properties['Environment'].Variables as Record<string, unknown>;
      const resolved = JSON.stringify(variables[ENV.journeyStateMachines]);
      for (const arn of Object.values(aliasArns)) expect(resolved).toContain(JSON.stringify(arn['Fn::GetAtt']));
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: logicalIdOf(fn.function.role as never) }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Action: 'states:StartExecution',
              Effect: 'Allow',
              Resource: Object.values(stack.journeyMachines).map((machine) => ({ Ref: logicalIdOf(machine) })),
              Condition: { StringEquals: { 'states:StateMachineQualifier': [JOURNEY_ALIAS_NAME] } },
            },
          ]),
        },
      });
    }
  });
});
