/**
 * The migrate operation (DESIGN §4): brings one site's schema up to date, by site id or by URL.
 *
 * 1. Load the site's credentials alone (re-read once after a refused login: a rotation).
 * 2. Migrate: under the site's run lock, in one transaction; `locked` while a run is at work.
 * 3. Report the versions and the migrations applied.
 */
import type { CredentialsSource } from '../credentials';
import type { ErrorReport } from '../engine';
import { migrateUnderLock } from './migrate-under-lock';
import type { OperationOptions } from './operation-options';
import { withCredentials } from './with-credentials';

export interface MigrateSiteRequest {
  siteId?: string;
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
    (refresh) => source.loadSite(request.siteId, { refresh }),
    async (credentials): Promise<MigrateResult> => {
      // 2.
      const step = await migrateUnderLock(credentials.site, options);
      const durationMs = Date.now() - started;
      const unchanged = {
        fromVersion: step.fromVersion,
        toVersion: step.fromVersion,
        applied: [],
        durationMs,
      };
      if ('error' in step)
        return {
          ok: false,
          status: 'failed',
          ...base,
          ...unchanged,
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
      return {
        ok: true,
        status: 'ok',
        ...base,
        fromVersion: step.outcome.from,
        toVersion: step.outcome.to,
        applied: step.outcome.applied.map((m) => `${m.version} ${m.name}`),
        durationMs,
      };
    },
    options.onCredentialsRefreshed,
  );
}
