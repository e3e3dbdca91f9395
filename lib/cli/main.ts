/**
 * The `meter-sync` command's entry (bin/meter-sync.js runs its compiled form): parses the
 * arguments, then loads what the command needs. Errors are one line, never a stack trace or a password.
 */
import { version } from '../../package.json';
import { MeterSyncError, UsageError } from '../errors';
import { failureExitCode } from './exit-codes';
import { commandUsage, parseCommand, USAGE } from './parse-command';

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** Exit codes of a run ended by a signal, as shells report them: 128 and the signal's number. */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

/**
 * Runs the command and returns its exit code. When `signal` aborts (its reason SIGINT or SIGTERM),
 * the command lets go of both databases, says `cancelled` and exits 130 or 143.
 */
export async function main(
  argv: readonly string[],
  io: CliIo = process,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<number> {
  const cancelled = (): number | undefined => {
    if (!signal?.aborted) return undefined;
    io.stderr.write('meter-sync: cancelled\n');
    return SIGNAL_EXIT_CODES[signal.reason as StopSignal] ?? SIGNAL_EXIT_CODES.SIGINT;
  };
  try {
    const command = parseCommand(argv, undefined, env);
    switch (command.kind) {
      case 'help':
        io.stdout.write(`${command.command ? commandUsage(command.command) : USAGE}\n`);
        return 0;
      case 'usage':
        io.stderr.write(`${USAGE}\n`);
        return 2;
      case 'version':
        io.stdout.write(`meter-sync ${version}\n`);
        return 0;
    }
    // Only now: help and bad usage answer without loading the driver, the engine or the AWS SDK.
    const { executeCommand } = await import('./execute-command');
    const code = await executeCommand(command, io, env, signal);
    return cancelled() ?? code;
  } catch (error) {
    const stopped = cancelled();
    if (stopped !== undefined) return stopped;
    if (error instanceof UsageError || (error instanceof MeterSyncError && error.code === 'BAD_OPTIONS')) {
      io.stderr.write(`meter-sync: ${error.message} (see \`meter-sync help\`)\n`);
      return 2;
    }
    const message =
      error instanceof MeterSyncError
        ? `[${error.code}] ${error.message}`
        : `internal error: ${(error as Error)?.message ?? String(error)}`;
    io.stderr.write(`meter-sync: ${message.split('\n')[0]}\n`);
    if (process.env.METER_SYNC_DEBUG && error instanceof Error) io.stderr.write(`${error.stack}\n`);
    return failureExitCode(error instanceof MeterSyncError ? error.code : undefined);
  }
}

/** How long a cancelled run may take to let go before the process ends anyway. */
const CANCEL_EXIT_MS = 5_000;

/**
 * The process's entry (bin/meter-sync.js): the command with Ctrl-C and SIGTERM wired to cancel it.
 * The first signal cancels what is in flight on both connections and rolls back, which releases
 * the site's lock; a second one ends the process at once.
 */
export async function run(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  const onSignal = (name: StopSignal) => {
    if (controller.signal.aborted) process.exit(SIGNAL_EXIT_CODES[name]);
    controller.abort(name);
    // Whatever still holds the process (a server that answers nothing), it ends within seconds.
    setTimeout(() => process.exit(SIGNAL_EXIT_CODES[name]), CANCEL_EXIT_MS).unref();
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((name) => {
    const handler = () => onSignal(name);
    process.on(name, handler);
    return [name, handler] as const;
  });
  try {
    process.exitCode = await main(argv, process, process.env, controller.signal);
  } finally {
    for (const [name, handler] of handlers) process.off(name, handler);
  }
  // A cancelled run's sessions were let go; nothing of the run is left to wait for.
  if (controller.signal.aborted) process.exit(process.exitCode);
}
