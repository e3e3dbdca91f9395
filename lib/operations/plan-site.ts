/**
 * The plan operation: the exact row-level changes a sync of one site would make, by site id or by
 * URLs. Read-only on both sides: a dry run (rolled back, no `sync_run` row) that lists, per entity,
 * the rows it would insert, update, delete or skip, `maxChanges` at most, with each update's
 * differing columns and each skip's reason.
 *
 * 1. Load the site's credentials (re-read once after a refused login: a rotation).
 * 2. Run the sync as a dry run that lists its changes. A site whose schema is behind is not
 *    migrated (a plan writes nothing): it answers SITE_NOT_MIGRATED.
 * 3. Report the dry run's result, each entity with its `changes` and `changesTruncated`.
 */
import type { CredentialsSource } from '../credentials';
import { performSync, type SyncResult } from '../engine';
import { DEFAULT_MAX_CHANGES } from '../event';
import { guardOptions, type OperationOptions } from './operation-options';
import { withCredentials } from './with-credentials';

export interface PlanSiteRequest {
  siteId?: string;
  entities?: readonly string[];
  /** Lists the deletes the mass-delete guard would stop, as the run allowed to make them would. */
  allowMassDelete?: boolean;
  /** Per entity; DEFAULT_MAX_CHANGES when absent. */
  maxChanges?: number;
  /** Plans the run that re-binds a site bound to another tenant (DESIGN §3.11). */
  allowTenantChange?: boolean;
  /** This plan's share for the mass-delete guard, over the deployment's. */
  maxDeleteRatio?: number;
}

export type PlanResult = SyncResult & { action: 'plan' };

export function planSite(
  source: CredentialsSource,
  request: PlanSiteRequest,
  options: OperationOptions = {},
): Promise<PlanResult> {
  // 1.
  return withCredentials(
    (refresh) => source.load(request.siteId, { refresh }),
    async (credentials) => {
      // 2.
      const result = await performSync({
        remote: credentials.remote,
        site: credentials.site,
        tenantId: credentials.tenantId,
        ...(request.siteId !== undefined ? { siteId: request.siteId } : {}),
        ...(request.entities ? { entities: request.entities } : {}),
        dryRun: true,
        allowMassDelete: request.allowMassDelete === true,
        allowTenantChange: request.allowTenantChange === true,
        ...guardOptions(request, options),
        changes: { max: request.maxChanges ?? DEFAULT_MAX_CHANGES },
        ...(options.deadline !== undefined ? { deadline: options.deadline } : {}),
        ...(options.connectOptions ? { connectOptions: options.connectOptions } : {}),
        ...(options.registry ? { registry: options.registry } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onPhase ? { onPhase: options.onPhase } : {}),
      });
      // 3.
      return { action: 'plan' as const, ...result };
    },
    options.onCredentialsRefreshed,
  );
}
