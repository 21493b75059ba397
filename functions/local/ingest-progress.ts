/**
 * A periodic line in the `strata dev` live log while events are being applied, so that someone posting a burst
 * sees how far ingest has got and how fast it goes (the endpoint accepts faster than the stack applies). Quiet
 * when nothing changed since the last line.
 */
export interface IngestProgressOptions {
  /** Events applied so far (new and recognised duplicates). */
  applied: () => number;
  intervalMs: number;
  print: (line: string) => void;
}

export interface IngestProgress {
  stop(): void;
}

const formatCount = (value: number): string => value.toLocaleString('en-US');

/** The line's shape, also read back by the `dev` benchmark. */
export function ingestProgressLine(applied: number, newlyApplied: number, seconds: number): string {
  return `ingest: ${formatCount(applied)} events applied (${formatCount(Math.round(newlyApplied / seconds))}/s)`;
}

export const INGEST_PROGRESS_PATTERN = /ingest: ([\d,]+) events applied/;

export function reportIngestProgress(options: IngestProgressOptions): IngestProgress {
  let last = options.applied();
  let lastAt = performance.now();
  const timer = setInterval(() => {
    const applied = options.applied();
    const at = performance.now();
    if (applied !== last) options.print(ingestProgressLine(applied, applied - last, (at - lastAt) / 1000));
    last = applied;
    lastAt = at;
  }, options.intervalMs);
  // The live log must never keep a stopping process alive.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
