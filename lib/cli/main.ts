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

/** Runs the command and returns its exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = process,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
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
    return await executeCommand(command, io, env);
  } catch (error) {
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
