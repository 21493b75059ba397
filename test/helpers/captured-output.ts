/**
 * Captures what the process writes to stdout and stderr during each test: Powertools writes its logs and EMF
 * metrics there, and the tests check what they say (and that no raw user id appears).
 */
import { afterEach, beforeEach, vi } from 'vitest';

export interface CapturedOutput {
  text(): string;
}

export function captureProcessOutput(): CapturedOutput {
  const chunks: string[] = [];
  beforeEach(() => {
    chunks.length = 0;
    for (const stream of [process.stdout, process.stderr]) {
      vi.spyOn(stream, 'write').mockImplementation((chunk: unknown) => (chunks.push(String(chunk)), true));
    }
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return { text: () => chunks.join('') };
}
