/**
 * Runs a parsed `meter-sync` command against its site and prints the outcome. Loaded by main.ts
 * only once a command needs a database: the driver and the engine are most of the start-up time.
 */
import type { CredentialsSource } from '../credentials/credentials-source';
import { UrlCredentials } from '../credentials/url-credentials';
import {
  checkSite,
  type MigrateResult,
  migrateSite,
  operationSettings,
  planSite,
  syncSite,
} from '../operations';
import { failureExitCode } from './exit-codes';
import { formatCheck } from './format-check';
import { formatPlan } from './format-plan';
import { formatResult } from './format-result';
import type { CliIo } from './main';
import type { Command, SiteConnection } from './parse-command';
import { terminalProgress } from './progress';

/**
 * By id, the function's own credentials source (same secrets, same parsing, same cache), with the
 * SDK's default credential chain and region; by URLs, the URLs. The AWS SDK is loaded only by id:
 * a run by URLs never needs it.
 */
async function credentialsFor(
  connection: SiteConnection,
  env: NodeJS.ProcessEnv,
): Promise<CredentialsSource> {
  if (connection.kind === 'urls') {
    const { site, remote, tenantId } = connection;
    return new UrlCredentials({
      site,
      env,
      ...(remote !== undefined ? { remote } : {}),
      ...(tenantId !== undefined ? { tenantId } : {}),
    });
  }
  const [{ SecretsManagerClient }, { SecretsManagerCredentials }] = await Promise.all([
    import('@aws-sdk/client-secrets-manager'),
    import('../credentials/secrets-manager-credentials'),
  ]);
  return new SecretsManagerCredentials({
    client: new SecretsManagerClient({}),
    siteSecretPrefix: connection.siteSecretPrefix,
    ...(connection.remoteSecretId !== undefined ? { remoteSecretId: connection.remoteSecretId } : {}),
  });
}

const siteIdOf = (connection: SiteConnection) =>
  connection.kind === 'site-id' ? { siteId: connection.siteId } : {};

function formatMigration(result: MigrateResult): string {
  if (result.error)
    return `meter-sync: migrate ${result.status}: [${result.error.code}] ${result.error.message}`;
  if (result.applied.length === 0) return `site schema already at version ${result.toVersion}`;
  return `site schema migrated from version ${result.fromVersion} to ${result.toVersion}: ${result.applied.join('; ')}`;
}

/** The deployment's mass-delete guard, from the environment as the function reads it. */
function guardSettings(env: NodeJS.ProcessEnv) {
  const { maxDeleteRatio, massDeleteMinRows } = operationSettings(env);
  return { maxDeleteRatio, massDeleteMinRows };
}

/** Runs the command and returns its exit code; help, usage and the version never get here (main.ts answers them). */
export async function executeCommand(
  command: Exclude<Command, { kind: 'help' | 'usage' | 'version' }>,
  io: CliIo,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  switch (command.kind) {
    case 'migrate': {
      const result = await migrateSite(
        await credentialsFor(command.connection, env),
        siteIdOf(command.connection),
        {},
      );
      if (command.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else if (result.error) io.stderr.write(`meter-sync: [${result.error.code}] ${result.error.message}\n`);
      else io.stdout.write(`${formatMigration(result)}\n`);
      return result.ok ? 0 : failureExitCode(result.error?.code);
    }
    case 'sync': {
      const credentials = await credentialsFor(command.connection, env);
      const progress = command.json ? { done() {} } : terminalProgress(io.stderr);
      const result = await syncSite(
        credentials,
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
      return result.ok ? 0 : failureExitCode(result.error?.code);
    }
    case 'plan': {
      const credentials = await credentialsFor(command.connection, env);
      const progress = command.json ? { done() {} } : terminalProgress(io.stderr);
      const result = await planSite(
        credentials,
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
      return result.ok ? 0 : failureExitCode(result.error?.code);
    }
    case 'check': {
      const report = await checkSite(
        await credentialsFor(command.connection, env),
        siteIdOf(command.connection),
        {},
      );
      io.stdout.write(`${command.json ? JSON.stringify(report, null, 2) : formatCheck(report)}\n`);
      return report.ok ? 0 : 1;
    }
    case 'demo': {
      // The demo alone needs the Lambda handler (middy, Powertools) and the embedded server.
      const { runDemo } = await import('./demo');
      await runDemo(io.stdout);
      return 0;
    }
  }
}
