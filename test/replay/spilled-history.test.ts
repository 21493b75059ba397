/**
 * A sub-partition spilled to disk (functions/replay/spilled-history.ts) reads back as the very events written, with
 * their line numbers; a file cut short under the replay, or a folder it cannot write to, is a clear error.
 */
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type UserEvent, parseUserEvent } from '../../functions/core/event.js';
import { SpilledHistory } from '../../functions/replay/spilled-history.js';

const event = (n: number, properties: Record<string, unknown>): UserEvent =>
  parseUserEvent({ eventId: `e-${n}`, userId: `user-${n % 3}`, type: 'order.paid', occurredAt: '2026-09-02T10:00:00.000Z', properties }, `line ${n}`);

describe('a spilled history', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-spill-test-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads back each part as written: the same events, in order, with their lines', () => {
    const written = [
      event(1, { amount: 1299.5, product: 'course', currency: 'CNY' }),
      event(2, { note: 'tab\there, newline\nthere, 引号 "quoted", \u2028', nested: { list: [1, 'two', null, true] } }),
      event(3, { amount: 0, big: 9007199254740991, small: 1e-7 }),
    ];
    const spill = new SpilledHistory(dir, 'round-trip', 2);
    // Far more than a write chunk, so that the flushes are exercised too.
    const many = 40_000;
    for (let i = 0; i < many; i++) spill.add(i % 2, i + 10, written[i % 3]!);
    spill.close();
    for (const part of [0, 1]) {
      const read: Array<[number, UserEvent]> = [];
      spill.read(part, (readEvent, line) => read.push([line, readEvent]));
      const expected = Array.from({ length: many }, (_, i) => i)
        .filter((i) => i % 2 === part)
        .map((i): [number, UserEvent] => [i + 10, written[i % 3]!]);
      expect(read).toEqual(expected);
      // Key order too: what the replay reads and writes out is the same text.
      expect(read.slice(0, 6).map(([, e]) => JSON.stringify(e))).toEqual(expected.slice(0, 6).map(([, e]) => JSON.stringify(e)));
    }
  });

  it('refuses a part that was cut short under it', async () => {
    const spill = new SpilledHistory(dir, 'cut-short', 1);
    for (let i = 0; i < 100; i++) spill.add(0, i + 1, event(i, { amount: i }));
    spill.close();
    await truncate(join(dir, 'cut-short-0.lines'), 5_000);
    expect(() => spill.read(0, () => undefined)).toThrow(/holds \d+ of its 100 events/);
  });

  it('says where it could not write and what to do', () => {
    expect(() => new SpilledHistory(join(dir, 'no-such-folder'), 'nowhere', 2)).toThrow(
      /could not write the replay's temporary files in .*no-such-folder \(ENOENT.*set TMPDIR to a folder with more/,
    );
  });
});
