/**
 * Least privilege and the bus policy, on the synthesized template. Synthesized once, without bundling (the
 * template is what matters here, and bundling is what makes a synth slow); test/infra covers the bundled app.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readProjectFiles } from '../../functions/local/project-files.js';
import { PROJECT_ROOT, buildApp } from '../../infra/app.js';

type Statement = {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
};
type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;

const ALLOWED_SOURCES = ['com.example.app', 'com.example.crm'];
const ALLOWED_ACCOUNTS = ['111122223333', '444455556666'];
const DATA_SERVICES = /^(dynamodb|sqs|events|states|lambda|s3|kms|scheduler):/;

let outdir: string;
let resources: Resources;

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'strata-security-cdk-'));
  const projectFiles = await readProjectFiles(PROJECT_ROOT);
  const { app, stack } = buildApp({
    projectFiles,
    context: { allowedSources: ALLOWED_SOURCES, allowedAccounts: ALLOWED_ACCOUNTS, 'aws:cdk:bundling-stacks': [] },
    outdir,
  });
  app.synth();
  resources = JSON.parse(readFileSync(join(outdir, `${stack.stackName}.template.json`), 'utf8')).Resources as Resources;
}, 120_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const actionsOf = (statement: Statement): string[] => [statement.Action].flat();

describe('IAM', () => {
  const allows = (): Array<Statement & { policy: string }> =>
    [...ofType('AWS::IAM::Policy'), ...ofType('AWS::IAM::ManagedPolicy')].flatMap(([policy, resource]) =>
      (resource.Properties['PolicyDocument'].Statement as Statement[]).filter((s) => s.Effect === 'Allow').map((s) => ({ ...s, policy })),
    );

  it('grants no wildcard action (no "service:*", no "*")', () => {
    expect(allows().length).toBeGreaterThan(0);
    for (const statement of allows()) for (const action of actionsOf(statement)) expect(action, statement.policy).not.toContain('*');
  });

  it('grants no data action on every resource ("Resource": "*")', () => {
    for (const statement of allows()) {
      const dataActions = actionsOf(statement).filter((action) => DATA_SERVICES.test(action));
      if (dataActions.length === 0) continue;
      expect([statement.Resource].flat(), `${statement.policy}: ${dataActions.join(', ')}`).not.toContain('*');
    }
  });

  it('no role has an AWS managed admin or full-access policy attached', () => {
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      expect(JSON.stringify(role.Properties['ManagedPolicyArns'] ?? []), id).not.toMatch(/AdministratorAccess|FullAccess|PowerUser/);
    }
  });
});

describe('the event bus policy', () => {
  const statements = (): Statement[] => ofType('AWS::Events::EventBusPolicy').map(([, p]) => p.Properties['Statement'] as Statement);

  /** IAM's evaluation for the conditions the stack uses: an explicit Deny wins, else an Allow is needed. */
  function conditionHolds(condition: Statement['Condition'], context: Record<string, string>): boolean {
    return Object.entries(condition ?? {}).every(([operator, keys]) =>
      Object.entries(keys).every(([key, expected]) => {
        const values = [expected].flat();
        const actual = context[key] ?? '';
        const like = (pattern: string) =>
          new RegExp(
            `^${pattern
              .split('*')
              .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
              .join('.*')}$`,
          ).test(actual);
        switch (operator) {
          case 'StringEquals':
            return values.includes(actual);
          case 'StringNotEquals':
            return !values.includes(actual);
          case 'StringLike':
            return values.some(like);
          case 'StringNotLike':
            return !values.some(like);
          default:
            throw new Error(`the bus policy uses ${operator}; teach this evaluator`);
        }
      }),
    );
  }
  /** The accounts a principal names (ARNs or Fn::Join parts); none for "*". */
  const principalAccounts = (principal: unknown): string[] => JSON.stringify(principal ?? '').match(/\d{12}/g) ?? [];
  function mayPut(source: string, account: string): boolean {
    const applicable = statements().filter((s) => actionsOf(s).includes('events:PutEvents'));
    const context = { 'events:source': source, 'aws:PrincipalAccount': account, 'aws:SourceAccount': account };
    const matches = (s: Statement): boolean => {
      const accounts = principalAccounts(s.Principal);
      const principalMatches = accounts.length === 0 || accounts.includes(account);
      return principalMatches && conditionHolds(s.Condition, context);
    };
    if (applicable.some((s) => s.Effect === 'Deny' && matches(s))) return false;
    return applicable.some((s) => s.Effect === 'Allow' && matches(s));
  }

  it('lets a listed account put events from a listed source', () => {
    expect(mayPut('com.example.app', '111122223333')).toBe(true);
    expect(mayPut('com.example.crm', '444455556666')).toBe(true);
  });

  it.each([
    ['an unlisted source', 'com.attacker.app', '111122223333'],
    ['a Strata source (forged tier notices)', 'strata.tiers', '111122223333'],
    ['a Strata source (forged journey actions)', 'strata.journeys', '444455556666'],
    ['a listed source from an unlisted account', 'com.example.app', '999999999999'],
  ])('rejects %s', (_label, source, account) => {
    expect(mayPut(source, account)).toBe(false);
  });

  it('has an explicit Deny for unlisted sources, so no other grant can open the bus', () => {
    const deny = statements().find((s) => s.Effect === 'Deny' && s.Condition?.['StringNotEquals']?.['events:source']);
    expect(deny).toBeDefined();
    expect([deny!.Condition!['StringNotEquals']!['events:source']].flat()).toEqual(expect.arrayContaining(ALLOWED_SOURCES));
  });
});
