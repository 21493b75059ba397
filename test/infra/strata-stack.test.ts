/**
 * The CDK stack, by targeted assertions on the synthesized template (never a whole-template snapshot).
 *
 * The app is synthesized once, with real esbuild bundling and the cdk-nag plugin, exactly as `cdk synth` does;
 * a second, bundling-free synth proves that the nag plugin really fails a non-compliant resource.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import { App } from 'aws-cdk-lib';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TABLE_KEYS } from '../../functions/aws/table-schema.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import type { ProjectFiles } from '../../functions/core/ruleset.js';
import { ENV } from '../../functions/handlers/runtime.js';
import { PROJECT_ROOT, buildApp } from '../../infra/app.js';
import { DEFAULT_STAGE_SETTINGS, StageSettingsError, readStageSettings } from '../../infra/stage-settings.js';
import { busStatementId, metricsNamespaceOf } from '../../infra/stage-names.js';
import { INGEST_QUEUE_AGE_ALARM, type StrataStack, TALLY_QUEUE_AGE_ALARM } from '../../infra/strata-stack.js';
import { LAMBDA_TRANSIENT_ERRORS, MIN_LAMBDA_RETRY_WINDOW_SECONDS, retryWindowSeconds } from '../../functions/core/lambda-task-retry.js';
import { REVIEW_USERS_FAILED_METRIC } from '../../functions/handlers/review.js';
import type { StrataFunction } from '../../infra/strata-function.js';
import { ANALYTICS_DIMENSIONS, ANALYTICS_METRICS } from '../../functions/core/analytics-metrics.js';
import { isSendStep } from '../../functions/core/journey/journey-schema.js';
import { REJUDGE_FIXED_TRANSITIONS, REJUDGE_TRANSITIONS_PER_PAUSE, REJUDGE_TRANSITIONS_PER_SEGMENT } from '../../bench/rejudge.js';

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;

const STAGE_CONTEXT = {
  allowedSources: ['com.example.app', 'com.example.crm'],
  allowedAccounts: ['111122223333', '444455556666'],
  reviewSchedule: 'cron(0 3 * * ? *)',
  reviewTimeZone: 'Europe/Berlin',
  reviewMapConcurrency: 6,
  reviewShards: 12,
  logRetentionDays: 14,
};

let outdir: string;
let projectFiles: ProjectFiles;
let stack: StrataStack;
let template: Template;
let resources: Resources;
let synthSeconds: number;

/** A function's bundled asset in the cloud assembly (the ingest function's by default). */
const ingestBundle = (fn: StrataFunction = stack.ingestFunction): string => {
  const code = resources[logicalIdOf(fn.function)]!.Properties['Code'] as { S3Key: string };
  return join(outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`, 'index.js');
};
const ofType = (type: string): Array<[string, Resources[string]]> => Object.entries(resources).filter(([, r]) => r.Type === type);
const ref = (logicalId: string) => ({ Ref: logicalId });
const logicalIdOf = (construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId((construct.node.defaultChild ?? construct) as never);

interface AslState {
  Type: string;
  Resource?: string;
  Retry?: Array<{
    ErrorEquals: string[];
    IntervalSeconds?: number;
    MaxAttempts?: number;
    BackoffRate?: number;
    MaxDelaySeconds?: number;
    JitterStrategy?: string;
  }>;
  Next?: string;
  InputPath?: string;
  Choices?: Array<{ Variable: string; IsPresent?: boolean; Next: string }>;
  Default?: string;
  ItemProcessor?: { StartAt: string; States: Record<string, AslState> };
}
/** A state machine's ASL, with every CloudFormation reference in it replaced by a placeholder. */
const definitionOf = (
  machine: { node: { defaultChild?: unknown } },
  from: Resources = resources,
): { StartAt: string; States: Record<string, AslState> } => {
  const body = from[logicalIdOf(machine)]!.Properties['DefinitionString'] as string | { 'Fn::Join': [string, unknown[]] };
  const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'REF')).join('');
  return JSON.parse(text) as { StartAt: string; States: Record<string, AslState> };
};
/** The settings each test synth shares with the main one, with bundling skipped (the template is the point). */
const templateFor = (context: Record<string, unknown>): { template: Template; stack: StrataStack } => {
  const scratch = mkdtempSync(join(tmpdir(), 'strata-cdk-stage-'));
  try {
    const built = buildApp({ projectFiles, context: { ...STAGE_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context }, outdir: scratch });
    built.app.synth();
    return {
      template: Template.fromJSON(JSON.parse(readFileSync(join(scratch, `${built.stack.stackName}.template.json`), 'utf8'))),
      stack: built.stack,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
};

beforeAll(async () => {
  projectFiles = await readProjectFiles(PROJECT_ROOT);
  outdir = mkdtempSync(join(tmpdir(), 'strata-cdk-'));
  const started = Date.now();
  const built = buildApp({ projectFiles, context: STAGE_CONTEXT, outdir });
  stack = built.stack;
  // Throws (in-memory synth) if any cdk-nag finding is not acknowledged.
  built.app.synth();
  synthSeconds = (Date.now() - started) / 1000;
  template = Template.fromJSON(JSON.parse(readFileSync(join(outdir, `${stack.stackName}.template.json`), 'utf8')));
  resources = template.toJSON().Resources as Resources;
}, 120_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('cdk-nag (AwsSolutions as a validation plugin)', () => {
  it('reports no findings for the stack', () => {
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: Array<{ violations?: unknown[] }> };
    const violations = report.pluginReports.flatMap((plugin) => plugin.violations ?? []);
    expect(violations).toEqual([]);
  });

  it('fails the synth on an unacknowledged finding (the plugin is really on)', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'strata-cdk-nag-'));
    try {
      // No bundling here: the check is about the template, and bundling is what makes a synth slow.
      const { app, stack: other } = buildApp({ projectFiles, context: { 'aws:cdk:bundling-stacks': [] }, outdir: scratch });
      new Queue(other, 'QueueWithoutSsl');
      expect(() => app.synth()).toThrow(/AwsSolutions-SQS4/);
      const report = readFileSync(join(scratch, 'validation-report.json'), 'utf8');
      expect(report).toContain('AwsSolutions-SQS4');
      expect(report).toContain('QueueWithoutSsl');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('state machines', () => {
  const journeyFiles = (): string[] => Object.keys(projectFiles).filter((file) => file.startsWith('journeys/'));

  it('has one Standard state machine per journey file, plus the review machine', () => {
    expect(journeyFiles().length).toBeGreaterThan(0);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', journeyFiles().length + 1);
    for (const file of journeyFiles()) {
      const journey = JSON.parse(projectFiles[file]!) as { id: string; tier: string };
      const machine = stack.journeyMachines[journey.tier];
      expect(machine, `state machine for ${file}`).toBeDefined();
      const properties = resources[logicalIdOf(machine!)]!.Properties;
      expect(properties['StateMachineType']).toBe('STANDARD');
      // Compiled from the journey JSON, with every Task's resource substituted by the journey-step function.
      const definition = JSON.parse(properties['DefinitionString'] as string) as {
        Comment: string;
        States: Record<string, { Type: string; Resource?: string }>;
      };
      expect(definition.Comment).toContain(`"${journey.id}"`);
      const tasks = Object.values(definition.States).filter((state) => state.Type === 'Task');
      expect(tasks.length).toBeGreaterThan(0);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation definitionSubstitutions placeholder, not a JS template
      for (const task of tasks) expect(task.Resource).toBe('${JourneyStepFunctionArn}');
      expect(properties['DefinitionSubstitutions']).toEqual({
        JourneyStepFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.journeyStepFunction.function), 'Arn'] },
      });
    }
  });

  it('logs journeys at ERROR and the review at ALL, never with execution data, with tracing on', () => {
    for (const [id, machine] of ofType('AWS::StepFunctions::StateMachine')) {
      const level = id === logicalIdOf(stack.reviewMachine) ? 'ALL' : 'ERROR';
      expect(machine.Properties['LoggingConfiguration'], id).toMatchObject({ Level: level, IncludeExecutionData: false });
      expect(machine.Properties['TracingConfiguration'], id).toEqual({ Enabled: true });
    }
    expect(Object.keys(stack.journeyMachines).length).toBeGreaterThan(0);
  });

  it('names each state-machine log group for this stack instance, and deletes it when its creation rolls back', () => {
    const groups = template.findResources('AWS::Logs::LogGroup', { Properties: { LogGroupName: Match.anyValue() } });
    expect(Object.keys(groups)).toHaveLength(Object.keys(stack.journeyMachines).length + 1);
    for (const [id, group] of Object.entries(groups)) {
      // Unique to this creation of the stack (from its stack id), so a redeploy after a failed first deploy or a
      // destroy never meets a retained group of the same name.
      const name = JSON.stringify(group['Properties'].LogGroupName);
      expect(name, id).toContain('/aws/vendedlogs/states/');
      expect(name, id).toContain('"Ref":"AWS::StackId"');
      expect(group['DeletionPolicy'], id).toBe('RetainExceptOnCreate');
    }
  });

  it('lets each journey machine invoke only the journey-step function', () => {
    const stepArn = { 'Fn::GetAtt': [logicalIdOf(stack.journeyStepFunction.function), 'Arn'] };
    for (const machine of Object.values(stack.journeyMachines)) {
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [ref(logicalIdOf(machine.role as never))],
        PolicyDocument: { Statement: Match.arrayWith([{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: stepArn }]) },
      });
    }
  });

  it('retries throttling and lost sandboxes in every review and re-judge Task for at least 15 minutes, before anything else', () => {
    const { States: top } = definitionOf(stack.reviewMachine);
    const inner = [top['ReviewEachShard']!, top['RejudgeEachSegment']!].flatMap((map) => Object.values(map.ItemProcessor!.States));
    const tasks = [...Object.values(top), ...inner].filter((state) => state.Type === 'Task');
    expect(tasks).toHaveLength(7);
    for (const task of tasks) {
      const first = task.Retry![0]!;
      expect(first.ErrorEquals).toEqual(
        expect.arrayContaining(['Lambda.TooManyRequestsException', 'Lambda.ClientExecutionTimeoutException', 'Lambda.Unknown', 'Sandbox.Timedout']),
      );
      expect(first.ErrorEquals).toEqual([...LAMBDA_TRANSIENT_ERRORS]);
      expect(first.BackoffRate).toBeGreaterThan(1);
      expect(retryWindowSeconds(first as Parameters<typeof retryWindowSeconds>[0])).toBeGreaterThanOrEqual(MIN_LAMBDA_RETRY_WINDOW_SECONDS);
    }
  });

  it('loops a shard on the cursor its step returns, until the step returns none', () => {
    const { States: states } = definitionOf(stack.reviewMachine).States['ReviewEachShard']!.ItemProcessor!;
    expect(states['ReviewShard']!.Next).toBe('ShardPaused');
    const choice = states['ShardPaused']!;
    expect(choice.Choices).toEqual([{ Variable: '$.next', IsPresent: true, Next: 'ResumeShard' }]);
    expect(states[choice.Default!]!.Type).toBe('Succeed');
    expect(states['ResumeShard']).toMatchObject({ Type: 'Pass', InputPath: '$.next', Next: 'ReviewShard' });
  });

  it('reviews by a Map over shards (inline, not one child per user) with the configured concurrency', () => {
    const reviewDefinition = JSON.stringify(resources[logicalIdOf(stack.reviewMachine)]!.Properties['DefinitionString']);
    expect(reviewDefinition).toContain('\\"Type\\":\\"Map\\"');
    expect(reviewDefinition).toContain('\\"ItemsPath\\":\\"$.plan.shards\\"');
    expect(reviewDefinition).toContain('\\"MaxConcurrency\\":6');
    expect(reviewDefinition).toContain('\\"Mode\\":\\"INLINE\\"');
    expect(reviewDefinition).not.toContain('DISTRIBUTED');
    // The tally count and then the checkpoint step come after the Map, so they only run once every shard has succeeded.
    const { States: states } = definitionOf(stack.reviewMachine);
    expect(states['ReviewEachShard']!.Next).toBe('CountTallies');
  });

  it('counts the journey tallies after the shards and before the checkpoint, looping while the step returns `next`', () => {
    const { States: states } = definitionOf(stack.reviewMachine);
    expect(states['CountTallies']).toMatchObject({ Type: 'Task', Next: 'TalliesLeft', ResultPath: '$.tallies' });
    expect(JSON.stringify(states['CountTallies'])).toContain('"step":"countTallies"');
    // The execution's id owns the count's lease: a second review run at the same time leaves the queue to the first.
    expect(JSON.stringify(states['CountTallies'])).toContain('"owner.$":"$$.Execution.Id"');
    expect(states['TalliesLeft']!.Choices).toEqual([{ Variable: '$.tallies.next', IsPresent: true, Next: 'CountTallies' }]);
    expect(states['TalliesLeft']!.Default).toBe('AdvanceCheckpoint');
    // Any failure is retried too (after the Lambda retry): a rerun drops what the failed run stored.
    expect(states['CountTallies']!.Retry!.map((retry) => retry.ErrorEquals)).toContainEqual(['States.ALL']);
  });
});

describe('re-judge after a ruleset change', () => {
  /** The review machine's ASL with each CloudFormation reference replaced by the logical id it names. */
  const reviewDefinitionByLogicalId = (): { StartAt: string; States: Record<string, AslState & Record<string, any>> } => {
    const body = resources[logicalIdOf(stack.reviewMachine)]!.Properties['DefinitionString'] as { 'Fn::Join': [string, unknown[]] };
    const text = body['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : ((part as { 'Fn::GetAtt'?: [string] })['Fn::GetAtt']?.[0] ?? 'REF')))
      .join('');
    return JSON.parse(text);
  };

  it('runs first in the nightly review: plan, and only when the version is new a Map over Scan segments, then complete', () => {
    const { StartAt, States: states } = reviewDefinitionByLogicalId();
    expect(StartAt).toBe('PlanRejudge');
    expect(states['PlanRejudge']).toMatchObject({ Type: 'Task', Parameters: { step: 'plan' }, ResultPath: '$.rejudge', Next: 'RejudgeNeeded' });
    expect(states['RejudgeNeeded']).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.rejudge.needed', BooleanEquals: true, Next: 'RejudgeEachSegment' }],
      Default: 'PlanReview',
    });
    expect(states['RejudgeEachSegment']).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.rejudge.segments',
      MaxConcurrency: STAGE_CONTEXT.reviewMapConcurrency,
      ItemSelector: { step: 'segment', 'segment.$': '$$.Map.Item.Value' },
      ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' } },
      Next: 'CompleteRejudge',
    });
    expect(states['CompleteRejudge']).toMatchObject({ Type: 'Task', Parameters: { step: 'complete' }, Next: 'PlanReview' });
    // The re-judge's tasks call the re-judge function, the review's the review function.
    const rejudgeArn = logicalIdOf(stack.rejudgeFunction.function);
    const reviewArn = logicalIdOf(stack.reviewFunction.function);
    const inner = states['RejudgeEachSegment']!.ItemProcessor!.States;
    for (const task of [states['PlanRejudge']!, states['CompleteRejudge']!, inner['RejudgeSegment']!]) expect(task.Resource).toBe(rejudgeArn);
    for (const task of [states['PlanReview']!, states['AdvanceCheckpoint']!]) expect(task.Resource).toBe(reviewArn);
  });

  it('loops a segment on the `next` its step returns, and retries any failure (a rerun resumes at the stored cursor)', () => {
    const { States: states } = reviewDefinitionByLogicalId().States['RejudgeEachSegment']!.ItemProcessor!;
    expect(states['RejudgeSegment']!.Next).toBe('SegmentPaused');
    expect(states['SegmentPaused']!.Choices).toEqual([{ Variable: '$.next', IsPresent: true, Next: 'ResumeSegment' }]);
    expect(states['ResumeSegment']).toMatchObject({ Type: 'Pass', InputPath: '$.next', Next: 'RejudgeSegment' });
    expect(states['RejudgeSegment']!.Retry!.map((retry) => retry.ErrorEquals)).toEqual([[...LAMBDA_TRANSIENT_ERRORS], ['States.ALL']]);
  });

  it('still reviews the night when the re-judge fails, then fails the execution so the review alarm fires', () => {
    const { States: states } = reviewDefinitionByLogicalId();
    for (const id of ['RejudgeEachSegment', 'CompleteRejudge']) {
      expect(states[id]!['Catch']).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.rejudgeFailure', Next: 'PlanReview' }]);
    }
    expect(states['AdvanceCheckpoint']!.Next).toBe('RejudgeFailed');
    expect(states['AlreadyReviewed']!.Next).toBe('RejudgeFailed');
    expect(states['RejudgeFailed']!.Choices).toEqual([{ Variable: '$.rejudgeFailure', IsPresent: true, Next: 'ReviewedButRejudgeFailed' }]);
    expect(states['ReviewedButRejudgeFailed']).toMatchObject({ Type: 'Fail', Error: 'Strata.RejudgeFailed' });
    expect(states[states['RejudgeFailed']!.Default!]!.Type).toBe('Succeed');
  });

  it("prices in the bench exactly the states a run enters (bench/rejudge.ts's transition counts)", () => {
    const { States: states } = reviewDefinitionByLogicalId();
    const rejudgeStates = ['PlanRejudge', 'RejudgeNeeded', 'RejudgeEachSegment', 'CompleteRejudge'];
    for (const id of rejudgeStates) expect(states[id], id).toBeDefined();
    expect(REJUDGE_FIXED_TRANSITIONS).toBe(rejudgeStates.length);
    // A segment enters its loop's states once each but the resume; each pause enters them again but the end.
    const inner = Object.keys(states['RejudgeEachSegment']!.ItemProcessor!.States).sort();
    expect(inner).toEqual(['RejudgeSegment', 'ResumeSegment', 'SegmentDone', 'SegmentPaused']);
    expect(REJUDGE_TRANSITIONS_PER_SEGMENT).toBe(inner.filter((id) => id !== 'ResumeSegment').length);
    expect(REJUDGE_TRANSITIONS_PER_PAUSE).toBe(inner.filter((id) => id !== 'SegmentDone').length);
  });

  it('gives the re-judge function the table (with Scan, which nothing else may do), the bus and the journeys', () => {
    const env = resources[logicalIdOf(stack.rejudgeFunction.function)]!.Properties['Environment'].Variables as Record<string, unknown>;
    expect(Object.keys(env).sort()).toEqual(
      [ENV.eventBusName, ENV.journeyStateMachines, ENV.metricsNamespace, ENV.reviewShardCount, ENV.tableName, ENV.tallyQueueUrl].sort(),
    );
    const scanners = ofType('AWS::IAM::Policy').filter(([, policy]) =>
      (policy.Properties['PolicyDocument'].Statement as Array<{ Action: string | string[] }>).some((statement) =>
        [statement.Action].flat().includes('dynamodb:Scan'),
      ),
    );
    expect(scanners.map(([id]) => id)).toEqual([logicalIdOf(stack.rejudgeFunction.role.node.findChild('DefaultPolicy') as never)]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('re-judge'),
      Timeout: 900,
      Environment: { Variables: Match.objectLike({ [ENV.tableName]: ref(logicalIdOf(stack.table)) }) },
    });
  });
});

describe('dashboard', () => {
  const body = (): string => {
    const [dashboard, ...others] = ofType('AWS::CloudWatch::Dashboard');
    expect(others).toEqual([]);
    const text = dashboard![1].Properties['DashboardBody'] as { 'Fn::Join': [string, unknown[]] };
    return text['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : JSON.stringify(part))).join('');
  };
  /** The SEARCH of one analytics metric, as the dashboard writes it (JSON-escaped inside the body). */
  const search = (metricName: string, where: string): string =>
    `SEARCH('Namespace=\\"${metricsNamespaceOf(stack.stackName)}\\" MetricName=\\"${metricName}\\" ${where.replaceAll('"', '\\"')}'`;

  it('is named after the stack, so two stages in one account keep apart', () => {
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: stack.stackName });
  });

  it('draws the census, entries and exits of every tier of the ruleset', () => {
    const text = body();
    expect(stack.ruleset.tiers.length).toBeGreaterThan(1);
    for (const tier of stack.ruleset.tiers) {
      expect(text).toContain(`${search(ANALYTICS_METRICS.tierCensus, `Tier="${tier.id}"`)}, 'Maximum', 86400`);
      expect(text).toContain(`${search(ANALYTICS_METRICS.tierEntered, `Tier="${tier.id}"`)}, 'Sum', 86400`);
      expect(text).toContain(`${search(ANALYTICS_METRICS.tierLeft, `Tier="${tier.id}"`)}, 'Sum', 86400`);
    }
  });

  it("draws each journey's funnel: entered, held out, exited, conversions treated and held out, sent and deferred per send step", () => {
    const text = body();
    const journeys = Object.values(stack.ruleset.journeys);
    expect(journeys.length).toBeGreaterThan(0);
    for (const journey of journeys) {
      for (const metric of [
        ANALYTICS_METRICS.journeyEntered,
        ANALYTICS_METRICS.journeyHeldOut,
        ANALYTICS_METRICS.journeyExited,
        ANALYTICS_METRICS.journeyConversionsTreated,
        ANALYTICS_METRICS.journeyConversionsHeldOut,
      ]) {
        expect(text).toContain(search(metric, `Journey="${journey.id}"`));
      }
      const sendSteps = journey.steps.filter(isSendStep);
      expect(sendSteps.length).toBeGreaterThan(0);
      for (const step of sendSteps) {
        for (const metric of [ANALYTICS_METRICS.journeySent, ANALYTICS_METRICS.journeyDeferred]) {
          expect(text).toContain(search(metric, `Journey="${journey.id}" Step="${step.id}"`));
        }
      }
      // Wait and branch steps send nothing, so they get no line.
      for (const step of journey.steps.filter((step) => !isSendStep(step))) expect(text).not.toContain(`Step=\\"${step.id}\\"`);
    }
  });

  it('uses no dimension but Tier, Journey and Step for the analytics metrics', () => {
    const dimensions = [...body().matchAll(/MetricName=\\"(\w+)\\"((?: \w+=\\"[^\\]+\\")+)/g)].flatMap(([, , terms]) =>
      [...terms!.matchAll(/ (\w+)=/g)].map(([, name]) => name),
    );
    expect(dimensions.length).toBeGreaterThan(0);
    expect(new Set(dimensions)).toEqual(new Set(Object.values(ANALYTICS_DIMENSIONS)));
  });

  it('draws dead letters, queue age, review duration and review failures', () => {
    const text = body();
    // References are spliced into the body's strings, so they appear quoted.
    const queueName = (queue: Queue) => `"QueueName","${JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(queue), 'QueueName'] })}"`;
    for (const queue of [stack.ingestDeadLetterQueue, stack.scheduleDeadLetterQueue]) {
      expect(text).toContain(`"AWS/SQS","ApproximateNumberOfMessagesVisible",${queueName(queue)}`);
      expect(text).toContain(`"AWS/SQS","ApproximateAgeOfOldestMessage",${queueName(queue)}`);
    }
    expect(text).toContain(`"AWS/SQS","ApproximateAgeOfOldestMessage",${queueName(stack.ingestQueue)}`);
    const review = `"StateMachineArn","${JSON.stringify(ref(logicalIdOf(stack.reviewMachine)))}"`;
    for (const metric of ['ExecutionTime', 'ExecutionsFailed', 'ExecutionsTimedOut']) {
      expect(text).toContain(`"AWS/States","${metric}",${review}`);
    }
    expect(text).toContain(`"${metricsNamespaceOf(stack.stackName)}","${REVIEW_USERS_FAILED_METRIC}","service","strata-review"`);
  });
});

describe('nightly schedule', () => {
  it('runs at 03:30 by default: 02:30 does not exist on spring-forward nights, and Scheduler skips it', () => {
    expect(DEFAULT_STAGE_SETTINGS.reviewSchedule).toBe('cron(30 3 * * ? *)');
    expect(JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.reviewSchedule).toBe('cron(30 3 * * ? *)');
  });

  it('starts the review machine on the configured cron and time zone, with a dead-letter queue', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: ref(logicalIdOf(stack.reviewMachine)),
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalIdOf(stack.scheduleDeadLetterQueue), 'Arn'] } },
      },
    });
  });

  it("defaults the time zone to the ruleset's", () => {
    expect(readStageSettings(new App().node).reviewTimeZone).toBeUndefined();
    expect(stack.ruleset.timezone).toBeTruthy();
  });
});

describe('event bus', () => {
  const busId = (): string => logicalIdOf(stack.bus);

  it('lets only the listed accounts put events, and only the listed sources', () => {
    const policies = ofType('AWS::Events::EventBusPolicy').map(([, policy]) => policy.Properties['Statement'] as Record<string, any>);
    // CDK prefixes the statement ids of bus policies with "cdk-".
    const prefix = `cdk-${stack.stackName}-`;
    const bySid = Object.fromEntries(policies.map((statement) => [String(statement['Sid']).replace(prefix, ''), statement]));
    expect(Object.keys(bySid).sort()).toEqual(['AllowListedAccounts', 'DenyStrataSourcesFromOtherAccounts', 'DenyUnlistedSources']);

    const allow = bySid['AllowListedAccounts']!;
    expect(allow['Effect']).toBe('Allow');
    expect(allow['Action']).toBe('events:PutEvents');
    expect(JSON.stringify(allow['Principal'])).toContain('111122223333');
    expect(JSON.stringify(allow['Principal'])).toContain('444455556666');
    expect(allow['Condition']).toEqual({ StringEquals: { 'events:source': ['com.example.app', 'com.example.crm'] } });

    expect(bySid['DenyUnlistedSources']).toMatchObject({
      Effect: 'Deny',
      Condition: { StringNotEquals: { 'events:source': ['com.example.app', 'com.example.crm', 'strata.tiers', 'strata.journeys'] } },
    });
    expect(bySid['DenyStrataSourcesFromOtherAccounts']).toMatchObject({ Effect: 'Deny', Condition: { StringLike: { 'events:source': 'strata.*' } } });
    // Nothing is open to everyone.
    for (const statement of Object.values(bySid)) {
      if (statement['Effect'] === 'Allow') expect(statement['Principal']).not.toBe('*');
    }
    for (const [, policy] of ofType('AWS::Events::EventBusPolicy')) expect(policy.Properties['EventBusName']).toEqual(ref(busId()));
  });

  it('lets two stages live in one account: bus statement ids and metric namespaces differ by stack', () => {
    const stages = ['Strata-staging', 'Strata-prod'].map((stackName) => templateFor({ stackName }));
    const statementIds = stages.map(({ template: stage }) =>
      Object.values(stage.findResources('AWS::Events::EventBusPolicy')).map((policy) => policy['Properties'].StatementId as string),
    );
    expect(statementIds[0]).toHaveLength(3);
    expect(statementIds[0]!.filter((id) => statementIds[1]!.includes(id))).toEqual([]);
    for (const [i, { stack: stage }] of stages.entries()) {
      for (const id of statementIds[i]!) expect(id.startsWith(`cdk-${stage.stackName}-`)).toBe(true);
    }
    const namespaces = stages.map(({ template: stage }) => {
      const values = new Set(
        Object.values(stage.findResources('AWS::Lambda::Function')).map(
          (fn) => fn['Properties'].Environment.Variables[ENV.metricsNamespace] as string,
        ),
      );
      expect(values.size).toBe(1);
      return [...values][0];
    });
    expect(namespaces).toEqual(['Strata/Strata-staging', 'Strata/Strata-prod']);
  }, 120_000);

  it("keeps derived statement ids within CloudFormation's 64 characters, and unique, for long stack names", () => {
    const long = 'Strata-' + 'x'.repeat(100);
    const ids = [busStatementId(long + 'a', 'DenyStrataSourcesFromOtherAccounts'), busStatementId(long + 'b', 'DenyStrataSourcesFromOtherAccounts')];
    for (const id of ids) expect(`cdk-${id}`.length).toBeLessThanOrEqual(64);
    expect(ids[0]).not.toBe(ids[1]);
    expect(metricsNamespaceOf('Strata')).toBe('Strata/Strata');
  });

  it("routes user events (not Strata's own) to the ingest queue, even without a userId or eventId, so they get a dead letter", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: ref(busId()),
      EventPattern: Match.exact({ source: [{ 'anything-but': { prefix: 'strata.' } }] }),
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalIdOf(stack.ingestQueue), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalIdOf(stack.ingestDeadLetterQueue), 'Arn'] } },
        }),
      ],
    });
  });

  it('outputs the bus name and ARN', () => {
    const name = new Capture();
    template.hasOutput('EventBusName', { Value: name });
    expect(name.asObject()).toEqual(ref(busId()));
    template.hasOutput('EventBusArn', { Value: { 'Fn::GetAtt': [busId(), 'Arn'] } });
  });
});

describe('queues and alarms', () => {
  it('encrypts every queue and refuses plain HTTP', () => {
    for (const [id, queue] of ofType('AWS::SQS::Queue')) expect(queue.Properties['SqsManagedSseEnabled'], id).toBe(true);
    const sslDenied = ofType('AWS::SQS::QueuePolicy').filter(([, policy]) =>
      JSON.stringify(policy.Properties['PolicyDocument']).includes('"aws:SecureTransport":"false"'),
    );
    expect(sslDenied).toHaveLength(ofType('AWS::SQS::Queue').length);
  });

  it('gives the ingest queue a DLQ and feeds ingest in batches of 10 with partial failures', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [logicalIdOf(stack.ingestDeadLetterQueue), 'Arn'] }, maxReceiveCount: Match.anyValue() },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.ingestQueue), 'Arn'] },
      FunctionName: ref(logicalIdOf(stack.ingestFunction.function)),
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('keeps user events 14 days in the ingest queue and its dead-letter queue', () => {
    for (const queue of [stack.ingestQueue, stack.ingestDeadLetterQueue]) {
      expect(resources[logicalIdOf(queue)]!.Properties['MessageRetentionPeriod']).toBe(14 * 24 * 3600);
    }
  });

  it('caps how many ingest functions the queue runs at once', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.ingestQueue), 'Arn'] },
      ScalingConfig: { MaximumConcurrency: DEFAULT_STAGE_SETTINGS.ingestMaxConcurrency },
    });
  });

  it('alarms when the oldest user event has waited too long for ingest', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(stack.ingestQueue), 'QueueName'] } }],
      Threshold: INGEST_QUEUE_AGE_ALARM.toSeconds(),
    });
  });

  it("alarms on users the nightly review could not review, in this stack's namespace", () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: metricsNamespaceOf(stack.stackName),
      MetricName: REVIEW_USERS_FAILED_METRIC,
      Dimensions: [{ Name: 'service', Value: 'strata-review' }],
      Threshold: 0,
    });
  });

  it('sends every alarm to the alarm topic', () => {
    const topicRef = ref(logicalIdOf(stack.alarmTopic));
    const alarms = ofType('AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThanOrEqual(Object.keys(stack.journeyMachines).length + 7);
    for (const [id, alarm] of alarms) expect(alarm.Properties['AlarmActions'], id).toEqual([topicRef]);
    // Only over TLS.
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    // No email unless one is configured.
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('subscribes the alarmEmail address to the alarm topic', () => {
    const { template: withEmail, stack: other } = templateFor({ alarmEmail: 'ops@example.com' });
    withEmail.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: other.getLogicalId(other.alarmTopic.node.defaultChild as never) },
    });
  }, 120_000);

  it('keeps journey tallies 14 days, with a DLQ, and alarms when one has waited past the nightly count', () => {
    const queue = resources[logicalIdOf(stack.tallyQueue)]!.Properties;
    expect(queue['MessageRetentionPeriod']).toBe(14 * 24 * 3600);
    expect(resources[logicalIdOf(stack.tallyDeadLetterQueue)]!.Properties['MessageRetentionPeriod']).toBe(14 * 24 * 3600);
    expect(queue['RedrivePolicy']).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [logicalIdOf(stack.tallyDeadLetterQueue), 'Arn'] },
      maxReceiveCount: expect.any(Number),
    });
    expect(queue['RedrivePolicy'].maxReceiveCount).toBeGreaterThanOrEqual(5);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(stack.tallyQueue), 'QueueName'] } }],
      Threshold: TALLY_QUEUE_AGE_ALARM.toSeconds(),
      AlarmActions: [ref(logicalIdOf(stack.alarmTopic))],
    });
    template.hasOutput('TallyQueueUrl', { Value: ref(logicalIdOf(stack.tallyQueue)) });
  });

  it('gives the tally queue to the functions that end or stop journeys, and lets only the review receive and delete', () => {
    const tallyQueueUrl = ref(logicalIdOf(stack.tallyQueue));
    const tallyQueueArn = { 'Fn::GetAtt': [logicalIdOf(stack.tallyQueue), 'Arn'] };
    const functions = [stack.journeyStepFunction, stack.ingestFunction, stack.reviewFunction, stack.rejudgeFunction];
    for (const fn of functions) {
      const env = resources[logicalIdOf(fn.function)]!.Properties['Environment'].Variables as Record<string, unknown>;
      expect(env[ENV.tallyQueueUrl], fn.node.id).toEqual(tallyQueueUrl);
    }
    const statementsOn = (fn: StrataFunction): Array<{ Action: string | string[]; Resource: unknown }> =>
      (
        resources[logicalIdOf(fn.role.node.findChild('DefaultPolicy') as never)]!.Properties['PolicyDocument'].Statement as Array<{
          Action: string | string[];
          Resource: unknown;
        }>
      ).filter((statement) => JSON.stringify(statement.Resource) === JSON.stringify(tallyQueueArn));
    for (const fn of functions) {
      const actions = statementsOn(fn).flatMap((statement) => [statement.Action].flat());
      expect(actions, fn.node.id).toContain('sqs:SendMessage');
      if (fn === stack.reviewFunction)
        expect(actions).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']));
      else expect(actions, fn.node.id).not.toContain('sqs:ReceiveMessage');
    }
  });

  it('alarms on the depth of each dead-letter queue', () => {
    for (const queue of [stack.ingestDeadLetterQueue, stack.scheduleDeadLetterQueue, stack.tallyDeadLetterQueue]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(queue), 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      });
    }
  });

  it('alarms on failed executions of each state machine', () => {
    for (const machine of [...Object.values(stack.journeyMachines), stack.reviewMachine]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/States',
        MetricName: 'ExecutionsFailed',
        Dimensions: [{ Name: 'StateMachineArn', Value: ref(logicalIdOf(machine)) }],
        Threshold: 0,
      });
    }
  });
});

describe('table', () => {
  it('has the key layout of table-schema.ts, on demand, with TTL', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: TABLE_KEYS.timeToLiveAttribute, Enabled: true },
    });
  });

  it('has the sparse review GSI (reviewPk + pk, keys only)', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      GlobalSecondaryIndexes: [
        {
          IndexName: TABLE_KEYS.reviewIndexName,
          KeySchema: [
            { AttributeName: TABLE_KEYS.reviewPartitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE_KEYS.reviewSortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    });
  });

  it('is protected from deletion', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      Replicas: [Match.objectLike({ DeletionProtectionEnabled: true })],
    });
  });

  it('has point-in-time recovery', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
    });
  });
});

describe('IAM', () => {
  const statements = (): Array<{ policy: string; Effect: string; Action: string | string[]; Resource: unknown }> =>
    ofType('AWS::IAM::Policy').flatMap(([policy, resource]) =>
      (resource.Properties['PolicyDocument'].Statement as Array<Record<string, any>>).map(
        (statement) => ({ policy, ...statement }) as { policy: string; Effect: string; Action: string | string[]; Resource: unknown },
      ),
    );
  const actionsOf = (statement: { Action: string | string[] }): string[] => [statement.Action].flat();

  it('never grants a wildcard action on the table', () => {
    const tableId = logicalIdOf(stack.table);
    const onTable = statements().filter((statement) => JSON.stringify(statement.Resource).includes(tableId));
    expect(onTable.length).toBeGreaterThan(0);
    for (const statement of onTable) {
      for (const action of actionsOf(statement)) expect(action, statement.policy).not.toContain('*');
      // And never a wildcard resource such as the table's `/index/*`.
      expect(JSON.stringify(statement.Resource), statement.policy).not.toContain('*');
    }
  });

  it('lets ingest send a refused event to its dead-letter queue itself (with the reason), and no other function', () => {
    const dlqId = logicalIdOf(stack.ingestDeadLetterQueue);
    const senders = statements().filter(
      (statement) => actionsOf(statement).includes('sqs:SendMessage') && JSON.stringify(statement.Resource).includes(dlqId),
    );
    expect(senders.map((statement) => statement.policy)).toEqual([logicalIdOf(stack.ingestFunction.role.node.findChild('DefaultPolicy') as never)]);
    const ingestEnv = resources[logicalIdOf(stack.ingestFunction.function)]!.Properties['Environment'].Variables as Record<string, unknown>;
    expect(ingestEnv[ENV.deadLetterQueueUrl]).toEqual(ref(dlqId));
  });

  it('grants no wildcard action anywhere', () => {
    for (const statement of statements()) {
      for (const action of actionsOf(statement)) expect(action, statement.policy).not.toMatch(/\*/);
    }
  });

  it('sets each env var and its grant together (bindTable and friends)', () => {
    const env = (fn: { function: unknown }) =>
      resources[logicalIdOf(fn.function as never)]!.Properties['Environment'].Variables as Record<string, unknown>;
    expect(Object.keys(env(stack.ingestFunction)).sort()).toEqual(
      [
        ENV.deadLetterQueueUrl,
        ENV.eventBusName,
        ENV.journeyStateMachines,
        ENV.metricsNamespace,
        ENV.reviewShardCount,
        ENV.tableName,
        ENV.tallyQueueUrl,
      ].sort(),
    );
    expect(Object.keys(env(stack.reviewFunction)).sort()).toEqual(
      [ENV.eventBusName, ENV.journeyStateMachines, ENV.metricsNamespace, ENV.reviewShardCount, ENV.tableName, ENV.tallyQueueUrl].sort(),
    );
    expect(Object.keys(env(stack.journeyStepFunction)).sort()).toEqual(
      [ENV.eventBusName, ENV.metricsNamespace, ENV.reviewShardCount, ENV.tableName, ENV.tallyQueueUrl].sort(),
    );
    expect(env(stack.ingestFunction)[ENV.reviewShardCount]).toBe('12');
    // Only the review reads the review index.
    const indexReaders = statements().filter((statement) => JSON.stringify(statement.Resource).includes(`/index/${TABLE_KEYS.reviewIndexName}`));
    expect(indexReaders.map((statement) => statement.policy)).toEqual([
      logicalIdOf(stack.reviewFunction.role.node.findChild('DefaultPolicy') as never),
    ]);
  });
});

