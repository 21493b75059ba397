/**
 * Giving memory back when the embedded stack goes quiet. V8 sizes its heap to what a busy stretch needed and only
 * collects when more is allocated, so after a burst of events an idle `strata dev` kept its peak: a run of 12,000
 * events left the main thread's heap at 245 MB of which 60 MB was live, untouched for minutes. A full collection
 * frees that; a few in a row also compact the pages the live objects are spread over, so that V8 can hand them back
 * to the system (one alone freed the objects but kept the pages).
 *
 * Native memory is the other half. LevelDB's block cache and memtables, V8's compiler zones and Node's buffers are
 * malloc'd from glibc's per-thread arenas, and glibc keeps what they free inside the arenas: it returns only a free
 * stretch at an arena's very top, and raises that threshold itself after large frees. After 20,000 events and the
 * idle collections, the heaps of both V8 isolates were back at their post-start size, yet RSS was 218 MB against
 * 145 MB after start; `malloc_trim(0)`, which hands every whole free page of every arena back, took it to 172 MB.
 */
import { createRequire } from 'node:module';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { isMainThread } from 'node:worker_threads';

/** A first collection frees the garbage; the next ones compact, and shrink the young generation (measured: four). */
const IDLE_COLLECTIONS = 4;
let collect: (() => void) | undefined;

/** Full garbage collections in the calling thread (the main thread or a worker's). */
export function releaseMemory(collections = IDLE_COLLECTIONS): void {
  // `gc` is only exposed with --expose-gc; the flag is read when a context is created, so a fresh one carries it.
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  for (let round = 0; round < collections; round++) collect();
}

/** `malloc_trim` from the C library, once loaded; null where there is none to call (not glibc, or no FFI binary). */
let trimNativeHeap: (() => void) | null | undefined;

function nativeHeapTrimmer(): (() => void) | null {
  if (trimNativeHeap !== undefined) return trimNativeHeap;
  trimNativeHeap = null;
  // glibc only: musl and macOS have no malloc_trim and give freed pages back on their own terms.
  if (process.platform !== 'linux') return null;
  try {
    // koffi loads a prebuilt binary from its platform package; required at run time, like dynalite, not bundled.
    const koffi = createRequire(import.meta.url)('koffi') as {
      load(library: string): { func(signature: string): (pad: number) => number };
    };
    const mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    trimNativeHeap = () => void mallocTrim(0);
  } catch {
    // Only an optimisation: without it, freed native memory stays with the process, as it did before.
  }
  return trimNativeHeap;
}

/** Whether `releaseIdleMemory` can return freed native memory on this platform (glibc's `malloc_trim`). */
export function canTrimNativeHeap(): boolean {
  return nativeHeapTrimmer() !== null;
}

/**
 * V8 shrinks the young generation only in a full collection that sees allocation nearly stopped, judged over its
 * last few collections: right after a burst it often does not, and the main thread's young generation kept the
 * 33 MB a busy stretch grew it to (its post-start size is 1 MB once shrunk). One more collection a second later,
 * when the burst has left V8's window, shrinks it; repeated while it stays over this size, a few times at most.
 */
const IDLE_YOUNG_GENERATION_BYTES = 4 * 1024 * 1024;
const YOUNG_GENERATION_RETRIES = 5;
const YOUNG_GENERATION_RETRY_MS = 1_000;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.physical_space_size ?? 0;
}

/**
 * A full collection that moves every live object of the old generation together, so that V8 frees the pages they
 * were spread over. A normal collection only empties pages that are more than 70 % free: after 20,000 events the
 * main thread's old generation kept 62 MB of pages for 34 MB of live objects. V8 has no API for it, so its flag is
 * set for this one collection (it is read at each collection; it implies no other flag).
 */
