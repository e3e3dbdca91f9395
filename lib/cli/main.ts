/** The `meter-sync` command: sync, migrate and demo. Errors are one line, never a stack trace or a password. */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { version } from '../../package.json';
import { type CredentialsSource, SecretsManagerCredentials, UrlCredentials } from '../credentials';
import { MeterSyncError, UsageError } from '../errors';
import {
  checkSite,
  type MigrateResult,
  migrateSite,
  operationSettings,
  planSite,
  syncSite,
} from '../operations';
import { runDemo } from './demo';
import { formatCheck } from './format-check';
import { formatPlan } from './format-plan';
import { formatResult } from './format-result';
import { type Command, commandUsage, parseCommand, type SiteConnection, USAGE } from './parse-command';
import { terminalProgress } from './progress';

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/**
 * By id, the function's own credentials source (same secrets, same parsing, same cache), with the
 * SDK's default credential chain and region; by URLs, the URLs.
 */
function credentialsFor(connection: SiteConnection, env: NodeJS.ProcessEnv): CredentialsSource {
  if (connection.kind === 'urls') {
    const { site, remote, tenantId } = connection;
    return new UrlCredentials({
      site,
      env,
      ...(remote !== undefined ? { remote } : {}),
      ...(tenantId !== undefined ? { tenantId } : {}),
    });
  }
  return new SecretsManagerCredentials({
    client: new SecretsManagerClient({}),
    siteSecretPrefix: connection.siteSecretPrefix,
    ...(connection.remoteSecretId !== undefined ? { remoteSecretId: connection.remoteSecretId } : {}),
  });
}

const siteIdOf = (connection: SiteConnection) =>
  connection.kind === 'site-id' ? { siteId: connection.siteId } : {};

async function execute(command: Command, io: CliIo, env: NodeJS.ProcessEnv): Promise<number> {
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
    case 'migrate': {
      const result = await migrateSite(
        credentialsFor(command.connection, env),
        siteIdOf(command.connection),
        {},
      );
      if (command.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else if (result.error) io.stderr.write(`meter-sync: [${result.error.code}] ${result.error.message}\n`);
      else io.stdout.write(`${formatMigration(result)}\n`);
      if (result.ok) return 0;
      return result.error && CONFIGURATION_CODES.has(result.error.code) ? 2 : 1;
    }
    case 'sync': {
      const progress = command.json ? { done() {} } : terminalProgress(io.stderr);
      const result = await syncSite(
        credentialsFor(command.connection, env),
        {
          ...siteIdOf(command.connection),
          ...(command.entities ? { entities: command.entities } : {}),
          dryRun: command.dryRun,
          allowMassDelete: command.allowMassDelete,
          allowTenantChange: command.allowTenantChange,
          ...(command.maxDeleteRatio !== undefined ? { maxDeleteRatio: command.maxDeleteRatio } : {}),
        },
        {
          ...operationSettings(env),
          ...(command.timeoutMs !== undefined ? { deadline: Date.now() + command.timeoutMs } : {}),
          ...('onProgress' in progress ? { onProgress: progress.onProgress } : {}),
        },
      );
      progress.done();
      io.stdout.write(`${command.json ? JSON.stringify(result, null, 2) : formatResult(result)}\n`);
      if (result.ok) return 0;
      return result.error && CONFIGURATION_CODES.has(result.error.code) ? 2 : 1;
    }
    case 'plan': {
      const progress = command.json ? { done() {} } : terminalProgress(io.stderr);
      const result = await planSite(
        credentialsFor(command.connection, env),
        {
          ...siteIdOf(command.connection),
          ...(command.entities ? { entities: command.entities } : {}),
          allowMassDelete: command.allowMassDelete,
          allowTenantChange: command.allowTenantChange,
          ...(command.maxDeleteRatio !== undefined ? { maxDeleteRatio: command.maxDeleteRatio } : {}),
          maxChanges: command.maxChanges,
        },
        {
          ...guardSettings(env),
          ...(command.timeoutMs !== undefined ? { deadline: Date.now() + command.timeoutMs } : {}),
          ...('onProgress' in progress ? { onProgress: progress.onProgress } : {}),
        },
      );
      progress.done();
      io.stdout.write(`${command.json ? JSON.stringify(result, null, 2) : formatPlan(result)}\n`);
      if (result.ok) return 0;
      return result.error && CONFIGURATION_CODES.has(result.error.code) ? 2 : 1;
    }
    case 'check': {
      const report = await checkSite(
        credentialsFor(command.connection, env),
        siteIdOf(command.connection),
        {},
      );
      io.stdout.write(`${command.json ? JSON.stringify(report, null, 2) : formatCheck(report)}\n`);
      return report.ok ? 0 : 1;
    }
    case 'demo':
      await runDemo(io.stdout);
      return 0;
  }
}

/**
 * Failures that running again cannot mend, only a change of configuration: exit 2, as bad usage.
 * A connection refused or lost may be the network's passing fault: exit 1.
 */
const CONFIGURATION_CODES: ReadonlySet<string> = new Set([
  'AUTHENTICATION_FAILED',
  'TENANT_MISMATCH',
  'SITE_NOT_MIGRATED',
  'SITE_SCHEMA_NEWER',
  'MIGRATION_FAILED',
  'BAD_SECRET',
  'SECRET_NOT_FOUND',
  'BAD_CONFIGURATION',
]);

/** The deployment's mass-delete guard, from the environment as the function reads it. */
function guardSettings(env: NodeJS.ProcessEnv) {
  const { maxDeleteRatio, massDeleteMinRows } = operationSettings(env);
  return { maxDeleteRatio, massDeleteMinRows };
}

function formatMigration(result: MigrateResult): string {
  if (result.error)
    return `meter-sync: migrate ${result.status}: [${result.error.code}] ${result.error.message}`;
  if (result.applied.length === 0) return `site schema already at version ${result.toVersion}`;
  return `site schema migrated from version ${result.fromVersion} to ${result.toVersion}: ${result.applied.join('; ')}`;
}

/** Runs the command and returns its exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = process,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    return await execute(parseCommand(argv, undefined, env), io, env);
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
    return error instanceof MeterSyncError && CONFIGURATION_CODES.has(error.code) ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
