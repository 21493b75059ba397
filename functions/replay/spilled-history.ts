/**
 * A worker thread's share of a history on disk: the valid event lines of each sub-partition of its users in a
 * temporary file of their own, with their line numbers, so that the worker holds only one sub-partition's events in
 * memory at a time (functions/replay/replay-worker.ts). The lines are kept as the history file has them and read
 * back through the same parser, so a sub-partition's events are exactly the ones a whole read would give.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type EventSink, readNumberedLines } from '../local/event-lines.js';

/** Lines are written in chunks of about this many characters: few system calls, little held back. */
const CHUNK_CHARS = 1 << 20;

/** The numbered lines of a spill file, `<line number>\t<line>` each. */
function* numberedLines(text: string): Generator<[number, string]> {
  let start = 0;
  while (start < text.length) {
    const tab = text.indexOf('\t', start);
    let end = text.indexOf('\n', tab);
    if (end < 0) end = text.length;
    yield [Number(text.slice(start, tab)), text.slice(tab + 1, end)];
    start = end + 1;
  }
}

export class SpilledHistory {
  private readonly files: string[];
  private readonly descriptors: Array<number | undefined>;
  private readonly pending: string[];
  /** Events written to each sub-partition. */
  readonly counts: number[];

  /** Creates one empty file per sub-partition in `dir` (which the caller removes), named after `name`. */
  constructor(dir: string, name: string, parts: number) {
    this.files = Array.from({ length: parts }, (_, part) => join(dir, `${name}-${part}.lines`));
    this.pending = this.files.map(() => '');
    this.counts = this.files.map(() => 0);
    this.descriptors = [];
    try {
      for (const file of this.files) this.descriptors.push(openSync(file, 'wx'));
    } catch (error) {
      this.close();
      throw error;
    }
  }

  get parts(): number {
    return this.files.length;
  }

  add(part: number, lineNumber: number, line: string): void {
    this.pending[part] += `${lineNumber}\t${line}\n`;
    this.counts[part]! += 1;
    if (this.pending[part]!.length >= CHUNK_CHARS) this.flush(part);
  }

  private flush(part: number): void {
    const descriptor = this.descriptors[part];
    if (descriptor === undefined) throw new Error('Spilled history: written to after it was closed');
    if (this.pending[part]!.length > 0) writeSync(descriptor, this.pending[part]!);
    this.pending[part] = '';
  }

  /** Writes what is pending and closes the files; they can be read from then on. Safe to call again (after an error). */
  close(): void {
    let failure: unknown;
    this.descriptors.forEach((descriptor, part) => {
      if (descriptor === undefined) return;
      try {
        if (failure === undefined) this.flush(part);
      } catch (error) {
        failure = error;
      }
      closeSync(descriptor);
      this.descriptors[part] = undefined;
    });
    if (failure !== undefined) throw failure;
  }

  /** Hands a sub-partition's events to `sink`, in the order they were added. */
  read(part: number, sink: EventSink): void {
    if (this.descriptors[part] !== undefined) throw new Error('Spilled history: read before it was closed');
    const skipped = readNumberedLines(numberedLines(readFileSync(this.files[part]!, 'utf8')), sink);
    // Only valid events are spilled; a line that no longer reads is a file changed under the replay.
    if (skipped.length > 0)
      throw new Error(`Spilled history: ${this.files[part]} was changed while in use (line ${skipped[0]!.line}: ${skipped[0]!.reason})`);
  }
}
