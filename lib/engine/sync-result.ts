/** The result of a run (DESIGN §4): returned by the library, printed by the CLI, returned by the Lambda. */

export type RunStatus = 'ok' | 'partial' | 'failed' | 'locked';
export type EntityStatus = 'ok' | 'failed' | 'skipped';

export interface ErrorReport {
  code: string;
  message: string;
  key?: string;
}

export interface EntityResult {
  entity: string;
  status: EntityStatus;
  inserted: number;
  updated: number;
  deleted: number;
  skipped: number;
  unchanged: number;
  remoteRows: number;
  durationMs: number;
  error?: ErrorReport;
  /**
   * Up to a few keys of what the run skipped: remote rows whose parent is missing, and site rows it
   * did not delete because rows it does not change (outside the run, of a failed entity) reference
   * them. `skippedReasons` says why, key by key.
   */
  skippedKeys?: string[];
  skippedReasons?: string[];
  /** A plan's row-level changes (`maxChanges` at most), in key order; the skips after them. */
  changes?: RowChange[];
  /** More changes than `changes` lists: the counts say how many. */
  changesTruncated?: boolean;
}

/** One row a run changes or skips, as a plan lists it: values are the site's text of them. */
export interface RowChange {
  op: 'insert' | 'update' | 'delete' | 'skip';
  key: Record<string, string | null>;
  /** insert: every column (site null); delete: every column (remote null); update: those that differ. */
  columns?: Record<string, { site: string | null; remote: string | null }>;
  /** Why a skip is one. */
  reason?: string;
}

export interface SyncResult {
  ok: boolean;
  status: RunStatus;
  siteId?: string;
  tenantId: number;
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  /**
   * The site schema migration the run applied before it synced (SITE_MIGRATIONS=auto), when it
   * applied one: the versions, and as the migrate action says them the entity tables it adopted,
   * what it added and what it kept.
   */
  migration?: { fromVersion: number; toVersion: number; adopted: string[]; added: string[]; kept: string[] };
  /** The site was bound to another tenant and this run re-binds it (allowTenantChange). */
  tenantChange?: { fromTenantId: number; toTenantId: number };
  /** Empty when the run failed before any entity ran (a connection, the site schema, the tenant). */
  entities: EntityResult[];
  /** Why the run as a whole failed (a connection, the lock, the site schema, the tenant), when it did. */
  error?: ErrorReport;
}

export function emptyEntityResult(entity: string, status: EntityStatus = 'ok'): EntityResult {
  return {
    entity,
    status,
    inserted: 0,
    updated: 0,
    deleted: 0,
    skipped: 0,
    unchanged: 0,
    remoteRows: 0,
    durationMs: 0,
  };
}

export function runStatus(entities: readonly EntityResult[]): RunStatus {
  const failed = entities.filter((e) => e.status === 'failed').length;
  if (failed === 0) return 'ok';
  return failed === entities.length ? 'failed' : 'partial';
}

export function totals(entities: readonly EntityResult[]): {
  inserted: number;
  updated: number;
  deleted: number;
  skipped: number;
} {
  return entities.reduce(
    (sum, e) => ({
      inserted: sum.inserted + e.inserted,
      updated: sum.updated + e.updated,
      deleted: sum.deleted + e.deleted,
      skipped: sum.skipped + e.skipped,
    }),
    { inserted: 0, updated: 0, deleted: 0, skipped: 0 },
  );
}
