/** Console output for the CLI, and the one error type that is shown to users as a message with a hint. */

export interface CliOutput {
  info(line: string): void;
  error(line: string): void;
}

export const consoleOutput: CliOutput = {
  info: (line) => process.stdout.write(line + '\n'),
  error: (line) => process.stderr.write(line + '\n'),
};

/**
 * `strata user … | head` closes the pipe while the command still writes; like any Unix tool, the command then
 * stops quietly instead of dying on an unhandled EPIPE with a stack trace. A command that must shut down cleanly
 * (`strata dev`, which listens for SIGTERM) gets that signal; any other ends at once, as it has nothing to flush.
 */
export function stopQuietlyOnClosedPipe(): void {
  let closed = false;
  const onError = (error: NodeJS.ErrnoException): void => {
    if (closed) return;
    closed = true;
    if (error.code !== 'EPIPE') {
      // Any other failure to write (a full disk behind a redirect) is a failure, still without a stack trace.
      process.exitCode = 2;
      process.stderr.write(`strata: cannot write the output (${error.code ?? error.message}); check where it is redirected\n`, () => process.exit());
      return;
    }
    if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM');
    else process.exit(0);
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}

/** A mistake in how a command was called or what it was pointed at: printed as `strata: message (hint)`. */
export class UsageError extends Error {
  override readonly name: string = 'UsageError';
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Users never see a stack trace: known errors print their message, anything else a short report. */
export function reportFailure(error: unknown, out: CliOutput): void {
  if (error instanceof UsageError) {
    out.error(`strata: ${error.message}${error.hint ? ` (${error.hint})` : ''}`);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  out.error(`strata: ${message}`);
  if (process.env['STRATA_DEBUG'] && error instanceof Error && error.stack) out.error(error.stack);
  else out.error('(set STRATA_DEBUG=1 for details)');
}
