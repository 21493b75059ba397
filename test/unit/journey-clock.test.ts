import { describe, expect, it } from 'vitest';
import { createRealClock, createScaledClock, createVirtualClock, isVirtualClock } from '../../functions/local/clock.js';

describe('virtual clock', () => {
  it('stands still until advanced, then wakes sleepers in time order', async () => {
    const clock = createVirtualClock('2026-03-02T00:00:00.000Z');
    const woke: string[] = [];
    const sleep = (at: string, name: string) => clock.sleepUntil(new Date(at)).then(() => woke.push(`${name}@${clock.now().toISOString()}`));
    void sleep('2026-03-05T00:00:00.000Z', 'c');
    void sleep('2026-03-03T00:00:00.000Z', 'a');
    void sleep('2026-03-04T00:00:00.000Z', 'b');
    await clock.advanceTo('2026-03-04T12:00:00.000Z');
    expect(woke).toEqual(['a@2026-03-03T00:00:00.000Z', 'b@2026-03-04T00:00:00.000Z']);
    expect(clock.now().toISOString()).toBe('2026-03-04T12:00:00.000Z');
    expect(clock.pendingWakeUps()).toEqual([new Date('2026-03-05T00:00:00.000Z')]);
  });

  it('wakes a sleeper that went back to sleep during the same advance', async () => {
    const clock = createVirtualClock('2026-03-02T00:00:00.000Z');
    const woke: string[] = [];
    void (async () => {
      await clock.sleepUntil(new Date('2026-03-03T00:00:00.000Z'));
      woke.push(clock.now().toISOString());
      await clock.sleepUntil(new Date('2026-03-04T00:00:00.000Z'));
      woke.push(clock.now().toISOString());
    })();
    await clock.advanceBy(14 * 86_400_000);
    expect(woke).toEqual(['2026-03-03T00:00:00.000Z', '2026-03-04T00:00:00.000Z']);
    expect(clock.now().toISOString()).toBe('2026-03-16T00:00:00.000Z');
  });

  it('rejects an aborted sleep and forgets it', async () => {
    const clock = createVirtualClock('2026-03-02T00:00:00.000Z');
    const controller = new AbortController();
    const sleeping = clock.sleepUntil(new Date('2026-03-03T00:00:00.000Z'), controller.signal);
    controller.abort();
    await expect(sleeping).rejects.toMatchObject({ name: 'AbortError' });
    expect(clock.pendingWakeUps()).toEqual([]);
    expect(isVirtualClock(clock)).toBe(true);
  });
});

describe('wall clocks', () => {
  it('a scaled clock runs a day in msPerDay', async () => {
    const clock = createScaledClock({ msPerDay: 1000, start: new Date('2026-03-02T00:00:00.000Z') });
    expect(clock.wallDelayMs!(new Date('2026-03-03T00:00:00.000Z'))).toBeGreaterThan(990);
    expect(clock.wallDelayMs!(new Date('2026-03-03T00:00:00.000Z'))).toBeLessThanOrEqual(1000);
    await clock.sleepUntil(new Date('2026-03-02T00:30:00.000Z'));
    expect(clock.now().getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-02T00:30:00.000Z'));
    expect(isVirtualClock(clock)).toBe(false);
  });

  it('the real clock is wall time', async () => {
    const clock = createRealClock();
    const before = Date.now();
    await clock.sleepUntil(new Date(before + 20));
    expect(Date.now()).toBeGreaterThanOrEqual(before + 20);
    expect(clock.wallDelayMs!(new Date(before - 1000))).toBe(0);
  });
});
