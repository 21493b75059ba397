/**
 * Delivery channels (`channels.json` at the project root): the names journey steps send through, and for each
 * how a JourneyAction reaches the provider: an HTTP endpoint, its authentication (the secret named, never
 * written), a rate limit, retries, and a body template. Pure: the schema, the checks and the template rendering.
 * The deployed stack turns a channel into an EventBridge connection, API destination and rule; `strata dev`
 * delivers with functions/local/channel-delivery.ts. Both render the same template through `mapTemplate`.
 *
 * The template language is deliberately tiny: a JSON body whose strings may hold `{{field}}` placeholders naming
 * JourneyAction fields. A string that is exactly one placeholder takes the field's JSON value (a boolean stays a
 * boolean); placeholders inside longer text are replaced by the field's text. Nothing is evaluated.
 */
import * as z from 'zod';
import { type Problem, jsonPointer } from './errors.js';
import { didYouMean } from './suggest.js';
import { describeValueIssue, valueAtPath } from './zod-issues.js';

export const CHANNELS_FILE = 'channels.json';

/** Channel names become parts of CloudFormation logical ids and rule names, so they stay plain. */
export const CHANNEL_NAME_PATTERN = /^[a-z][a-z0-9-]{0,47}$/;

/**
 * A project without channels.json keeps the names journeys used before channels were configurable, each logged
 * only, so that an existing project still loads; `strata validate` suggests writing the file.
 */
export const DEFAULT_CHANNEL_NAMES = ['official-account', 'direct-message', 'mini-program', 'app-push', 'sms', 'email'] as const;

/** The JourneyAction fields a body template may name. `test` is true only for `strata send-test`. */
export const TEMPLATE_FIELDS = [
  'actionId',
  'userId',
  'journeyId',
  'tier',
  'stepId',
  'executionName',
  'channel',
  'kind',
  'at',
  'templateId',
  'groupId',
  'offerId',
  'expiresAt',
  'test',
] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/** EventBridge API destinations take at most 300 invocations per second. */
export const MAX_RATE_LIMIT_PER_SECOND = 300;
/** The bounds of an EventBridge target's retry policy. */
export const MAX_RETRY_ATTEMPTS = 185;
export const MIN_EVENT_AGE_SECONDS = 60;
export const MAX_EVENT_AGE_SECONDS = 86_400;

const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;
const HEADER_NAME_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

const secretReference = z
  .strictObject({
    env: z
      .string()
      .regex(ENV_NAME_PATTERN, 'must be an environment variable name: upper-case letters, digits and _')
      .describe('The environment variable that holds the secret for `strata dev` and `strata send-test`.'),
    secretsManager: z
      .string()
      .min(1)
      .max(2048)
      .describe('The name or ARN of the Secrets Manager secret the deployed connection reads (a plain string secret).'),
  })
  .describe('Where the secret is kept: never in this file, so never in git.');

const authSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('api-key').describe('The secret is sent as the value of one header.'),
      header: z.string().regex(HEADER_NAME_PATTERN, 'must be an HTTP header name, for example "Authorization"'),
      secret: secretReference,
    }),
    z.strictObject({
      type: z.literal('basic').describe('HTTP basic authentication; the secret is the password.'),
      username: z.string().min(1).max(512),
      secret: secretReference,
    }),
    z.strictObject({
      type: z.literal('query-key').describe('The secret is sent as one query-string parameter (WeCom and Feishu-style webhook keys).'),
      parameter: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a query parameter name, for example "key"'),
      secret: secretReference,
    }),
  ],
  { error: 'must be one of api-key, basic, query-key' },
);

