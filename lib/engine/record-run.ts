/** Writes a run's result to the site's `sync_run` audit table, in the run's own transaction. */
import type { Client } from 'pg';
import { type SyncResult, totals } from './sync-result';

export async function recordRun(site: Client, result: SyncResult): Promise<void> {
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
}