function compactingCollection(): void {
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    releaseMemory(1);
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

/**
 * For a quiet stack: full collections in the calling thread until its young generation has shrunk, then every free
 * page of the process's malloc arenas (all threads') back to the system. Not while busy: the pages would be
 * faulted straight back in. The main thread also compacts its old generation; V8's flags are shared by every
 * thread, so only that one thread turns compaction on (dynalite's worker keeps little garbage between requests).
 */
export async function releaseIdleMemory(stillQuiet: () => boolean = () => true): Promise<void> {
  releaseMemory();
  if (isMainThread) compactingCollection();
  for (let retry = 0; retry < YOUNG_GENERATION_RETRIES && youngGenerationBytes() > IDLE_YOUNG_GENERATION_BYTES; retry++) {
    await sleep(YOUNG_GENERATION_RETRY_MS, undefined, { ref: false });
    if (!stillQuiet()) return; // busy again: the young generation is in use, and the next quiet spell retries
    releaseMemory(1);
  }
  nativeHeapTrimmer()?.();
}

export interface IdleMemoryReleaseOptions {
  /** Any count that moves while the stack works (events accepted and applied, journey steps…). */
  activity: () => number;
  /** How long the count must stay still before memory is released. */
  quietMs: number;
  /**
   * While busy, memory is also released (at most once per `quietMs`) when this thread's heap has grown past this
   * many bytes: V8 lets a busy heap reach several times its live size before it collects.
   */
  busyHeapBytes: number;
  /**
   * How often a busy heap is measured against `busyHeapBytes` (default `quietMs`). Measured only every `quietMs`,
   * a heap growing with ingest overshot the bound by tens of MB before it was collected.
   */
  busyCheckMs?: number;
  /** Called with a check that the activity count has not moved since the release began. */
  release: (stillQuiet: () => boolean) => void | Promise<void>;
}

/** Releases memory once after each busy stretch, when `activity` has not moved for `quietMs`, and when a busy heap grows too big. */
export function releaseMemoryWhenIdle(options: IdleMemoryReleaseOptions): { stop(): void } {
  let seen = options.activity();
  let busySinceRelease = false;
  let lastBusyRelease = 0;
  const timer = setInterval(() => {
    const now = options.activity();
    if (now !== seen) {
      seen = now;
      busySinceRelease = true;
      return;
    }
    if (!busySinceRelease) return;
    busySinceRelease = false;
    const quietAt = now;
    void Promise.resolve(options.release(() => options.activity() === quietAt)).catch(() => undefined); // only an optimisation: never fatal
  }, options.quietMs);
  timer.unref();
  const busyTimer = Number.isFinite(options.busyHeapBytes)
    ? setInterval(() => {
        // Only while busy (the last quiet check saw activity), and at most once per quiet time, so that a live heap
        // larger than the bound costs two collections per `quietMs` at worst.
        if (!busySinceRelease || Date.now() - lastBusyRelease < options.quietMs) return;
        if (getHeapStatistics().total_heap_size <= options.busyHeapBytes) return;
        lastBusyRelease = Date.now();
        // Two collections free the garbage and compact a little; more would hold up ingest for little gain.
        releaseMemory(2);
      }, options.busyCheckMs ?? options.quietMs)
    : undefined;
  busyTimer?.unref();
  return {
    stop: () => {
      clearInterval(timer);
      clearInterval(busyTimer);
    },
  };
}

/**
 * The same bound for a thread with no activity count of its own (dynalite's worker): every `checkMs`, when the heap
 * has grown past `heapBytes` since the last look, two full collections. An idle heap does not grow, so it is left
 * alone.
 */
export function boundBusyHeap(options: { heapBytes: number; checkMs: number }): { stop(): void } {
  let lastUsed = getHeapStatistics().used_heap_size;
  const timer = setInterval(() => {
    const { used_heap_size: used, total_heap_size: total } = getHeapStatistics();
    const grew = used > lastUsed;
    lastUsed = used;
    if (grew && total > options.heapBytes) {
      releaseMemory(2);
      lastUsed = getHeapStatistics().used_heap_size;
    }
  }, options.checkMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
