import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatJsonSchemas } from '../../functions/core/json-schemas.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

async function strata(args: string[], cwd = root): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(root, 'bin', 'strata.js'), ...args], {
      cwd,
      env: { ...process.env, STRATA_DEBUG: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('strata validate (the command)', () => {
  it('passes on the shipped rules and journeys', async () => {
    const result = await strata(['validate']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(
      /^OK: 9 files, 4 tiers \(visitor < member < active < core\), 6 metrics, 5 attributes, 4 journeys; ruleset version [0-9a-f]{12}\n$/,
    );
    expect(result.code).toBe(0);
  });

  it('exits 1 with every problem as file: pointer: message, and no stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-validate-'));
    await cp(join(root, 'rules'), join(dir, 'rules'), { recursive: true });
    await cp(join(root, 'journeys'), join(dir, 'journeys'), { recursive: true });
    const member = JSON.parse(await readFile(join(dir, 'rules', 'member.json'), 'utf8'));
    member.conditions.all[0].operator = 'greaterThen';
    await writeFile(join(dir, 'rules', 'member.json'), JSON.stringify(member, null, 2));
    await writeFile(join(dir, 'rules', 'core.json'), '{ "conditions": ');
    const result = await strata(['validate', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      'rules/member.json: /conditions/all/0/operator: unknown operator "greaterThen" (did you mean "greaterThan"?)',
      'rules/core.json:1:17: /: invalid JSON: unexpected end of file; expected a value (fix the JSON syntax; an editor with JSON support shows the spot)',
      '',
      '2 problems found in 8 files.',
      '',
    ]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints warnings and passes, unless --strict', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-validate-'));
    await cp(join(root, 'rules'), join(dir, 'rules'), { recursive: true });
    await cp(join(root, 'journeys'), join(dir, 'journeys'), { recursive: true });
    const core = JSON.parse(await readFile(join(dir, 'rules', 'core.json'), 'utf8'));
    core.conditions.all[0].value = 45;
    await writeFile(join(dir, 'rules', 'core.json'), JSON.stringify(core, null, 2));
    const expectedWarnings = [
      "rules/core.json: /conditions/all/0: warning: daysActive30 ≥ 45 can never hold: daysActive30 counts days in a 30-day window, so it is 0 to 30 (change the threshold or the metric's window, or remove the condition)",
      'rules/tiers.json: /tiers/3: warning: no user can ever reach tier "core": daysActive30 ≥ 45 can never hold: daysActive30 counts days in a 30-day window, so it is 0 to 30 (fix the conditions in rules/core.json)',
      '',
    ];
    const lenient = await strata(['validate', dir]);
    expect(lenient.code).toBe(0);
    expect(lenient.stdout).toMatch(/^OK: 8 files/);
    expect(lenient.stderr.split('\n')).toEqual([
      ...expectedWarnings,
      '2 warnings: likely mistakes that still load. Fix them, or pass --strict to make them fail the check.',
      '',
      '',
    ]);
    const strict = await strata(['validate', '--strict', dir]);
    expect(strict.code).toBe(1);
    expect(strict.stderr.split('\n')).toEqual([
      ...expectedWarnings,
      '2 warnings: likely mistakes that still load. Failing because of --strict.',
      '',
      '',
    ]);
  });

  it('says clearly when pointed at a directory with no project', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-empty-'));
    await mkdir(join(dir, 'nothing'));
    const result = await strata(['validate', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `strata: validate: no rules/ or journeys/ JSON files under ${dir} (run it in a Strata project, or pass the project directory)\n`,
    );
  });
});

describe('JSON Schemas', () => {
  it('the committed schemas/ match the zod schemas (run `npm run schemas` after changing a format)', async () => {
    for (const [name, schema] of Object.entries(formatJsonSchemas())) {
      const committed = JSON.parse(await readFile(join(root, 'schemas', name), 'utf8'));
      expect(committed, name).toEqual(schema);
    }
  });
});
