/**
 * An append-only file whose appends are durable when they resolve: written and fsync'd, with the appends made while
 * an fsync is under way sharing the next one (group commit), so many writers pay for few fsyncs. A crash can only
 * cut the last line short. `replaceWith` swaps in new contents the crash-safe way: a temporary file, fsync'd, then
 * renamed over the old one and the folder fsync'd, so a crash leaves either the old file or the new one whole.
 */
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

const REPLACING_SUFFIX = '.replacing';

export class DurableFileError extends Error {
  override readonly name = 'DurableFileError';
}

export interface DurableFile {
  readonly path: string;
  /** Resolves once `text` is on disk. */
  append(text: string): Promise<void>;
  /** Replaces the whole file with `text` once the appends before it are done; appends after it follow it. */
  replaceWith(text: string): Promise<void>;
  /** Waits for the writes under way, then closes the file; later writes are refused. */
  close(): Promise<void>;
}

interface PendingWrite {
  kind: 'append' | 'replace';
  text: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Opens `path` for appending (creating it), first dropping what a replace cut short by a crash left behind. */
export async function openDurableFile(path: string): Promise<DurableFile> {
  await rm(path + REPLACING_SUFFIX, { force: true });
  let handle: FileHandle = await open(path, 'a');
  const queue: PendingWrite[] = [];
  let writing: Promise<void> | undefined;
  let closed = false;

  const failure = (error: unknown): DurableFileError =>
    new DurableFileError(`DurableFile: could not write ${path} (${(error as Error).message}); check the disk has space and the folder is writable`, {
      cause: error,
    });

  const settle = async (batch: PendingWrite[], write: () => Promise<void>): Promise<void> => {
    try {
      await write();
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(failure(error));
    }
  };

  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const replaceAt = queue.findIndex((pending) => pending.kind === 'replace');
      if (replaceAt === 0) {
        const replace = queue.shift()!;
        await settle([replace], async () => {
          await handle.close();
          try {
            await replaceFile(path, replace.text);
          } finally {
            handle = await open(path, 'a');
          }
        });
        continue;
      }
      const batch = replaceAt < 0 ? queue.splice(0) : queue.splice(0, replaceAt);
      await settle(batch, async () => {
        await handle.write(batch.map((pending) => pending.text).join(''));
        await handle.datasync();
      });
    }
    writing = undefined;
  };

  const enqueue = (kind: PendingWrite['kind'], text: string): Promise<void> => {
    if (closed)
      return Promise.reject(new DurableFileError(`DurableFile: ${path} is closed; nothing more can be written to it after the stack stopped`));
    return new Promise<void>((resolve, reject) => {
      queue.push({ kind, text, resolve, reject });
      writing ??= drain();
    });
  };

  return {
    path,
    append: (text) => enqueue('append', text),
    replaceWith: (text) => enqueue('replace', text),
    async close() {
      closed = true;
      await writing;
      await handle.close();
    },
  };
}

async function replaceFile(path: string, text: string): Promise<void> {
  const temporary = path + REPLACING_SUFFIX;
  const file = await open(temporary, 'w');
  try {
    await file.write(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  // The rename itself is durable only once the folder is.
  const folder = await open(dirname(path), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
