/**
 * Writes a run's result to the site's `sync_run` audit table, in the run's own transaction, and
 * keeps the table's history bounded: rows older than the retention go, at most `PRUNE_BATCH` a run
 * (found through the `started_at` index, so a run's cost does not grow with the history), but never
 * the newest successful run or the newest that was not.
 */
import type { Client } from 'pg';
import { type SyncResult, totals } from './sync-result';

/** A long history left by an older build is worked off over several runs, never all in one. */
export const PRUNE_BATCH = 1_000;

export async function recordRun(site: Client, result: SyncResult, retentionDays?: number): Promise<void> {
  const sum = totals(result.entities);
  const failed = result.entities.filter((e) => e.status === 'failed').map((e) => e.entity);
  await site.query(
    `INSERT INTO sync_run (site_id, tenant_id, status, started_at, duration_ms, inserted, updated, deleted, skipped, failed_entities, result)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      result.siteId ?? null,
      result.tenantId,
      result.status,
      result.startedAt,
      result.durationMs,
      sum.inserted,
      sum.updated,
      sum.deleted,
      sum.skipped,
      failed,
      JSON.stringify(result),
    ],
  );
  if (retentionDays !== undefined) await pruneRuns(site, retentionDays);
}

/** Deletes `sync_run` rows started more than `retentionDays` ago (see recordRun); returns how many. */
export async function pruneRuns(site: Client, retentionDays: number): Promise<number> {
  const { rowCount } = await site.query(
    `DELETE FROM sync_run WHERE id IN (
       SELECT id FROM sync_run WHERE started_at < now() - make_interval(days => $1::integer)
       ORDER BY started_at LIMIT $2)
     AND id <> ALL (ARRAY(
       (SELECT id FROM sync_run WHERE status = 'ok' ORDER BY started_at DESC LIMIT 1)
       UNION ALL (SELECT id FROM sync_run WHERE status <> 'ok' ORDER BY started_at DESC LIMIT 1)))`,
    [retentionDays, PRUNE_BATCH],
  );
  return rowCount ?? 0;
}
