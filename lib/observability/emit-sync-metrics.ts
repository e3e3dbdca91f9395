/**
 * The metrics of one run (DESIGN §4), from its result. Each entity gets its own EMF document (one
 * `SiteId` + `Entity` dimension set per document is how EMF works), published at once; the run's
 * `SyncSucceeded` and `SyncDurationMs` under `SiteId` stay buffered for the logMetrics middleware
 * to flush at the end of the invocation.
 *
 * What is not emitted, on purpose:
 * - a dry run emits nothing: its counts are changes that were not made, and a SyncSucceeded=1 from
 *   it would hide that the site is not really being synced;
 * - a `locked` run emits nothing: it did no work and did not fail; the run holding the lock reports.
 */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SyncResult } from '../engine';
import { EntityMetric, MetricDimension, RunMetric } from './metric-names';

/** Whether a result's run is reported in metrics at all (see the module comment). */
export function isMeasuredRun(result: SyncResult): boolean {
  return !result.dryRun && result.status !== 'locked';
}

export function emitSyncMetrics(metrics: Metrics, siteId: string, result: SyncResult): void {
  // A migration is a change of the site whatever became of the run after it (even a locked one).
  if (result.migration) emitSiteMigrated(metrics, siteId);
  if (!isMeasuredRun(result)) return;
  for (const entity of result.entities) {
    metrics.addDimensions({ [MetricDimension.SiteId]: siteId, [MetricDimension.Entity]: entity.entity });
    metrics.addMetric(EntityMetric.RowsInserted, MetricUnit.Count, entity.inserted);
    metrics.addMetric(EntityMetric.RowsUpdated, MetricUnit.Count, entity.updated);
    metrics.addMetric(EntityMetric.RowsDeleted, MetricUnit.Count, entity.deleted);
    metrics.addMetric(EntityMetric.RowsSkipped, MetricUnit.Count, entity.skipped);
    metrics.addMetric(EntityMetric.EntityFailed, MetricUnit.Count, entity.status === 'failed' ? 1 : 0);
    metrics.addMetric(EntityMetric.EntityDurationMs, MetricUnit.Milliseconds, entity.durationMs);
    metrics.publishStoredMetrics();
  }
  const runFailed = result.status === 'failed' && result.entities.length === 0;
  emitRunMetrics(metrics, siteId, result.ok, result.durationMs, runFailed);
}

/**
 * A run that could not start (its credentials could not be read or were invalid) still counts as a
 * failed sync of the site, so the "no successful sync" alarm and the dashboard see it.
 */
export function emitSyncNotStarted(metrics: Metrics, siteId: string, durationMs: number): void {
  emitRunMetrics(metrics, siteId, false, durationMs, true);
}

function emitRunMetrics(
  metrics: Metrics,
  siteId: string,
  succeeded: boolean,
  durationMs: number,
  runFailed: boolean,
): void {
  metrics.addDimensions({ [MetricDimension.SiteId]: siteId });
  metrics.addMetric(RunMetric.SyncSucceeded, MetricUnit.Count, succeeded ? 1 : 0);
  metrics.addMetric(RunMetric.SyncDurationMs, MetricUnit.Milliseconds, durationMs);
  metrics.addMetric(RunMetric.RunFailed, MetricUnit.Count, runFailed ? 1 : 0);
}

/** A site schema migration was applied (by a sync run, or the migrate action). */
export function emitSiteMigrated(metrics: Metrics, siteId: string): void {
  metrics.addDimensions({ [MetricDimension.SiteId]: siteId });
  metrics.addMetric(RunMetric.SiteMigrated, MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
}
