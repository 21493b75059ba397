/**
 * A worker thread's share of a history on disk: the events of each sub-partition of its users in a temporary file of
 * their own, with their line numbers, so that the worker holds only one sub-partition's events in memory at a time
 * (functions/replay/replay-worker.ts). An event is written as parseUserEvent returned it, as JSON, and JSON.parse
 * gives it back as it was (strings, finite numbers, booleans, null, arrays and plain objects, keys in order; only a
 * -0 comes back as 0, which no count, sum or comparison tells apart), without paying for the validation again.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { UserEvent } from '../core/event.js';
import type { EventSink } from '../local/event-lines.js';

/** Lines are written in chunks of about this many characters: few system calls, little held back. */
const CHUNK_CHARS = 1 << 20;

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
      for (const file of this.files) this.descriptors.push(this.writing(() => openSync(file, 'wx')));
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** A write that fails (a full disk, most likely) says where and what to do, not just the system's error code. */
  private writing<T>(write: () => T): T {
    try {
      return write();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(
        `could not write the replay's temporary files in ${dirname(this.files[0]!)} (${reason}); they take about as much room as the history file: free some there, or set TMPDIR to a folder with more`,
        { cause: error },
      );
    }
  }

  get parts(): number {
    return this.files.length;
  }

  add(part: number, lineNumber: number, event: UserEvent): void {
    this.pending[part] += `${lineNumber}\t${JSON.stringify(event)}\n`;
    this.counts[part]! += 1;
    if (this.pending[part]!.length >= CHUNK_CHARS) this.flush(part);
  }

  private flush(part: number): void {
    const descriptor = this.descriptors[part];
    if (descriptor === undefined) throw new Error('Spilled history: written to after it was closed');
    if (this.pending[part]!.length > 0) this.writing(() => writeSync(descriptor, this.pending[part]!));
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
    const text = readFileSync(this.files[part]!, 'utf8');
    let events = 0;
    // Each line `<line number>\t<event as JSON>\n`; JSON text has no raw newline, and no tab before the event.
    for (let start = 0; start < text.length; events++) {
      const tab = text.indexOf('\t', start);
      const end = tab < 0 ? -1 : text.indexOf('\n', tab);
      if (end < 0) break;
      sink(JSON.parse(text.slice(tab + 1, end)) as UserEvent, Number(text.slice(start, tab)));
      start = end + 1;
    }
    if (events !== this.counts[part])
      throw new Error(`Spilled history: ${this.files[part]} holds ${events} of its ${this.counts[part]} events; was it changed while in use?`);
  }
}
