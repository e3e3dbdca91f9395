/**
 * Runs a parsed `meter-sync` command against its site and prints the outcome. Loaded by main.ts
 * only once a command needs a database: the driver and the engine are most of the start-up time.
 */

import type { CredentialsSource } from '../credentials/credentials-source';
import { UrlCredentials } from '../credentials/url-credentials';
import type { SyncResult } from '../engine/sync-result';
import { checkSite, migrateSite, operationSettings, planSite, syncSite } from '../operations';
import { failureExitCode } from './exit-codes';
import { formatCheck } from './format-check';
import { formatMigration } from './format-migration';
import { formatPlan } from './format-plan';
import { formatResult, ranNothing, resultErrors } from './format-result';
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
    return new UrlCredentials({ site, remote, env, ...(tenantId !== undefined ? { tenantId } : {}) });
  }
  const [{ SecretsManagerClient }, { SecretsManagerCredentials }] = await Promise.all([
    import('@aws-sdk/client-secrets-manager'),
    import('../credentials/secrets-manager-credentials'),
  ]);
  return new SecretsManagerCredentials({
    client: new SecretsManagerClient({}),
    siteSecretPrefix: connection.siteSecretPrefix,
    remoteSecretId: connection.remoteSecretId,
  });
}

const siteIdOf = (connection: SiteConnection) =>
  connection.kind === 'site-id' ? { siteId: connection.siteId } : {};

/**
 * A run's outcome: the result on stdout (its table, or the JSON with `--json`), every error on
 * stderr, a line each. A run that failed before any entity ran is its one error line.
 */
function printRun<R extends SyncResult>(
  io: CliIo,
  json: boolean,
  result: R,
  format: (result: R) => string,
): void {
  // A cancelled run says so alone (main.ts).
  if (result.error?.code === 'CANCELLED') return;
  if (json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (!ranNothing(result)) io.stdout.write(`${format(result)}\n`);
  for (const line of resultErrors(result)) io.stderr.write(`meter-sync: ${line}\n`);
}

type RunCommand = Extract<Command, { kind: 'sync' | 'plan' }>;

/** What a sync and a plan both ask of the site: its entities, the guard, the tenant. */
function runRequest(command: RunCommand) {
  return {
    ...siteIdOf(command.connection),
    ...(command.entities ? { entities: command.entities } : {}),
    allowMassDelete: command.allowMassDelete,
    allowTenantChange: command.allowTenantChange,
    ...(command.maxDeleteRatio !== undefined ? { maxDeleteRatio: command.maxDeleteRatio } : {}),
  };
}

/** How a sync and a plan run: their deadline, their progress on a terminal, Ctrl-C. */
function runOptions(
  command: RunCommand,
  progress: ReturnType<typeof terminalProgress> | { done(): void },
  signal: AbortSignal | undefined,
) {
  return {
    ...(signal ? { signal } : {}),
    ...(command.timeoutMs !== undefined ? { deadline: Date.now() + command.timeoutMs } : {}),
    ...('onProgress' in progress ? { onProgress: progress.onProgress } : {}),
  };
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
  signal?: AbortSignal,
): Promise<number> {
  const cancel = signal ? { signal } : {};
  switch (command.kind) {
    case 'migrate': {
      const result = await migrateSite(
        await credentialsFor(command.connection, env),
        { ...siteIdOf(command.connection), allowTenantChange: command.allowTenantChange },
        cancel,
      );
      if (signal?.aborted) return 1;
      if (command.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else if (!result.error) io.stdout.write(`${formatMigration(result)}\n`);
      if (result.error) io.stderr.write(`meter-sync: [${result.error.code}] ${result.error.message}\n`);
      return result.ok ? 0 : failureExitCode(result.error?.code);
    }
    case 'sync': {
      const credentials = await credentialsFor(command.connection, env);
      const progress = command.json ? { done() {} } : terminalProgress(io.stderr);
      const result = await syncSite(
        credentials,
        { ...runRequest(command), dryRun: command.dryRun },
        { ...operationSettings(env), ...runOptions(command, progress, signal) },
      );
      progress.done();
      printRun(io, command.json, result, formatResult);
      return result.ok ? 0 : failureExitCode(result.error?.code);
    }
    case 'plan': {
      const credentials = await credentialsFor(command.connection, env);
      const progress = command.json ? { done() {} } : terminalProgress(io.stderr);
      const result = await planSite(
        credentials,
        { ...runRequest(command), maxChanges: command.maxChanges },
        { ...guardSettings(env), ...runOptions(command, progress, signal) },
      );
      progress.done();
      printRun(io, command.json, result, formatPlan);
      return result.ok ? 0 : failureExitCode(result.error?.code);
    }
    case 'check': {
      const report = await checkSite(
        await credentialsFor(command.connection, env),
        siteIdOf(command.connection),
        cancel,
      );
      if (signal?.aborted) return 1;
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
