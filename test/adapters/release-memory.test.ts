/**
 * The embedded stack hands the heap a burst grew back to the system once it is idle: V8 alone keeps its peak, and
 * glibc keeps what native code freed.
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { canTrimNativeHeap, releaseIdleMemory, releaseMemory, releaseMemoryWhenIdle } from '../../functions/local/release-memory.js';

const MB = 1024 * 1024;

function residentBytes(): number {
  // process.memoryUsage().rss, read straight from the kernel.
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

function space(name: string): { used: number; size: number; physical: number } {
  const found = getHeapSpaceStatistics().find((s) => s.space_name === name)!;
  return { used: found.space_used_size, size: found.space_size, physical: found.physical_space_size };
}

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

  it('compacts an old generation whose live objects are spread thin, and shrinks the young generation', async () => {
    expect(isMainThread).toBe(true); // compaction is the main thread's (vitest runs each file in a process of its own)
    let objects = Array.from({ length: 600_000 }, (_, i) => ({ i, text: `item ${i}` }));
    releaseMemory(); // now in the old generation
    // A third survives, evenly spread: each page is about two-thirds free, too little for V8 to empty it itself.
    objects = objects.filter((_, i) => i % 3 === 0);
    releaseMemory();
    const spread = space('old_space');
    expect(spread.size).toBeGreaterThan(1.5 * spread.used);
    for (let i = 0; i < 200_000; i++) objects.push({ i, text: `young ${i}` }); // grows the young generation
    objects.length = 200_000;
    await releaseIdleMemory();
    const compacted = space('old_space');
    expect(compacted.size).toBeLessThan(1.2 * compacted.used);
    expect(spread.size - compacted.size).toBeGreaterThan(10 * MB);
    expect(space('new_space').physical).toBeLessThanOrEqual(4 * MB);
    expect(objects[199_999]).toEqual({ i: 599_997, text: 'item 599997' });
  });

  it.skipIf(!canTrimNativeHeap())('gives native memory that glibc kept after a burst back to the system', async () => {
    // Buffers of this size are malloc'd; with every 64th still in use, no free stretch reaches the top of an arena,
    // the only part glibc returns of its own accord.
    let buffers = Array.from({ length: 40_000 }, () => Buffer.allocUnsafeSlow(4096).fill(7));
    const kept = buffers.filter((_, i) => i % 64 === 0);
    buffers = [];
    releaseMemory(); // frees the buffers' memory, which glibc keeps
    await new Promise((resolve) => setTimeout(resolve, 200)); // V8 frees array buffers on a helper thread
    const before = residentBytes();
    await releaseIdleMemory();
    const after = residentBytes();
    expect(buffers).toHaveLength(0);
    expect(before - after).toBeGreaterThan(80 * MB);
    expect(kept.every((buffer) => buffer.length === 4096 && buffer.every((byte) => byte === 7))).toBe(true);
  });

  it('releases once after each busy stretch, when the activity count has stood still for the quiet time', async () => {
    let busy = false;
    let count = 0;
    let checks = 0;
    let releases = 0;
    const quietChecks: Array<() => boolean> = [];
    const idle = releaseMemoryWhenIdle({
      // While busy, the count moves between any two checks, however late the timer fires.
      activity: () => {
        checks++;
        return busy ? ++count : count;
      },
      quietMs: 10,
      busyHeapBytes: Number.POSITIVE_INFINITY,
      release: (stillQuiet) => {
        releases++;
        quietChecks.push(stillQuiet);
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
      expect(quietChecks[0]!()).toBe(true);
      busy = true;
      await afterChecks(2);
      busy = false;
      await afterChecks(5);
      expect(releases).toBe(2);
      expect(quietChecks[0]!()).toBe(false); // the first release's stretch ended when activity moved
    } finally {
      idle.stop();
    }
  });
});
