/**
 * The `strata dev` clock when the demo runs: journey time starts in the past and runs fast (one day every
 * `catchUpMsPerDay`) until it reaches the moment the stack started, then runs at the normal pace (one day every
 * `msPerDay`). The demo's history therefore plays out in under a minute, and the stack then carries on live.
 */
import type { Clock } from './clock.js';

const DAY_MS = 86_400_000;

export interface CatchUpClockOptions {
  from: Date;
  catchUpMsPerDay: number;
  msPerDay: number;
  wallStart?: number;
}

export function createCatchUpClock(options: CatchUpClockOptions): Clock {
  const wallStart = options.wallStart ?? Date.now();
  const liveFrom = wallStart; // journey time catches up with the wall time at which the stack started
  const fastSpeed = DAY_MS / options.catchUpMsPerDay;
  const liveSpeed = DAY_MS / options.msPerDay;
  const from = options.from.getTime();
  const switchAtWall = wallStart + (liveFrom - from) / fastSpeed;

  const journeyTimeAt = (wall: number): number =>
    wall < switchAtWall ? from + (wall - wallStart) * fastSpeed : liveFrom + (wall - switchAtWall) * liveSpeed;
  const wallTimeAt = (journey: number): number =>
    journey <= liveFrom ? wallStart + (journey - from) / fastSpeed : switchAtWall + (journey - liveFrom) / liveSpeed;

  const clock: Clock = {
    now: () => new Date(journeyTimeAt(Date.now())),
    wallDelayMs: (instant) => Math.max(0, Math.ceil(wallTimeAt(instant.getTime()) - Date.now())),
    async sleepUntil(instant, signal) {
      while (!signal?.aborted && clock.wallDelayMs!(instant) > 0) {
        await new Promise<void>((resolve) => {
          const onAbort = (): void => {
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(
            () => {
              signal?.removeEventListener('abort', onAbort);
              resolve();
            },
            Math.min(clock.wallDelayMs!(instant), 2_000_000_000),
          );
          signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
      if (signal?.aborted) throw signal.reason ?? new DOMException('The sleep was aborted', 'AbortError');
    },
  };
  return clock;
}
