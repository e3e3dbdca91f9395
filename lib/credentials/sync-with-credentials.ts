/**
 * Syncs one site with credentials from a source: loads them, runs the engine, and after an
 * authentication failure re-reads them once and, if they changed (a rotated password), runs again.
 * Safe to repeat: a run that failed to authenticate has connected nowhere or rolled back.
 */
import type { ConnectOptions } from '../db/connect';
import { type ErrorReport, performSync, type SyncResult } from '../engine';
import type { EntityRegistry } from '../entities';
import type { CredentialsSource, SyncCredentials } from './credentials-source';

export interface SiteSyncRequest {
  siteId: string;
  entities?: readonly string[];
  dryRun?: boolean;
  allowMassDelete?: boolean;
}

export interface SiteSyncOptions {
  /** Epoch ms the run must be over by (see SyncOptions.deadline); the retry shares it. */
  deadline?: number;
  connectOptions?: ConnectOptions;
  registry?: EntityRegistry;
  /** Told when a run failed to authenticate and runs again with re-read credentials. */
  onCredentialsRefreshed?: (error: ErrorReport) => void;
}

function run(credentials: SyncCredentials, request: SiteSyncRequest, options: SiteSyncOptions) {
  return performSync({
    remote: credentials.remote,
    site: credentials.site,
    tenantId: credentials.tenantId,
    siteId: request.siteId,
    ...(request.entities ? { entities: request.entities } : {}),
    dryRun: request.dryRun === true,
    allowMassDelete: request.allowMassDelete === true,
    ...(options.deadline !== undefined ? { deadline: options.deadline } : {}),
    ...(options.connectOptions ? { connectOptions: options.connectOptions } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
  });
}

export async function syncWithCredentials(
  source: CredentialsSource,
  request: SiteSyncRequest,
  options: SiteSyncOptions = {},
): Promise<SyncResult> {
  const credentials = await source.load(request.siteId);
  const result = await run(credentials, request, options);
  if (result.error?.code !== 'AUTHENTICATION_FAILED') return result;
  const fresh = await source.load(request.siteId, { refresh: true });
  // The same secrets would fail the same way (and count against the account's failed logins).
  if (fresh.version === credentials.version) return result;
  options.onCredentialsRefreshed?.(result.error);
  return run(fresh, request, options);
}
