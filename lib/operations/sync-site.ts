/**
 * The sync operation (DESIGN §4): one site made equal to its tenant's slice, by site id or by URLs.
 *
 * 1. Load the site's credentials (re-read once after a refused login: a rotation).
 * 2. Sync. A site whose schema is behind answers SITE_NOT_MIGRATED before anything is read.
 * 3. When migrations are automatic, migrate such a site (not in a dry run, which writes nothing):
 *    under its run lock, in a transaction of its own, before the sync transaction, adopting the
 *    entity tables it already has that fit. Locked: another run is at work on the site. A site that
 *    is the remote (SITE_IS_REMOTE), a schema newer than this build (SITE_SCHEMA_NEWER), tables that
 *    do not fit (SITE_SCHEMA_CONFLICT) or hold several tenants' rows (SITE_MIXED_TENANTS, unless
 *    allowTenantChange keeps this run's tenant's), or a migration that fails (MIGRATION_FAILED)
 *    fails the run, nothing touched.
 * 4. Sync the migrated site, and say in the result what the migration did.
 */
import type { CredentialsSource, SyncCredentials } from '../credentials';
import { performSync, type SyncOptions, type SyncResult } from '../engine';
import type { MeterSyncError } from '../errors';
import { migrateUnderLock } from './migrate-under-lock';
import { guardOptions, type OperationOptions, type SiteMigrationsMode } from './operation-options';
import { withCredentials } from './with-credentials';

export interface SyncSiteRequest {
  /** The site, when its credentials are looked up by id; URLs given directly need none. */
  siteId?: string;
  entities?: readonly string[];
  dryRun?: boolean;
  allowMassDelete?: boolean;
  /** Re-bind a site bound to another tenant (DESIGN §3.11). */
  allowTenantChange?: boolean;
  /** This run's share for the mass-delete guard, over the deployment's (the CLI's --max-delete-ratio). */
  maxDeleteRatio?: number;
}

export interface SyncSiteOptions extends OperationOptions {
  /** Default `auto`. */
  siteMigrations?: SiteMigrationsMode;
  /** Days of `sync_run` history a committing run keeps (SYNC_RUN_RETENTION_DAYS). */
  syncRunRetentionDays?: number;
}

function engineOptions(
  credentials: SyncCredentials,
  request: SyncSiteRequest,
  options: SyncSiteOptions,
): SyncOptions {
  return {
    remote: credentials.remote,
    site: credentials.site,
    tenantId: credentials.tenantId,
    ...(request.siteId !== undefined ? { siteId: request.siteId } : {}),
    ...(request.entities ? { entities: request.entities } : {}),
    dryRun: request.dryRun === true,
    allowMassDelete: request.allowMassDelete === true,
    allowTenantChange: request.allowTenantChange === true,
    ...guardOptions(request, options),
    ...(options.deadline !== undefined ? { deadline: options.deadline } : {}),
    ...(options.connectOptions ? { connectOptions: options.connectOptions } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onPhase ? { onPhase: options.onPhase } : {}),
    ...(options.syncRunRetentionDays !== undefined
      ? { syncRunRetentionDays: options.syncRunRetentionDays }
      : {}),
  };
}

/** The run as a whole failed before it synced: every entity reports why, as the engine reports a failed run. */
function failedRun(notMigrated: SyncResult, error: MeterSyncError, started: number): SyncResult {
  const report = { code: error.code, message: error.message };
  return {
    ...notMigrated,
    ok: false,
    status: 'failed',
    durationMs: Date.now() - started,
    entities: notMigrated.entities.map((e) => ({ ...e, status: 'failed', error: report })),
    error: report,
  };
}

async function syncOnce(
  credentials: SyncCredentials,
  request: SyncSiteRequest,
  options: SyncSiteOptions,
): Promise<SyncResult> {
  const started = Date.now();
  const run = engineOptions(credentials, request, options);
  // 2.
  const first = await performSync(run);
  const migrate = (options.siteMigrations ?? 'auto') === 'auto' && request.dryRun !== true;
  if (first.error?.code !== 'SITE_NOT_MIGRATED' || !migrate) return first;
  // 3.
  const step = await migrateUnderLock(
    {
      site: credentials.site,
      remote: credentials.remote,
      tenantId: credentials.tenantId,
      ...(request.allowTenantChange ? { allowTenantChange: true } : {}),
    },
    options,
  );
  if ('error' in step) return failedRun(first, step.error, started);
  if ('locked' in step.outcome) {
    return {
      ...first,
      status: 'locked',
      durationMs: Date.now() - started,
      entities: [],
      error: { code: 'SITE_LOCKED', message: 'another meter-sync run holds this site; nothing was done' },
    };
  }
  // 4.
  const result = await performSync(run);
  const { from, to, adopted, added, kept } = step.outcome;
  return {
    ...result,
    startedAt: first.startedAt,
    durationMs: Date.now() - started,
    ...(to !== from
      ? {
          migration: {
            fromVersion: from,
            toVersion: to,
            adopted: [...adopted],
            added: [...added],
            kept: [...kept],
          },
        }
      : {}),
  };
}

export function syncSite(
  source: CredentialsSource,
  request: SyncSiteRequest,
  options: SyncSiteOptions = {},
): Promise<SyncResult> {
  // 1.
  return withCredentials(
    (refresh) => source.load(request.siteId, { refresh }),
    (credentials) => syncOnce(credentials, request, options),
    options.onCredentialsRefreshed,
  );
}
