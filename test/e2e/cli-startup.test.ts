/**
 * The `strata` bin runs the compiled bundle and loads only the command it runs; the others are still listed by
 * help and found by "did you mean". The bundle is rebuilt by the test run's global setup, so it is fresh here.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { root, strata } from './strata-process.js';

const run = promisify(execFile);

describe('the strata bin', () => {
  it('lists every command with its summary, without loading them', async () => {
    const { code, stdout } = await strata(['--help']);
    expect(code).toBe(0);
    for (const name of ['dev', 'validate', 'schemas', 'simulate', 'user', 'explain', 'dlq', 'journey'])
      expect(stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(stdout).toContain('check every rule and journey file and how they fit together');
  });

  it("shows a command's own options when that command is asked for, either way round", async () => {
    for (const args of [
      ['validate', '--help'],
      ['help', 'validate'],
    ]) {
      const { code, stdout } = await strata(args);
      expect(code).toBe(0);
      expect(stdout).toContain('Usage: strata validate [options] [dir]');
      expect(stdout).toContain('--strict');
    }
  });

  it('suggests the command meant by a typo', async () => {
    const { code, stderr } = await strata(['valdate']);
    expect(code).toBe(1);
    expect(stderr).toContain("unknown command 'valdate'");
    expect(stderr).toContain('Did you mean validate?');
  });

  it('runs a bundle built from the current sources, with source maps for STRATA_DEBUG', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('./bin/cli-bundle.js'); process.stdout.write(String(m.bundleIsFresh()));"],
      { cwd: root },
    );
    expect(stdout).toBe('true');
    const manifest = JSON.parse(await readFile(join(root, 'dist', 'cli', 'inputs.json'), 'utf8')) as { inputs: string[] };
    expect(manifest.inputs).toEqual(
      expect.arrayContaining(['functions/cli/main.ts', 'functions/core/ruleset.ts', 'package.json', 'package-lock.json']),
    );
    expect(await readFile(join(root, 'dist', 'cli', 'main.js'), 'utf8')).toMatch(/\/\/# sourceMappingURL=main\.js\.map\s*$/);
  });
});