export const channelSchema = z.strictObject({
  description: z.string().max(200).optional().describe('A note for people.'),
  endpoint: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL, for example "https://sms.example.com/v1/send"' })
    .max(2048)
    .optional()
    .describe('Where the action is POSTed. Without one the channel only logs its actions.'),
  method: z.enum(['POST', 'PUT'], { error: 'must be POST or PUT' }).default('POST'),
  auth: authSchema.optional().describe('How the endpoint knows the caller.'),
  rateLimitPerSecond: z
    .number()
    .int()
    .min(1)
    .max(MAX_RATE_LIMIT_PER_SECOND)
    .default(10)
    .describe('At most this many requests per second, retries included.'),
  retry: z
    .strictObject({
      attempts: z.number().int().min(0).max(MAX_RETRY_ATTEMPTS).default(5).describe('Retries after the first attempt.'),
      maxAgeSeconds: z
        .number()
        .int()
        .min(MIN_EVENT_AGE_SECONDS)
        .max(MAX_EVENT_AGE_SECONDS)
        .default(3600)
        .describe('After this long an action is no longer retried and goes to the dead letters.'),
    })
    .default({ attempts: 5, maxAgeSeconds: 3600 }),
  body: z.json().optional().describe('The request body: JSON whose strings may hold {{field}} placeholders; without one the action itself is sent.'),
});

export const channelsFileSchema = z.strictObject({
  $schema: z.string().optional(),
  channels: z
    .record(z.string().regex(CHANNEL_NAME_PATTERN, 'must be lower-case letters, digits and -, starting with a letter (at most 48)'), channelSchema)
    .describe('Each channel by the name journey steps use.'),
});

export type ChannelDefinition = z.infer<typeof channelSchema>;
export type ChannelAuth = NonNullable<ChannelDefinition['auth']>;
export type SecretReference = ChannelAuth['secret'];
export type ChannelsFile = z.infer<typeof channelsFileSchema>;

export interface ChannelConfig {
  /** Channel name → definition; every name a journey step may use. */
  channels: Record<string, ChannelDefinition>;
  /** False when the project has no channels.json and the default names apply. */
  configured: boolean;
}

export function defaultChannelConfig(): ChannelConfig {
  const logOnly = channelSchema.parse({});
  return { channels: Object.fromEntries(DEFAULT_CHANNEL_NAMES.map((name) => [name, logOnly])), configured: false };
}

// ---- Templates ---------------------------------------------------------------------------------------------

/** The parts of a template string: literal text and the fields between `{{` and `}}`. */
type TemplatePart = { text: string } | { field: string };

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

function templateParts(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ text: text.slice(last, match.index) });
    parts.push({ field: match[1]! });
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

export interface TemplateRenderer<Whole, Text> {
  /** A string that is exactly one placeholder: the field's own value. */
  whole(field: TemplateField): Whole;
  /** A placeholder inside longer text: the field as text. */
  inText(field: TemplateField): Text;
  joinText(parts: Array<string | Text>): Whole;
}

/**
 * Walks a (checked) template and replaces its placeholders; the one walk behind local rendering and the
 * EventBridge input transformer, so both fill the same fields into the same places.
 */
export function mapTemplate<Whole, Text>(template: unknown, renderer: TemplateRenderer<Whole, Text>): unknown {
  if (typeof template === 'string') {
    const parts = templateParts(template);
    if (parts.length === 0 || parts.every((part) => 'text' in part)) return template;
    if (parts.length === 1 && 'field' in parts[0]!) return renderer.whole(parts[0].field as TemplateField);
    return renderer.joinText(parts.map((part) => ('text' in part ? part.text : renderer.inText(part.field as TemplateField))));
  }
  if (Array.isArray(template)) return template.map((item) => mapTemplate(item, renderer));
  if (template !== null && typeof template === 'object') {
    // fromEntries defines own properties, so a "__proto__" key in a provider's body stays a plain key.
    return Object.fromEntries(Object.entries(template).map(([key, value]) => [key, mapTemplate(value, renderer)]));
  }
  return template;
}

/** The action fields as the templates see them; `test` is false unless the action says otherwise. */
export type TemplateValues = Partial<Record<TemplateField, string | boolean>>;

