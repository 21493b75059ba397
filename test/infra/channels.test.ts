/**
 * Delivery channels in the template: one connection, API destination and rule per channel with an endpoint,
 * each with the channel's rate limit, the target's retry policy and the dead-letter queue, the secret read from
 * Secrets Manager, and the body template as an input transformer. The project is the shipped one plus the
 * README's worked examples (examples/channels/channels.json); the synth runs cdk-nag, without bundling.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS_FILE } from '../../functions/core/channels.js';
import { ConfigError } from '../../functions/core/errors.js';
import { readProjectFiles } from '../../functions/local/project-files.js';
import type { ProjectFiles } from '../../functions/core/ruleset.js';
import { PROJECT_ROOT, buildApp } from '../../infra/app.js';
import type { StrataStack } from '../../infra/strata-stack.js';

const examples = JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'channels', 'channels.json'), 'utf8')) as { channels: Record<string, any> };
const DELIVERING = Object.keys(examples.channels);

let outdir: string;
let template: Template;
let stack: StrataStack;
let projectFiles: ProjectFiles;

/** The logical id of the CloudFormation resource of one type inside a construct. */
function cfnIdOf(construct: IConstruct, type: string): string {
  const resource = construct.node.findAll().find((c) => (c as { cfnResourceType?: string }).cfnResourceType === type);
  if (!resource) throw new Error(`no ${type} under ${construct.node.path}`);
  return stack.getLogicalId(resource as never);
}

function withExamples(files: ProjectFiles, extra: Record<string, unknown> = {}): ProjectFiles {
  const shipped = JSON.parse(files[CHANNELS_FILE]!);
  return { ...files, [CHANNELS_FILE]: JSON.stringify({ channels: { ...shipped.channels, ...examples.channels, ...extra } }) };
}

