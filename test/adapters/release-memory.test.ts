/**
 * The embedded stack hands the heap a burst grew back to the system once it is idle: V8 alone keeps its peak.
 */
import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { releaseMemory, releaseMemoryWhenIdle } from '../../functions/local/release-memory.js';

const MB = 1024 * 1024;

describe('releasing memory when the stack is idle', () => {
  it('collects a burst of garbage and gives its pages back', () => {
    let burst: unknown[] = [];
    for (let i = 0; i < 1_500_000; i++) burst.push({ i, text: `item ${i}`, pair: [i, i + 1] });
    burst = [];
    const before = getHeapStatistics();
    releaseMemory();
    const after = getHeapStatistics();
    expect(burst).toHaveLength(0);
    expect(before.used_heap_size - after.used_heap_size).toBeGreaterThan(50 * MB);
    expect(before.total_heap_size - after.total_heap_size).toBeGreaterThan(50 * MB);
  });

  it('releases once after each busy stretch, when the activity count has stood still for the quiet time', async () => {
    let busy = false;
    let count = 0;
    let checks = 0;
    let releases = 0;
    const idle = releaseMemoryWhenIdle({
      // While busy, the count moves between any two checks, however late the timer fires.
      activity: () => {
        checks++;
        return busy ? ++count : count;
      },
      quietMs: 10,
      busyHeapBytes: Number.POSITIVE_INFINITY,
      release: () => {
        releases++;
      },
    });
    const afterChecks = async (n: number): Promise<void> => {
      const target = checks + n;
      while (checks < target) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    try {
      await afterChecks(5);
      expect(releases).toBe(0); // never busy: nothing to give back
      busy = true;
      await afterChecks(5);
      expect(releases).toBe(0); // busy: not yet
      busy = false;
      await afterChecks(5);
      expect(releases).toBe(1); // quiet: once, not at every check
      busy = true;
      await afterChecks(2);
      busy = false;
      await afterChecks(5);
      expect(releases).toBe(2);
    } finally {
      idle.stop();
    }
  });
});
