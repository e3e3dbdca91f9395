/**
 * The migrate operation (DESIGN §4): brings one site's schema up to date, by site id or by URL.
 *
 * 1. Load the site's credentials and the remote's (re-read once after a refused login: a rotation).
 * 2. Migrate: refused (SITE_IS_REMOTE) when the site is the remote database itself; else under the
 *    site's run lock, in one transaction, adopting the entity tables the site already has that fit
 *    and refusing, before any change, those that do not (SITE_SCHEMA_CONFLICT) and tables of
 *    several tenants that nothing says which to keep of (SITE_MIXED_TENANTS); `locked` while a run
 *    is at work.
 * 3. Report the versions, the migrations applied, and what was adopted, added and kept.
 */
import type { CredentialsSource } from '../credentials';
import type { ErrorReport } from '../engine';
import { type SchemaDifference, SiteSchemaConflictError } from '../errors';
import { migrateUnderLock } from './migrate-under-lock';
import type { OperationOptions } from './operation-options';
import { withCredentials } from './with-credentials';

export interface MigrateSiteRequest {
  siteId?: string;
  /** Adopt tables holding rows of several tenants, keeping the site's tenant's (it is then bound to it). */
  allowTenantChange?: boolean;
}

export interface MigrateResult {
  ok: boolean;
  status: 'ok' | 'locked' | 'failed';
  siteId?: string;
  action: 'migrate';
  /** The schema version before and after; null when the site could not be read. */
  fromVersion: number | null;
  toVersion: number | null;
  /** `version name` of each migration applied, in order. */
  applied: string[];
  /** The entity tables the site already had and that fit: kept with their rows (the first sync reconciles them). */
  adopted: string[];
  /** What the migration created: `table sync_run`, `foreign key … on …`, `index … on …`. */
  added: string[];
  /** What an adopted table has that the site schema would not, left as it is: its rows, its own columns, compatible types. */
  kept: string[];
  /** With SITE_SCHEMA_CONFLICT: every way the site's tables do not fit, as the message lists them. */
  conflicts?: SchemaDifference[];
  durationMs: number;
  error?: ErrorReport;
}

export function migrateSite(
  source: CredentialsSource,
  request: MigrateSiteRequest,
  options: OperationOptions = {},
): Promise<MigrateResult> {
  const started = Date.now();
  const base = {
    ...(request.siteId !== undefined ? { siteId: request.siteId } : {}),
    action: 'migrate' as const,
  };
  // 1.
  return withCredentials(
    (refresh) => source.loadForMigration(request.siteId, { refresh }),
    async (credentials): Promise<MigrateResult> => {
      // 2.
      const step = await migrateUnderLock(
        {
          site: credentials.site,
          remote: credentials.remote,
          ...(credentials.tenantId !== undefined ? { tenantId: credentials.tenantId } : {}),
          ...(request.allowTenantChange ? { allowTenantChange: true } : {}),
        },
        options,
      );
      const durationMs = Date.now() - started;
      const unchanged = {
        fromVersion: step.fromVersion,
        toVersion: step.fromVersion,
        applied: [],
        adopted: [],
        added: [],
        kept: [],
        durationMs,
      };
      if ('error' in step)
        return {
          ok: false,
          status: 'failed',
          ...base,
          ...unchanged,
          ...(step.error instanceof SiteSchemaConflictError
            ? { conflicts: [...step.error.differences] }
            : {}),
          error: { code: step.error.code, message: step.error.message },
        };
      if ('locked' in step.outcome)
        return {
          ok: false,
          status: 'locked',
          ...base,
          ...unchanged,
          error: { code: 'SITE_LOCKED', message: 'another meter-sync run holds this site; nothing was done' },
        };
      // 3.
      const { from, to, applied, adopted, added, kept } = step.outcome;
      return {
        ok: true,
        status: 'ok',
        ...base,
        fromVersion: from,
        toVersion: to,
        applied: applied.map((m) => `${m.version} ${m.name}`),
        adopted: [...adopted],
        added: [...added],
        kept: [...kept],
        durationMs,
      };
    },
    options.onCredentialsRefreshed,
  );
}
