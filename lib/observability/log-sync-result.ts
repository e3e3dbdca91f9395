/**
 * The summary log lines of a run: one per entity and one for the run, each with siteId, tenantId
 * and (per entity) entity, so a Logs Insights query can filter on any of them. A failure logs at
 * error level with its code; the result never holds a credential, so neither do these lines.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type SyncResult, totals } from '../engine';
import type { MigrateResult } from '../operations';

export function logSyncResult(logger: Logger, siteId: string, result: SyncResult): void {
  const { tenantId, dryRun } = result;
  for (const entity of result.entities) {
    const { entity: name, status, error, ...counts } = entity;
    const line = { siteId, tenantId, entity: name, status, dryRun, ...counts, ...(error ? { error } : {}) };
    if (status === 'failed') logger.error(`${name}: failed (${error?.code ?? 'unknown'})`, line);
    else logger.info(`${name}: ${status}`, line);
  }
  const failedEntities = result.entities.filter((e) => e.status === 'failed').map((e) => e.entity);
  const line = {
    siteId,
    tenantId,
    status: result.status,
    dryRun,
    startedAt: result.startedAt,
    durationMs: result.durationMs,
    ...totals(result.entities),
    failedEntities,
    ...(result.error ? { error: result.error } : {}),
  };
  if (result.migration)
    logger.info(
      `site schema migrated from version ${result.migration.fromVersion} to ${result.migration.toVersion}`,
      {
        siteId,
        tenantId,
        migration: result.migration,
      },
    );
  const message = `sync ${result.status}${dryRun ? ' (dry run)' : ''}`;
  if (result.status === 'failed') logger.error(message, line);
  else if (result.status === 'partial') logger.warn(message, line);
  else logger.info(message, line);
}

/** The log line of the migrate action: the versions and what was applied, or why not. */
export function logMigrateResult(logger: Logger, siteId: string, result: MigrateResult): void {
  const { ok: _ok, ...line } = result;
  const message = `migrate ${result.status}`;
  if (result.status === 'failed') logger.error(message, { ...line, siteId });
  else if (result.status === 'locked') logger.warn(message, { ...line, siteId });
  else logger.info(message, { ...line, siteId });
}