/** Renders a body for one action: a missing field is null as a whole value and empty inside text. */
export function renderChannelBody(template: unknown, values: TemplateValues): unknown {
  return mapTemplate<unknown, string>(template, {
    whole: (field) => (Object.hasOwn(values, field) ? values[field] : null),
    inText: (field) => (Object.hasOwn(values, field) ? String(values[field]) : ''),
    joinText: (parts) => parts.join(''),
  });
}

// ---- Loading and checks ------------------------------------------------------------------------------------

const FIELD_HINTS: Record<string, string> = {
  endpoint: 'the provider\'s URL, for example "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"; leave it out to only log',
  rateLimitPerSecond: `a whole number of requests per second, 1 to ${MAX_RATE_LIMIT_PER_SECOND}; use the provider's documented limit`,
  attempts: `a whole number of retries, 0 to ${MAX_RETRY_ATTEMPTS}`,
  maxAgeSeconds: `a whole number of seconds, ${MIN_EVENT_AGE_SECONDS} to ${MAX_EVENT_AGE_SECONDS}`,
  env: 'for example "SMS_API_KEY"; set it in the shell that runs `strata dev`',
  secretsManager: 'for example "strata/sms-api-key"; create the secret before deploying',
  type: 'use one of: api-key, basic, query-key',
};

const FORMAT_FIELDS = [
  ...Object.keys(channelsFileSchema.shape),
  ...Object.keys(channelSchema.shape),
  'attempts',
  'maxAgeSeconds',
  'type',
  'header',
  'username',
  'parameter',
  'secret',
  'env',
  'secretsManager',
];

const SCHEMA_HINT = 'see schemas/channels.schema.json; an editor shows it when the file names its "$schema"';

function issueProblems(error: z.ZodError, document: unknown): Problem[] {
  return error.issues.map((issue): Problem => {
    const path = issue.path.filter((part): part is string | number => typeof part !== 'symbol');
    const field = path[path.length - 1];
    const hint = typeof field === 'string' ? FIELD_HINTS[field] : undefined;
    const actual = valueAtPath(document, path);
    const pointer = jsonPointer(path);
    const described = describeValueIssue(issue, actual, hint);
    if (described) return { file: CHANNELS_FILE, pointer, ...described };
    switch (issue.code) {
      case 'unrecognized_keys': {
        const key = issue.keys[0]!;
        return {
          file: CHANNELS_FILE,
          pointer: jsonPointer([...path, key]),
          message: `"${key}" is not a field here`,
          hint: didYouMean(key, FORMAT_FIELDS, 'remove it'),
        };
      }
      case 'invalid_type':
        if (actual === undefined)
          return { file: CHANNELS_FILE, pointer, message: `${String(field ?? 'the value')} is required`, hint: hint ?? SCHEMA_HINT };
        return {
          file: CHANNELS_FILE,
          pointer,
          message: issue.message.startsWith('Invalid input') ? `has the wrong kind of value (${JSON.stringify(actual)})` : issue.message,
          hint: hint ?? SCHEMA_HINT,
        };
      case 'invalid_key':
        return {
          file: CHANNELS_FILE,
          pointer,
          message: `channel name "${String(field)}" must be lower-case letters, digits and -, starting with a letter (at most 48)`,
          hint: 'rename the channel, and the steps that use it',
        };
      default:
        return { file: CHANNELS_FILE, pointer, message: issue.message.replace(/^Invalid input: /, ''), hint: hint ?? SCHEMA_HINT };
    }
  });
}

