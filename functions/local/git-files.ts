/**
 * Reads a Strata project's rule and journey files as they were at a git ref (`git show REF:path`), into the same
 * path → text map that readProjectFiles gives for the working tree.
 */
import { execFile } from 'node:child_process';
import type { ProjectFiles } from '../core/ruleset.js';
import { PROJECT_FOLDERS } from './project-files.js';

/** git is missing, the directory is not in a repository, or the ref names no commit. */
export class GitRefError extends Error {
  override readonly name = 'GitRefError';
  constructor(
    readonly problem: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(`GitFiles: ${problem} (${hint})`, options);
  }
}

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

function git(cwd: string, args: string[]): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new GitRefError('git is not installed or not on the PATH', 'install git, or run validate without --against', { cause: error }));
        return;
      }
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function readProjectFilesAtRef(projectDir: string, ref: string): Promise<ProjectFiles> {
  if (ref.trim() === '' || ref.startsWith('-')) {
    throw new GitRefError(`"${ref}" is not a git ref`, 'pass a branch, tag or commit, for example --against main or --against HEAD~1');
  }
  const prefix = await git(projectDir, ['rev-parse', '--show-prefix']);
  if (prefix.code !== 0) {
    throw new GitRefError(
      `${projectDir} is not inside a git repository (${firstLine(prefix.stderr)})`,
      "run it in the project's git checkout, or leave out --against",
    );
  }
  const commit = await git(projectDir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  if (commit.code !== 0) {
    throw new GitRefError(
      `"${ref}" is not a commit in this repository`,
      'pass a branch, tag or commit that exists here, as `git log --oneline` lists them; fetch it first if it is remote',
    );
  }
  const sha = commit.stdout.trim();
  const base = prefix.stdout.trim();
  const listing = await git(projectDir, [
    'ls-tree',
    '-r',
    '--name-only',
    '--full-tree',
    sha,
    '--',
    ...PROJECT_FOLDERS.map((folder) => `${base}${folder}`),
  ]);
  if (listing.code !== 0)
    throw new GitRefError(`cannot list the files of ${ref} (${firstLine(listing.stderr)})`, 'check that the ref is a commit of this repository');
  const files: ProjectFiles = {};
  const paths = listing.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.slice(base.length));
  for (const path of paths.sort()) {
    // The same files readProjectFiles reads: <folder>/<name>.json, one level deep.
    if (!/^[^/]+\/[^/]+\.json$/.test(path)) continue;
    const shown = await git(projectDir, ['show', `${sha}:${base}${path}`]);
    if (shown.code !== 0)
      throw new GitRefError(`cannot read ${path} at ${ref} (${firstLine(shown.stderr)})`, 'check the repository is not shallow or damaged');
    files[path] = shown.stdout;
  }
  return files;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