describe('functions', () => {
  it('run on Node.js 22 or later, on arm64', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions).toHaveLength(4);
    for (const [id, fn] of functions) {
      const version = Number(/^nodejs(\d+)\./.exec(fn.Properties['Runtime'])?.[1]);
      expect(version, id).toBeGreaterThanOrEqual(22);
      expect(fn.Properties['Architectures'], id).toEqual(['arm64']);
    }
  });

  it('bundles the ingest handler for real: minified, rules baked in, the AWS SDK left to the runtime', () => {
    const bundle = ingestBundle();
    const text = readFileSync(bundle, 'utf8');
    const bytes = statSync(bundle).size;
    // Minified: long lines (the few line breaks left are inside string literals).
    expect(bytes / text.split('\n').length).toBeGreaterThan(500);
    expect(text).toContain('rules/tiers.json');
    expect(text).not.toContain('node_modules/@aws-sdk/client-dynamodb');
    expect(readdirSync(dirname(bundle))).toEqual(['index.js']);
    console.info(`ingest bundle: ${bytes} bytes (${(bytes / 1024).toFixed(0)} KiB) minified; synth with bundling took ${synthSeconds.toFixed(1)} s`);
  });

  it.each(['ingest', 'rejudge'] as const)('loads the %s bundle as Lambda would: the baked-in rules parse, the handler is built', (name) => {
    // Outside the repository (whose package.json says "type": "module") and with only the AWS SDK to resolve,
    // as in the Lambda runtime.
    const scratch = mkdtempSync(join(tmpdir(), 'strata-bundle-'));
    try {
      copyFileSync(ingestBundle(name === 'ingest' ? stack.ingestFunction : stack.rejudgeFunction), join(scratch, 'index.js'));
      const stdout = execFileSync(process.execPath, ['--no-warnings', '-e', "process.stdout.write(typeof require('./index.js').handler)"], {
        cwd: scratch,
        encoding: 'utf8',
        env: {
          PATH: process.env['PATH'] ?? '',
          NODE_PATH: join(PROJECT_ROOT, 'node_modules'),
          AWS_REGION: 'eu-west-1',
          [ENV.tableName]: 'strata',
          [ENV.reviewShardCount]: '12',
          [ENV.eventBusName]: 'strata-bus',
          [ENV.deadLetterQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
          [ENV.tallyQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/tallies',
          [ENV.metricsNamespace]: 'Strata/Strata',
          [ENV.journeyStateMachines]: JSON.stringify({ member: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Member' }),
        },
      });
      expect(stdout).toBe('function');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  // DESIGN.md budgets the ingest bundle at 600 KB minified. The core must import zod as `import * as z from 'zod'`:
  // `import { z } from 'zod'` defeats esbuild's tree shaking and bundles every zod locale (about 645 KB).
  it('keeps the ingest bundle within the 600 KB design budget', () => {
    expect(statSync(ingestBundle()).size).toBeLessThanOrEqual(600 * 1024);
  });
});

describe('stage settings', () => {
  const settingsFrom = (context: Record<string, unknown>) => readStageSettings(new App({ context }).node);

  it('has defaults for everything', () => {
    expect(settingsFrom({})).toEqual(DEFAULT_STAGE_SETTINGS);
  });

  it('accepts -c strings: comma lists, JSON lists, digits, bare cron fields', () => {
    expect(
      settingsFrom({ allowedSources: 'a.app, b.crm', allowedAccounts: '["111122223333"]', reviewShards: '32', reviewSchedule: '15 1 * * ? *' }),
    ).toMatchObject({
      allowedSources: ['a.app', 'b.crm'],
      allowedAccounts: ['111122223333'],
      reviewShards: 32,
      reviewSchedule: 'cron(15 1 * * ? *)',
    });
  });

  it('reports every problem at once, naming the key', () => {
    let error: unknown;
    try {
      settingsFrom({
        allowedSources: ['strata.tiers'],
        allowedAccounts: ['12'],
        reviewTimeZone: 'Mars/Olympus',
        logRetentionDays: 10,
        reviewSchedule: 'cron(0 3 * * *)',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(StageSettingsError);
    const problems = (error as StageSettingsError).problems.join('\n');
    for (const key of ['allowedSources', 'allowedAccounts', 'reviewTimeZone', 'logRetentionDays', 'reviewSchedule'])
      expect(problems).toContain(`${key}:`);
  });

  it('checks the alarm email and the ingest concurrency', () => {
    expect(settingsFrom({ alarmEmail: 'ops@example.com', ingestMaxConcurrency: '50' })).toMatchObject({
      alarmEmail: 'ops@example.com',
      ingestMaxConcurrency: 50,
    });
    expect(() => settingsFrom({ alarmEmail: 'ops at example' })).toThrow(/alarmEmail: "ops at example" is not an email address/);
    expect(() => settingsFrom({ ingestMaxConcurrency: 1 })).toThrow(/ingestMaxConcurrency: must be a whole number from 2 to 1000/);
  });
});
