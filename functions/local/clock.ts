/**
 * Clocks for the local stack. Journey time is days; a demo wants it in seconds and a test in no time at all, so
 * everything local that waits asks a Clock instead of setTimeout or Date.now():
 * - the real clock: journey time is wall time;
 * - a scaled clock: one day of journey time passes in `msPerDay` wall milliseconds;
 * - a virtual clock: time stands still until the caller advances it, and sleepers wake in order, so a 14-day
 *   journey runs in milliseconds and the same way every time.
 */

const DAY_MS = 86_400_000;
/** setTimeout silently fires after 1 ms for longer delays, so long sleeps are taken in chunks. */
const MAX_TIMER_MS = 2_147_483_647;

export interface Clock {
  now(): Date;
  /** Resolves once the clock reaches `instant` (at once if it already has); rejects with an AbortError on abort. */
  sleepUntil(instant: Date, signal?: AbortSignal): Promise<void>;
  /**
   * Wall-clock milliseconds until the clock reaches `instant`, for code that can only pause with a wall timer
   * (the Wait states of aws-local-stepfunctions). Absent on a virtual clock, whose time does not follow the wall.
   */
  wallDelayMs?(instant: Date): number;
}

export interface VirtualClock extends Clock {
  readonly kind: 'virtual';
  /** Moves time to `instant`, waking every sleeper due on the way in order, and letting each settle before the next. */
  advanceTo(instant: Date | string): Promise<void>;
  advanceBy(ms: number): Promise<void>;
  /** The instants sleepers are waiting for, earliest first. */
  pendingWakeUps(): Date[];
  /**
   * Adds work to wait for after each wake-up before the next is considered, such as a journey runner's idle():
   * a sleeper woken at day 3 may go to sleep again until day 5, and that must happen before time passes day 5.
   */
  settleWith(settle: () => Promise<void>): void;
}

export function isVirtualClock(clock: Clock): clock is VirtualClock {
  return (clock as Partial<VirtualClock>).kind === 'virtual';
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The sleep was aborted', 'AbortError');
}

/** A wall-clock sleep that honours an AbortSignal and delays longer than one timer allows. */
function sleepWall(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function createRealClock(): Clock {
  const clock: Clock = {
    now: () => new Date(),
    wallDelayMs: (instant) => Math.max(0, instant.getTime() - Date.now()),
    async sleepUntil(instant, signal) {
      while (clock.wallDelayMs!(instant) > 0) await sleepWall(clock.wallDelayMs!(instant), signal);
      if (signal?.aborted) throw abortError(signal);
    },
  };
  return clock;
}

/** One day of journey time every `msPerDay` wall milliseconds, starting at `start` (default: now). */
export function createScaledClock(options: { msPerDay: number; start?: Date }): Clock {
  if (!(options.msPerDay > 0)) throw new Error(`Clock: msPerDay must be a positive number, got ${options.msPerDay}`);
  const journeyStart = (options.start ?? new Date()).getTime();
  const wallStart = Date.now();
  const speed = DAY_MS / options.msPerDay;
  const clock: Clock = {
    now: () => new Date(journeyStart + (Date.now() - wallStart) * speed),
    wallDelayMs: (instant) => Math.max(0, Math.ceil((instant.getTime() - clock.now().getTime()) / speed)),
    async sleepUntil(instant, signal) {
      while (clock.wallDelayMs!(instant) > 0) await sleepWall(clock.wallDelayMs!(instant), signal);
      if (signal?.aborted) throw abortError(signal);
    },
  };
  return clock;
}

interface Sleeper {
  at: number;
  order: number;
  wake: () => void;
}

export function createVirtualClock(start: Date | string): VirtualClock {
  let now = new Date(start).getTime();
  if (Number.isNaN(now)) throw new Error(`Clock: ${String(start)} is not a valid start time`);
  let sleepers: Sleeper[] = [];
  let order = 0;
  let advancing = false;
  const settlers: Array<() => Promise<void>> = [];

  const settle = async (): Promise<void> => {
    // Let callbacks of the wake-ups run first, then whatever the registered settlers wait for.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const settler of settlers) await settler();
  };

  const clock: VirtualClock = {
    kind: 'virtual',
    now: () => new Date(now),
    sleepUntil(instant, signal) {
      if (signal?.aborted) return Promise.reject(abortError(signal));
      if (instant.getTime() <= now) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const sleeper: Sleeper = {
          at: instant.getTime(),
          order: order++,
          wake: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = (): void => {
          sleepers = sleepers.filter((s) => s !== sleeper);
          reject(abortError(signal!));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        sleepers.push(sleeper);
      });
    },
    async advanceTo(instant) {
      const target = new Date(instant).getTime();
      if (advancing) throw new Error('Clock: advanceTo is already running; await it before advancing again');
      advancing = true;
      try {
        await settle();
        for (;;) {
          const due = sleepers.filter((s) => s.at <= target).sort((a, b) => a.at - b.at || a.order - b.order);
          const first = due[0];
          if (!first) break;
          now = Math.max(now, first.at);
          const wakeNow = due.filter((s) => s.at <= now);
          sleepers = sleepers.filter((s) => !wakeNow.includes(s));
          for (const sleeper of wakeNow) sleeper.wake();
          await settle();
        }
        now = Math.max(now, target);
      } finally {
        advancing = false;
      }
    },
    advanceBy(ms) {
      return clock.advanceTo(new Date(now + ms));
    },
    pendingWakeUps: () => [...sleepers].sort((a, b) => a.at - b.at || a.order - b.order).map((s) => new Date(s.at)),
    settleWith(settler) {
      settlers.push(settler);
    },
  };
  return clock;
}
