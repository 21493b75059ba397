/**
 * Helpers for the end-to-end tests: run the real `strata` command (`node bin/strata.js ...`) as a child process,
 * the way a user or a supervisor does, and watch its output line by line.
 */
import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';

export const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'strata.js');
const run = promisify(execFile);

/** No STRATA_DEBUG from the developer's shell: the tests check what a user sees. */
const env = (): NodeJS.ProcessEnv => ({ ...process.env, STRATA_DEBUG: '' });

export interface StrataResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one `strata` command to completion; `extraEnv` adds to (or, with undefined, removes from) the environment. */
export async function strata(args: string[], cwd = root, extraEnv: Record<string, string | undefined> = {}): Promise<StrataResult> {
  const childEnv = { ...env(), ...extraEnv };
  for (const [name, value] of Object.entries(extraEnv)) if (value === undefined) delete childEnv[name];
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd, env: childEnv, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The stack's clock at which `strata dev` printed a log line: "2026-11-23 17:30 +08:00  ..." (ruleset's zone). */
export function logStampOf(text: string): number {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}) ([+-]\d{2}:\d{2}) {2}/.exec(text);
  if (!match) throw new Error(`no time stamp with a zone offset on log line: ${text}`);
  return Date.parse(`${match[1]}T${match[2]}:00${match[3]}`);
}

/** A port that was free a moment ago: the OS picks it, we release it and hand it to the stack. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LogLine {
  text: string;
  /** Wall-clock time (Date.now()) at which the test read the line. */
  seenAt: number;
}

export interface RunningStrata {
  lines: LogLine[];
  stderr(): string;
  /** Resolves with the first line (already seen or still to come) that matches; rejects after timeoutMs. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<LogLine>;
  /** Sends a signal and resolves with the exit code (or the signal's name, if the process died of it). */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<number | string>;
  /** Kills the process if a test failed before stopping it. */
  kill(): void;
}

export function startStrata(args: string[]): RunningStrata {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: LogLine) => void }>();
  let partial = '';
  let errors = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const seenAt = Date.now();
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const text of parts) {
      const line = { text, seenAt };
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(text)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (errors += chunk));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));

  return {
    lines,
    stderr: () => errors,
    waitForLine(pattern, timeoutMs) {
      const seen = lines.find((line) => pattern.test(line.text));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          pattern,
          resolve: (line: LogLine) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `no line matching ${pattern} within ${timeoutMs} ms; stdout so far:\n${lines.map((l) => l.text).join('\n')}\nstderr:\n${errors}`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then((code) => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(new Error(`strata exited (${code}) before printing a line matching ${pattern}; stderr:\n${errors}`));
        });
      });
    },
    async stop(signal, timeoutMs) {
      child.kill(signal);
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`strata did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs).unref(),
      );
      return Promise.race([exited, timeout]);
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
