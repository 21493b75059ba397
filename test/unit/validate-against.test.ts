/**
 * `strata validate --against REF`, as a marketer runs it: a real git repository in a temp dir, the shipped project
 * committed, then edited, and the command run as a process.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

async function strata(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(root, 'bin', 'strata.js'), ...args], {
      cwd: root,
      env: { ...env, STRATA_DEBUG: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const git = (cwd: string, ...args: string[]) =>
  run('git', ['-c', 'user.name=Strata Test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd });

let repo: string;
let project: string;

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), 'strata-against-'));
  // The project sits in a sub-directory of the repository, as it may in a monorepo.
  project = join(repo, 'marketing');
  await cp(join(root, 'rules'), join(project, 'rules'), { recursive: true });
  await cp(join(root, 'journeys'), join(project, 'journeys'), { recursive: true });
  await git(repo, 'init', '-q');
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'journeys v1');
  await git(repo, 'tag', 'v1');

  const file = join(project, 'journeys', 'member.json');
  const member = JSON.parse(await readFile(file, 'utf8')) as { steps: Array<Record<string, unknown>> };
  for (const step of member.steps) {
    if (step['id'] === 'wait_after_replay') Object.assign(step, { days: 3, next: 'career_group' });
    if (step['id'] === 'members_group') step['id'] = 'career_group';
    if (step['id'] === 'member_price') step['offerId'] = 'pm-course-member-price-2027';
  }
  await writeFile(file, JSON.stringify(member, null, 2));
}, 60_000);

afterAll(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
});

describe('strata validate --against REF', () => {
  it('lists the journey changes that affect users mid-journey, and what version pinning does with them', async () => {
    const result = await strata(['validate', project, '--against', 'v1']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n').slice(1)).toEqual([
      '',
      'Journey changes since v1 that affect users mid-journey:',
      '  member (member-nurture):',
      '    - wait "wait_after_replay": 2 days → 3 days',
      '      users already in this wait, or before it, still wait 2 days; new entries wait 3 days',
      '    - step "members_group" (invite to pm-career-change-members) is renamed to "career_group"',
      '      executions already running still run it as "members_group" (their action ids keep the old name); new entries run "career_group"',
      '    - offer step "member_price": offerId "pm-course-member-price" → "pm-course-member-price-2027"',
      '      executions already running keep the old offer if they have not reached it yet; users who enter after the deploy get the new one',
      '',
      'Journeys are pinned to their version: an execution that started before the deploy finishes on the version it started with ' +
        '(the one at v1, or earlier), and users who enter a journey after the deploy get this one.',
      '',
    ]);
  });

  it('says so when nothing changed', async () => {
    await git(repo, 'stash', '-q');
    try {
      const result = await strata(['validate', project, '--against', 'HEAD']);
      expect(result.stdout).toContain('\nNo journey changes since HEAD that affect users mid-journey.\n');
    } finally {
      await git(repo, 'stash', 'pop', '-q');
    }
  });

  it('refuses a ref that is not a commit, with a hint and no stack trace', async () => {
    const result = await strata(['validate', project, '--against', 'v9']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'strata: validate --against v9: "v9" is not a commit in this repository (pass a branch, tag or commit that exists here, as `git log --oneline` lists them; fetch it first if it is remote)\n',
    );
  });

  it('refuses a project outside any git repository', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'strata-no-git-'));
    try {
      await cp(join(root, 'rules'), join(outside, 'rules'), { recursive: true });
      await cp(join(root, 'journeys'), join(outside, 'journeys'), { recursive: true });
      const result = await strata(['validate', outside, '--against', 'main']);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        /^strata: validate --against main: .* is not inside a git repository \(.*\) \(run it in the project's git checkout, or leave out --against\)\n$/,
      );
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('says when git itself is missing', async () => {
    const result = await strata(['validate', project, '--against', 'v1'], { ...process.env, PATH: join(repo, 'no-such-bin') });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'strata: validate --against v1: git is not installed or not on the PATH (install git, or run validate without --against)\n',
    );
  });
});