beforeAll(async () => {
  projectFiles = await readProjectFiles(PROJECT_ROOT);
  outdir = mkdtempSync(join(tmpdir(), 'strata-cdk-channels-'));
  const built = buildApp({ projectFiles: withExamples(projectFiles), context: { 'aws:cdk:bundling-stacks': [] }, outdir });
  stack = built.stack;
  built.app.synth(); // throws on any unacknowledged cdk-nag finding
  template = Template.fromStack(stack);
}, 120_000);

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('delivery channels in the stack', () => {
  it('has one connection, API destination and rule per channel with an endpoint, none for log-only channels', () => {
    template.resourceCountIs('AWS::Events::Connection', DELIVERING.length);
    template.resourceCountIs('AWS::Events::ApiDestination', DELIVERING.length);
    expect(Object.keys(stack.channelDestinations.channels).sort()).toEqual([...DELIVERING].sort());
  });

  it("puts each channel's rate limit on its API destination, tied to its own connection", () => {
    for (const name of DELIVERING) {
      const { connection, destination } = stack.channelDestinations.channels[name]!;
      const connectionId = cfnIdOf(connection, 'AWS::Events::Connection');
      template.hasResource('AWS::Events::ApiDestination', {
        Properties: Match.objectLike({
          InvocationEndpoint: examples.channels[name].endpoint,
          HttpMethod: 'POST',
          InvocationRateLimitPerSecond: examples.channels[name].rateLimitPerSecond,
          ConnectionArn: { 'Fn::GetAtt': [connectionId, 'Arn'] },
        }),
      });
      expect(cfnIdOf(destination, 'AWS::Events::ApiDestination')).toMatch(/Channels/);
    }
  });

  it('keeps the secrets in the connections, read from Secrets Manager at deploy', () => {
    const resolve = (name: string) => `{{resolve:secretsmanager:${name}:SecretString:::}}`;
    template.hasResourceProperties('AWS::Events::Connection', {
      AuthorizationType: 'API_KEY',
      AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: 'X-Api-Key', ApiKeyValue: resolve('strata/sms-api-key') } },
    });
    template.hasResourceProperties('AWS::Events::Connection', {
      AuthParameters: Match.objectLike({
        InvocationHttpParameters: { QueryStringParameters: [{ Key: 'key', Value: resolve('strata/wecom-robot-key'), IsValueSecret: true }] },
      }),
    });
    const text = JSON.stringify(template.toJSON());
    expect(text).not.toMatch(/WECOM_ROBOT_KEY|SMS_API_KEY/);
  });

  it("routes each channel's JourneyActions to it with a retry policy, the DLQ and the rendered body", () => {
    const dlq = stack.getLogicalId(stack.channelDestinations.deadLetterQueue!.node.defaultChild as never);
    const input = new Capture();
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['strata.journeys'], 'detail-type': ['JourneyAction'], detail: { channel: ['sms'] } },
      Targets: [
        Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
          InputTransformer: input,
        }),
      ],
    });
    const transformer = input.asObject() as { InputPathsMap: Record<string, string>; InputTemplate: string };
    expect(transformer.InputPathsMap).toMatchObject({ 'detail-userId': '$.detail.userId', 'detail-actionId': '$.detail.actionId' });
    // A whole-value placeholder keeps its JSON type; `test` is a plain false in AWS, where no send is a test.
    expect(transformer.InputTemplate).toContain('"externalUserId":<detail-userId>');
    expect(transformer.InputTemplate).toContain('"sandbox":false');
    for (const name of DELIVERING) {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: Match.objectLike({ detail: { channel: [name] } }),
        Targets: [
          Match.objectLike({ RetryPolicy: Match.objectLike({ MaximumRetryAttempts: Match.anyValue() }), DeadLetterConfig: Match.anyValue() }),
        ],
      });
    }
    const wecom = new Capture();
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ detail: { channel: ['wecom-group'] } }),
      Targets: [Match.objectLike({ InputTransformer: wecom })],
    });
    expect((wecom.asObject() as { InputTemplate: string }).InputTemplate).toContain(
      '"content":"New for <@<detail-userId>>: [<detail-templateId>](https://learn.example.com/c/<detail-templateId>)"',
    );
  });

  it('alarms on the channel dead-letter queue, to the alarm topic', () => {
    const dlq = stack.getLogicalId(stack.channelDestinations.deadLetterQueue!.node.defaultChild as never);
    const topic = stack.getLogicalId(stack.alarmTopic.node.defaultChild as never);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
      AlarmActions: [{ Ref: topic }],
    });
  });

  it('sends every alarm, the channel ones included, to the alarm topic, and draws the channel dead letters', () => {
    const topic = stack.getLogicalId(stack.alarmTopic.node.defaultChild as never);
    const alarms = Object.entries(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const [id, alarm] of alarms) expect(alarm['Properties']['AlarmActions'], id).toEqual([{ Ref: topic }]);
    const dlq = stack.getLogicalId(stack.channelDestinations.deadLetterQueue!.node.defaultChild as never);
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(JSON.stringify(dashboard)).toContain(JSON.stringify({ 'Fn::GetAtt': [dlq, 'QueueName'] }));
  });

  it('refuses an http:// endpoint at synth, naming the channel', () => {
    const files = withExamples(projectFiles, { plain: { endpoint: 'http://hooks.example.com/x' } });
    expect(() =>
      buildApp({ projectFiles: files, context: { 'aws:cdk:bundling-stacks': [] }, outdir: mkdtempSync(join(tmpdir(), 'strata-cdk-http-')) }),
    ).toThrow(ConfigError);
  });

  it('the shipped project (log-only channels) has no API destination', async () => {
    const plain = buildApp({ projectFiles, context: { 'aws:cdk:bundling-stacks': [] }, outdir: mkdtempSync(join(tmpdir(), 'strata-cdk-plain-')) });
    Template.fromStack(plain.stack).resourceCountIs('AWS::Events::ApiDestination', 0);
  });
});
