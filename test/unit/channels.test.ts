/**
 * channels.json: its checks (every problem with the file, the pointer and a fix), the journey steps' channel
 * names checked against it, and the body templates rendered for an action.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHANNELS_FILE, actionTemplateValues, renderChannelBody } from '../../functions/core/channels.js';
import { formatProblem } from '../../functions/core/errors.js';
import { eventTypesMarkdown } from '../../functions/core/event-types.js';
import type { JourneyAction } from '../../functions/core/journey/decide-journey-step.js';
import { type ProjectFiles, loadRuleset } from '../../functions/core/ruleset.js';
import { readProjectFiles } from '../../functions/local/project-files.js';

const root = join(import.meta.dirname, '..', '..');

async function projectWith(channels: unknown | undefined, edit?: (files: ProjectFiles) => void): Promise<ProjectFiles> {
  const files = await readProjectFiles(root);
  if (channels === undefined) delete files[CHANNELS_FILE];
  else files[CHANNELS_FILE] = typeof channels === 'string' ? channels : JSON.stringify(channels, null, 2);
  edit?.(files);
  return files;
}

async function problemsOf(channels: unknown, edit?: (files: ProjectFiles) => void): Promise<string[]> {
  const { problems } = loadRuleset(await projectWith(channels, edit));
  return problems.map(formatProblem);
}

const shipped = async (): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(root, CHANNELS_FILE), 'utf8'));

const sms = {
  endpoint: 'https://sms.example.com/v1/messages',
  auth: { type: 'api-key', header: 'X-Api-Key', secret: { env: 'SMS_API_KEY', secretsManager: 'strata/sms' } },
  body: { to: '{{userId}}', text: 'Offer {{offerId}}' },
};

const action: JourneyAction = {
  actionId: 'a1',
  userId: 'u-1',
  journeyId: 'member-growth',
  tier: 'member',
  stepId: 'offer_course',
  executionName: 'e1',
  channel: 'sms',
  at: '2026-03-01T10:00:00.000Z',
  kind: 'offer',
  offerId: 'pm-course',
  expiresAt: '2026-03-08T10:00:00.000Z',
};

describe('channels.json', () => {
  it('the shipped project and the README examples load', async () => {
    const shippedLoad = loadRuleset(await projectWith(await shipped()));
    expect(shippedLoad.problems).toEqual([]);
    expect(Object.keys(shippedLoad.ruleset!.channels.channels)).toEqual(['official-account', 'direct-message', 'mini-program']);
    const examples = JSON.parse(await readFile(join(root, 'examples', 'channels', 'channels.json'), 'utf8'));
    const merged = { channels: { ...((await shipped())['channels'] as object), ...examples.channels } };
    const loaded = loadRuleset(await projectWith(merged));
    expect(loaded.problems).toEqual([]);
    expect(loaded.ruleset!.channels.channels['sms']).toMatchObject({
      method: 'POST',
      rateLimitPerSecond: 20,
      retry: { attempts: 8, maxAgeSeconds: 7200 },
    });
  });

  it('a step naming an undefined channel gets a did-you-mean, at the step', async () => {
    const problems = await problemsOf(await shipped(), (files) => {
      files['journeys/visitor.json'] = files['journeys/visitor.json']!.replace('"channel": "official-account"', '"channel": "oficial-account"');
    });
    expect(problems).toEqual([
      'journeys/visitor.json: /steps/0/channel: unknown channel "oficial-account" (channels.json defines: official-account, direct-message, mini-program) (did you mean "official-account"?)',
    ]);
  });

  it('a project without channels.json keeps the former channel names, logged only', async () => {
    const loaded = loadRuleset(await projectWith(undefined));
    expect(loaded.problems).toEqual([]);
    expect(loaded.ruleset!.channels.configured).toBe(false);
    expect(loaded.ruleset!.channels.channels['sms']?.endpoint).toBeUndefined();
  });

  it('reports unknown placeholders with did-you-mean, and every other problem at once', async () => {
    const channels = {
      channels: {
        ...((await shipped())['channels'] as object),
        sms: { ...sms, body: { to: '{{userID}}', text: 'Hi {{ name }}', list: ['{{offerId}', '{{templateId}}'] } },
        'Bad Name': {},
        push: { rateLimitPerSecond: 0.5, auth: sms.auth, retry: { attempts: 500 } },
        mail: { endpoint: 'ftp://mail.example.com', auth: { type: 'oauth' } },
        leak: { endpoint: 'https://user:pw@hooks.example.com/x', auth: { ...sms.auth, secret: { env: 'lower', secretsManager: 's' } } },
      },
    };
    expect(await problemsOf(channels)).toEqual([
      'channels.json: /channels/Bad Name: channel name "Bad Name" must be lower-case letters, digits and -, starting with a letter (at most 48) (rename the channel, and the steps that use it)',
      "channels.json: /channels/push/rateLimitPerSecond: must be a whole number, found 0.5 (a whole number of requests per second, 1 to 300; use the provider's documented limit)",
      'channels.json: /channels/push/retry/attempts: must be at most 185, found 500 (a whole number of retries, 0 to 185)',
      'channels.json: /channels/mail/endpoint: must be an http(s) URL, for example "https://sms.example.com/v1/send" (the provider\'s URL, for example "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"; leave it out to only log)',
      'channels.json: /channels/mail/auth/type: must be one of api-key, basic, query-key (use one of: api-key, basic, query-key)',
      'channels.json: /channels/leak/auth/secret/env: must be an environment variable name: upper-case letters, digits and _ (for example "SMS_API_KEY"; set it in the shell that runs `strata dev`)',
    ]);
    const second = {
      channels: {
        ...((await shipped())['channels'] as object),
        sms: { ...sms, body: { to: '{{userID}}', text: 'Hi {{ name }}', list: ['{{offerId}', '{{templateId}}'] } },
        push: { auth: sms.auth },
      },
    };
    expect(await problemsOf(second)).toEqual([
      'channels.json: /channels/sms/body/to: unknown placeholder {{userID}} (did you mean "userId"?)',
      'channels.json: /channels/sms/body/text: unknown placeholder {{name}} (use one of: actionId, userId, journeyId, tier, stepId, executionName, channel, kind, at, templateId, groupId, offerId, expiresAt, test)',
      'channels.json: /channels/sms/body/list/0: unbalanced braces in "{{offerId}" (write placeholders as {{field}}, for example {{userId}})',
      'channels.json: /channels/push/auth: "auth" has no effect: the channel has no endpoint, so it only logs (add "endpoint", or remove this field)',
    ]);
  });

  it('points at the key of a misspelled field and at a JSON syntax error', async () => {
    expect(await problemsOf({ channels: { sms: { ...sms, endpont: 'x' } } })).toEqual([
      'channels.json: /channels/sms/endpont: "endpont" is not a field here (did you mean "endpoint"?)',
    ]);
    const [syntax] = await problemsOf('{ "channels": { ,} }');
    expect(syntax).toMatch(/^channels\.json:1:\d+: \/: /);
  });
});

describe('body templates', () => {
  it('fills whole placeholders with the value and embedded ones with text; a missing field is null or empty', () => {
    const body = {
      to: '{{userId}}',
      text: 'Offer {{offerId}} until {{expiresAt}}{{templateId}}',
      template: '{{templateId}}',
      test: '{{test}}',
      fixed: [1, true, null, 'plain'],
    };
    expect(renderChannelBody(body, actionTemplateValues(action))).toEqual({
      to: 'u-1',
      text: 'Offer pm-course until 2026-03-08T10:00:00.000Z',
      template: null,
      test: false,
      fixed: [1, true, null, 'plain'],
    });
    expect(renderChannelBody(body, actionTemplateValues({ ...action, test: true }))).toMatchObject({ test: true });
  });

  it('never evaluates a placeholder and keeps a "__proto__" key a plain key', () => {
    const body = JSON.parse('{"__proto__": {"polluted": "{{userId}}"}, "x": "{{constructor}}"}');
    const rendered = renderChannelBody(body, actionTemplateValues(action)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(rendered)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(rendered, '__proto__')?.value).toEqual({ polluted: 'u-1' });
    expect(rendered['x']).toBeNull();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('the README', () => {
  it('lists the documented event types exactly as the catalogue has them', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const section = /<!-- event-types:start -->\n([\s\S]*?)\n<!-- event-types:end -->/.exec(readme);
    expect(section, 'the README needs the event-types markers').not.toBeNull();
    expect(section![1]).toBe(eventTypesMarkdown());
  });

  it('shows the worked channel examples exactly as examples/channels/channels.json has them', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const worked = readme.slice(readme.indexOf('### Worked examples'));
    const blocks = [...worked.matchAll(/```json\n([\s\S]*?)\n```/g)].slice(0, 3).map((m) => JSON.parse(`{${m[1]}}`) as Record<string, unknown>);
    const examples = JSON.parse(await readFile(join(root, 'examples', 'channels', 'channels.json'), 'utf8')) as {
      channels: Record<string, Record<string, unknown>>;
    };
    const withoutDescriptions = Object.fromEntries(Object.entries(examples.channels).map(([name, { description: _, ...rest }]) => [name, rest]));
    expect(Object.assign({}, ...blocks)).toEqual(withoutDescriptions);
  });
});
