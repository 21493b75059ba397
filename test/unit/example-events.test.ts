/**
 * examples/events.jsonl is generated on demand, not kept in git: the same file on every machine, written whole or
 * not at all, and never overwritten once there.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCommand } from '../../functions/cli/commands/simulate.js';
import { EXAMPLE_EVENTS_FILE, ensureExampleEvents } from '../../functions/local/example-events.js';
import { generateEvents, toJsonLines } from '../../functions/local/example-population.js';

const SMALL = { users: 25, days: 10, seed: 7, start: '2026-09-01' };

describe('ensureExampleEvents', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-example-events-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates the seeded population into a missing file and folder, byte for byte the same every time', async () => {
    const first = join(dir, 'a', 'examples', 'events.jsonl');
    const second = join(dir, 'b', 'examples', 'events.jsonl');
    expect(await ensureExampleEvents(first, SMALL)).toBe(true);
    expect(await ensureExampleEvents(second, SMALL)).toBe(true);
    const text = await readFile(first, 'utf8');
    expect(text).toBe(await readFile(second, 'utf8'));
    expect(text).toBe(toJsonLines(generateEvents(SMALL)));
    expect(text.trim().split('\n').length).toBeGreaterThan(SMALL.users);
    // Nothing but the file itself is left in the folder.
    expect(await readdir(join(dir, 'a', 'examples'))).toEqual(['events.jsonl']);
  });

  it('leaves an existing file alone', async () => {
    const file = join(dir, 'mine.jsonl');
    await writeFile(file, '{"mine":true}\n');
    expect(await ensureExampleEvents(file, SMALL)).toBe(false);
    expect(await readFile(file, 'utf8')).toBe('{"mine":true}\n');
  });

  it('is what `strata simulate` reads when no --events is given', () => {
    const events = simulateCommand({ info: () => undefined, error: () => undefined }).options.find((option) => option.long === '--events');
    expect(events?.defaultValue).toBe(EXAMPLE_EVENTS_FILE);
    expect(existsSync(join(import.meta.dirname, '..', '..', 'examples', 'small-events.jsonl'))).toBe(true);
  });
});
