/**
 * examples/events.jsonl, the default event history of `strata simulate`: 2,000 example users over 60 days. It is
 * generated on first use (or by `npm run examples`) rather than kept in git, where it would weigh 8 MB; the
 * population is seeded, so every machine generates the same file.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type GeneratorOptions, generateEvents, toJsonLines } from './example-population.js';

export const EXAMPLE_EVENTS_FILE = 'examples/events.jsonl';
export const EXAMPLE_EVENTS_OPTIONS: GeneratorOptions = { users: 2000, days: 60, seed: 7, start: '2026-09-01' };

/** Generates `file` unless it exists; resolves true when it had to. */
export async function ensureExampleEvents(file: string, options: GeneratorOptions = EXAMPLE_EVENTS_OPTIONS): Promise<boolean> {
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  if (exists) return false;
  await mkdir(dirname(file), { recursive: true });
  // Written aside and renamed, so an interrupted run never leaves half a history behind to be simulated later.
  const partial = `${file}.${process.pid}.partial`;
  try {
    await writeFile(partial, toJsonLines(generateEvents(options)));
    await rename(partial, file);
  } finally {
    await rm(partial, { force: true });
  }
  return true;
}
