/**
 * Delivery channels in AWS: for each channel of channels.json with an endpoint, an EventBridge connection (which
 * holds the secret, read from Secrets Manager at deploy), an API destination (with the channel's rate limit) and
 * a rule on the JourneyActions of that channel, whose target renders the body template, retries by the
 * channel's policy and puts what it gives up on in one dead-letter queue. A channel without an endpoint gets
 * nothing: its actions stay on the bus, as before.
 */
import { Duration, SecretValue } from 'aws-cdk-lib';
import {
  ApiDestination,
  Authorization,
  Connection,
  EventField,
  type EventPattern,
  HttpMethod,
  HttpParameter,
  type IEventBus,
  Rule,
  RuleTargetInput,
} from 'aws-cdk-lib/aws-events';
import { ApiDestination as ApiDestinationTarget } from 'aws-cdk-lib/aws-events-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { type ChannelAuth, type ChannelConfig, type ChannelDefinition, type TemplateField, mapTemplate } from '../functions/core/channels.js';
import { JOURNEY_ACTIONS_PATTERN } from '../functions/core/event-pattern.js';
import { ConfigError } from '../functions/core/errors.js';
import { acknowledge } from './nag.js';

/** The header the connection sends for a query-key channel, whose real secret travels as a query parameter. */
export const QUERY_KEY_CONNECTION_HEADER = 'X-Strata-Channel';

export interface ChannelDestinationsProps {
  bus: IEventBus;
  channels: ChannelConfig;
}

export interface DeployedChannel {
  connection: Connection;
  destination: ApiDestination;
  rule: Rule;
}

/** A JourneyAction field as the input transformer reads it; deployed sends are never `strata send-test` sends. */
function eventField(field: TemplateField): string {
  return field === 'test' ? 'false' : EventField.fromPath(`$.detail.${field}`);
}

/** The same template walk as local delivery, with the action's fields read by the input transformer. */
export function channelTargetInput(definition: ChannelDefinition): RuleTargetInput {
  if (definition.body === undefined) return RuleTargetInput.fromEventPath('$.detail');
  const rendered = mapTemplate<unknown, string>(definition.body, {
    whole: (field) => (field === 'test' ? false : eventField(field)),
    inText: eventField,
    joinText: (parts) => parts.join(''),
  });
  return RuleTargetInput.fromObject(rendered);
}

function connectionProps(
  name: string,
  auth: ChannelAuth | undefined,
): { authorization: Authorization; queryStringParameters?: Record<string, HttpParameter> } {
  // A connection always has an authorization; a channel without one sends its name, which is no secret.
  if (!auth) return { authorization: Authorization.apiKey(QUERY_KEY_CONNECTION_HEADER, SecretValue.unsafePlainText(name)) };
  const secret = SecretValue.secretsManager(auth.secret.secretsManager);
  switch (auth.type) {
    case 'api-key':
      return { authorization: Authorization.apiKey(auth.header, secret) };
    case 'basic':
      return { authorization: Authorization.basic(auth.username, secret) };
    case 'query-key':
      return {
        authorization: Authorization.apiKey(QUERY_KEY_CONNECTION_HEADER, SecretValue.unsafePlainText(name)),
        queryStringParameters: { [auth.parameter]: HttpParameter.fromSecret(secret) },
      };
  }
}

export class ChannelDestinations extends Construct {
  readonly deadLetterQueue: Queue | undefined;
  readonly channels: Record<string, DeployedChannel> = {};

  constructor(scope: Construct, id: string, props: ChannelDestinationsProps) {
    super(scope, id);
    const delivering = Object.entries(props.channels.channels).filter(
      (entry): entry is [string, ChannelDefinition & { endpoint: string }] => entry[1].endpoint !== undefined,
    );
    const insecure = delivering.filter(([, definition]) => !definition.endpoint.startsWith('https://'));
    if (insecure.length > 0) {
      throw new ConfigError(
        insecure.map(([name]) => ({
          file: 'channels.json',
          pointer: `/channels/${name}/endpoint`,
          message: 'EventBridge API destinations call HTTPS endpoints only; http:// is for local tests',
          hint: "use the provider's https:// URL",
        })),
      );
    }
    if (delivering.length === 0) return;

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.deadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is itself a dead-letter queue: the channel rules put an action here once its delivery retries run out.',
    );

    for (const [name, definition] of delivering) {
      const connection = new Connection(this, `${name}-Connection`, {
        description: `Strata channel "${name}": how ${new URL(definition.endpoint).host} knows the caller`,
        ...connectionProps(name, definition.auth),
      });
      const destination = new ApiDestination(this, `${name}-Destination`, {
        description: `Strata channel "${name}"`,
        connection,
        endpoint: definition.endpoint,
        httpMethod: definition.method === 'PUT' ? HttpMethod.PUT : HttpMethod.POST,
        rateLimitPerSecond: definition.rateLimitPerSecond,
      });
      const rule = new Rule(this, `${name}-Rule`, {
        eventBus: props.bus,
        description: `Strata: journey actions on channel "${name}" to its API destination`,
        eventPattern: { ...(JOURNEY_ACTIONS_PATTERN as unknown as EventPattern), detail: { channel: [name] } },
        targets: [
          new ApiDestinationTarget(destination, {
            event: channelTargetInput(definition),
            retryAttempts: definition.retry.attempts,
            maxEventAge: Duration.seconds(definition.retry.maxAgeSeconds),
            deadLetterQueue: this.deadLetterQueue,
          }),
        ],
      });
      this.channels[name] = { connection, destination, rule };
    }
  }
}
