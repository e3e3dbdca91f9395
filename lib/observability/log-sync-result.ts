/**
 * The summary log lines of a run: one per entity and one for the run, each with siteId, tenantId
 * and (per entity) entity, so a Logs Insights query can filter on any of them. A failure logs at
 * error level with its code; the result never holds a credential, so neither do these lines.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type PhaseTiming, type SyncResult, totals } from '../engine';
import type { CheckReport, MigrateResult, PlanResult } from '../operations';
import { phaseName } from './run-tracing';

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
    ...(result.tenantChange ? { tenantChange: result.tenantChange } : {}),
    ...(result.error ? { error: result.error } : {}),
  };
  if (result.tenantChange)
    logger.warn(
      `site re-bound from tenant ${result.tenantChange.fromTenantId} to ${result.tenantChange.toTenantId}${dryRun ? ' (dry run)' : ''}`,
      { siteId, tenantId, tenantChange: result.tenantChange },
    );
  if (result.migration) {
    const { fromVersion, toVersion, adopted } = result.migration;
    const adopting = adopted.length > 0 ? `, adopting ${adopted.join(', ')}` : '';
    logger.info(`site schema migrated from version ${fromVersion} to ${toVersion}${adopting}`, {
      siteId,
      tenantId,
      migration: result.migration,
    });
  }
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

/** The one log line of a plan: its status and counts per entity, never the rows it lists. */
export function logPlanResult(logger: Logger, siteId: string, result: PlanResult): void {
  const line = {
    siteId,
    tenantId: result.tenantId,
    status: result.status,
    durationMs: result.durationMs,
    entities: result.entities.map(
      ({ entity, status, inserted, updated, deleted, skipped, changesTruncated, error }) => ({
        entity,
        status,
        inserted,
        updated,
        deleted,
        skipped,
        changesTruncated,
        ...(error ? { error } : {}),
      }),
    ),
    ...(result.error ? { error: result.error } : {}),
  };
  if (result.status === 'failed') logger.error(`plan ${result.status}`, line);
  else logger.info(`plan ${result.status}`, line);
}

/** The one log line of a check: ok or not, and every check with its status and message. */
export function logCheckReport(logger: Logger, siteId: string, report: CheckReport): void {
  const failed = report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
  const warned = report.checks.filter((c) => c.status === 'warn').map((c) => c.name);
  const line = { ...report, siteId, failed, warned };
  if (!report.ok) logger.error(`check failed: ${failed.join(', ')}`, line);
  else if (warned.length > 0) logger.warn(`check ok with warnings: ${warned.join(', ')}`, line);
  else logger.info('check ok', line);
}

/** At DEBUG, one line per phase of the run (connect, and each entity's compare and apply steps): its duration and rows. */
export function logPhase(logger: Logger, timing: PhaseTiming): void {
  const { phase, entity, database, durationMs, rows, error } = timing;
  logger.debug(`${phaseName(timing)}: ${Math.round(durationMs)} ms`, {
    phase,
    ...(entity ? { entity } : {}),
    ...(database ? { database } : {}),
    durationMs: Math.round(durationMs),
    rows,
    ...(error ? { error: { code: error } } : {}),
  });
}
