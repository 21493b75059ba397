/**
 * Before any test file: compile the `strata` command (bin/cli-bundle.js, what `npm install` runs as `prepare`), so
 * the end-to-end tests run the code in this checkout and parallel test files never race to rebuild it.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function buildStrataCommand(): void {
  execFileSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'cli-bundle.js')], { stdio: 'inherit' });
}
