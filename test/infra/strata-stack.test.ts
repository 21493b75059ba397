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
import type { StrataStack } from '../../infra/strata-stack.js';

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

/** The ingest function's bundled asset in the cloud assembly. */
const ingestBundle = (): string => {
  const code = resources[logicalIdOf(stack.ingestFunction.function)]!.Properties['Code'] as { S3Key: string };
  return join(outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`, 'index.js');
};
const ofType = (type: string): Array<[string, Resources[string]]> => Object.entries(resources).filter(([, r]) => r.Type === type);
const ref = (logicalId: string) => ({ Ref: logicalId });
const logicalIdOf = (construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId((construct.node.defaultChild ?? construct) as never);

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
      const definition = JSON.parse(properties['DefinitionString'] as string) as { Comment: string; States: Record<string, { Type: string; Resource?: string }> };
      expect(definition.Comment).toContain(`"${journey.id}"`);
      const tasks = Object.values(definition.States).filter((state) => state.Type === 'Task');
      expect(tasks.length).toBeGreaterThan(0);
      for (const task of tasks) expect(task.Resource).toBe('${JourneyStepFunctionArn}');
      expect(properties['DefinitionSubstitutions']).toEqual({
        JourneyStepFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.journeyStepFunction.function), 'Arn'] },
      });
    }
  });

  it('logs every state machine at ALL without execution data, with tracing on', () => {
    for (const [id, machine] of ofType('AWS::StepFunctions::StateMachine')) {
      expect(machine.Properties['LoggingConfiguration'], id).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
      expect(machine.Properties['TracingConfiguration'], id).toEqual({ Enabled: true });
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

  it('reviews by a Map over shards (inline, not one child per user) with the configured concurrency', () => {
    const reviewDefinition = JSON.stringify(resources[logicalIdOf(stack.reviewMachine)]!.Properties['DefinitionString']);
    expect(reviewDefinition).toContain('\\"Type\\":\\"Map\\"');
    expect(reviewDefinition).toContain('\\"ItemsPath\\":\\"$.plan.shards\\"');
    expect(reviewDefinition).toContain('\\"MaxConcurrency\\":6');
    expect(reviewDefinition).toContain('\\"Mode\\":\\"INLINE\\"');
    expect(reviewDefinition).not.toContain('DISTRIBUTED');
    // The checkpoint step comes after the Map, so it only runs once every shard has succeeded.
    expect(reviewDefinition).toMatch(/ReviewEachShard.*\\"Next\\":\\"AdvanceCheckpoint\\"/);
  });
});

describe('nightly schedule', () => {
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

  it('defaults the time zone to the ruleset\'s', () => {
    expect(readStageSettings(new App().node).reviewTimeZone).toBeUndefined();
    expect(stack.ruleset.timezone).toBeTruthy();
  });
});

describe('event bus', () => {
  const busId = (): string => logicalIdOf(stack.bus);

  it('lets only the listed accounts put events, and only the listed sources', () => {
    const policies = ofType('AWS::Events::EventBusPolicy').map(([, policy]) => policy.Properties['Statement'] as Record<string, any>);
    // CDK prefixes the statement ids of bus policies with "cdk-".
    const bySid = Object.fromEntries(policies.map((statement) => [String(statement['Sid']).replace(/^cdk-/, ''), statement]));
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

  it('routes user events (not Strata\'s own) to the ingest queue, even without a userId or eventId, so they get a dead letter', () => {
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

  it('alarms on the depth of each dead-letter queue', () => {
    for (const queue of [stack.ingestDeadLetterQueue, stack.scheduleDeadLetterQueue]) {
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

  it('has point-in-time recovery', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
    });
  });
});

describe('IAM', () => {
  const statements = (): Array<{ policy: string; Effect: string; Action: string | string[]; Resource: unknown }> =>
    ofType('AWS::IAM::Policy').flatMap(([policy, resource]) =>
      (resource.Properties['PolicyDocument'].Statement as Array<Record<string, any>>).map((statement) => ({ policy, ...statement }) as { policy: string; Effect: string; Action: string | string[]; Resource: unknown }),
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
    const senders = statements().filter((statement) => actionsOf(statement).includes('sqs:SendMessage') && JSON.stringify(statement.Resource).includes(dlqId));
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
    const env = (fn: { function: unknown }) => resources[logicalIdOf(fn.function as never)]!.Properties['Environment'].Variables as Record<string, unknown>;
    expect(Object.keys(env(stack.ingestFunction)).sort()).toEqual(
      [ENV.deadLetterQueueUrl, ENV.eventBusName, ENV.journeyStateMachines, ENV.reviewShardCount, ENV.tableName].sort(),
    );
    expect(Object.keys(env(stack.reviewFunction)).sort()).toEqual([ENV.eventBusName, ENV.journeyStateMachines, ENV.reviewShardCount, ENV.tableName].sort());
    expect(Object.keys(env(stack.journeyStepFunction)).sort()).toEqual([ENV.eventBusName, ENV.reviewShardCount, ENV.tableName].sort());
    expect(env(stack.ingestFunction)[ENV.reviewShardCount]).toBe('12');
    // Only the review reads the review index.
    const indexReaders = statements().filter((statement) => JSON.stringify(statement.Resource).includes(`/index/${TABLE_KEYS.reviewIndexName}`));
    expect(indexReaders.map((statement) => statement.policy)).toEqual([logicalIdOf(stack.reviewFunction.role.node.findChild('DefaultPolicy') as never)]);
  });
});

describe('functions', () => {
  it('run on Node.js 22 or later, on arm64', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions).toHaveLength(3);
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

  it('loads the bundle as Lambda would: the baked-in ruleset parses and the handler is built at module load', () => {
    // Outside the repository (whose package.json says "type": "module") and with only the AWS SDK to resolve,
    // as in the Lambda runtime.
    const scratch = mkdtempSync(join(tmpdir(), 'strata-bundle-'));
    try {
      copyFileSync(ingestBundle(), join(scratch, 'index.js'));
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
    ).toMatchObject({ allowedSources: ['a.app', 'b.crm'], allowedAccounts: ['111122223333'], reviewShards: 32, reviewSchedule: 'cron(15 1 * * ? *)' });
  });

  it('reports every problem at once, naming the key', () => {
    let error: unknown;
    try {
      settingsFrom({ allowedSources: ['strata.tiers'], allowedAccounts: ['12'], reviewTimeZone: 'Mars/Olympus', logRetentionDays: 10, reviewSchedule: 'cron(0 3 * * *)' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(StageSettingsError);
    const problems = (error as StageSettingsError).problems.join('\n');
    for (const key of ['allowedSources', 'allowedAccounts', 'reviewTimeZone', 'logRetentionDays', 'reviewSchedule']) expect(problems).toContain(`${key}:`);
  });
});