/** Every placeholder problem in a body template: unknown fields (with "did you mean"), unclosed braces, keys. */
export function templateProblems(template: unknown, path: Array<string | number>): Problem[] {
  const problems: Problem[] = [];
  const walk = (value: unknown, at: Array<string | number>): void => {
    if (typeof value === 'string') {
      for (const part of templateParts(value)) {
        if (!('field' in part)) {
          if (part.text.includes('{{') || part.text.includes('}}')) {
            problems.push({
              file: CHANNELS_FILE,
              pointer: jsonPointer(at),
              message: `unbalanced braces in ${JSON.stringify(value)}`,
              hint: 'write placeholders as {{field}}, for example {{userId}}',
            });
          }
          continue;
        }
        if (!(TEMPLATE_FIELDS as readonly string[]).includes(part.field)) {
          problems.push({
            file: CHANNELS_FILE,
            pointer: jsonPointer(at),
            message: `unknown placeholder {{${part.field}}}`,
            hint: didYouMean(part.field, TEMPLATE_FIELDS, `use one of: ${TEMPLATE_FIELDS.join(', ')}`),
          });
        }
      }
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, [...at, i]));
      return;
    }
    if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        if (key.includes('{{')) {
          problems.push({
            file: CHANNELS_FILE,
            pointer: jsonPointer([...at, key]),
            message: 'a placeholder in a property name is not filled in',
            hint: 'put placeholders in values only',
          });
        }
        walk(child, [...at, key]);
      }
    }
  };
  walk(template, path);
  return problems;
}

function definitionProblems(name: string, channel: ChannelDefinition): Problem[] {
  const at = ['channels', name];
  const problems: Problem[] = [];
  if (channel.endpoint === undefined) {
    for (const field of ['auth', 'body'] as const) {
      if (channel[field] !== undefined) {
        problems.push({
          file: CHANNELS_FILE,
          pointer: jsonPointer([...at, field]),
          message: `"${field}" has no effect: the channel has no endpoint, so it only logs`,
          hint: 'add "endpoint", or remove this field',
        });
      }
    }
  } else {
    const url = new URL(channel.endpoint);
    if (url.username || url.password) {
      problems.push({
        file: CHANNELS_FILE,
        pointer: jsonPointer([...at, 'endpoint']),
        message: 'the URL carries a user name or password, which would put a secret in git',
        hint: 'use "auth": {"type": "basic", ...} with the password in a secret',
      });
    }
  }
  if (channel.body !== undefined) problems.push(...templateProblems(channel.body, [...at, 'body']));
  return problems;
}

export interface ChannelsLoadResult {
  config?: ChannelConfig;
  problems: Problem[];
}

/** Checks channels.json (absent: the default, log-only names). Every problem at once, like the other files. */
export function loadChannelConfig(text: string | undefined, parse: (file: string, text: string, problems: Problem[]) => unknown): ChannelsLoadResult {
  if (text === undefined) return { config: defaultChannelConfig(), problems: [] };
  const problems: Problem[] = [];
  const document = parse(CHANNELS_FILE, text, problems);
  if (problems.length > 0) return { problems };
  const parsed = channelsFileSchema.safeParse(document);
  if (!parsed.success) return { problems: issueProblems(parsed.error, document) };
  for (const [name, channel] of Object.entries(parsed.data.channels)) problems.push(...definitionProblems(name, channel));
  if (problems.length > 0) return { problems };
  return { config: { channels: parsed.data.channels, configured: true }, problems };
}

/** The problem for a step naming a channel that channels.json does not define. */
export function unknownChannelProblem(file: string, pointer: string, name: string, config: ChannelConfig): Problem {
  const names = Object.keys(config.channels);
  return {
    file,
    pointer,
    message: `unknown channel "${name}" (${config.configured ? `${CHANNELS_FILE} defines` : `without ${CHANNELS_FILE}, the channels are`}: ${names.join(', ') || 'none'})`,
    hint: didYouMean(name, names, `define it in ${CHANNELS_FILE}, or use one of the names there`),
  };
}

/** The JSON Schema of channels.json as written (defaults optional), for `strata schemas` and editors. */
export function channelsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(channelsFileSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/**
 * The template fields of a JourneyAction; `test` is false unless the action is marked as a test send. Typed by
 * the fields it reads, so that this module needs nothing from the journey modules (which use its name pattern).
 */
export function actionTemplateValues(action: Readonly<Partial<Record<TemplateField, unknown>>>): TemplateValues {
  const values: TemplateValues = { test: action.test === true };
  for (const field of TEMPLATE_FIELDS) {
    const value = action[field];
    if (typeof value === 'string' || typeof value === 'boolean') values[field] = value;
  }
  return values;
}
