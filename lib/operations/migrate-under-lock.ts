/**
 * One site schema migration as a site operation step: its own connection and transaction, under
 * the site's run lock, within the operation's deadline; refused before it writes anything when the
 * site is the remote database itself (SITE_IS_REMOTE: the migration would adopt the remote's tables).
 */
import { connect, connectAhead, type DatabaseTarget } from '../db/connect';
import { readServerIdentity, refuseRemoteAsSite } from '../db/server-identity';
import { type MigrateOutcome, migrateSiteSchema, siteSchemaVersion } from '../db/site-migrations';
import { DeadlineExceededError, type MeterSyncError, toMeterSyncError } from '../errors';
import { type OperationOptions, sessionOptions } from './operation-options';

/** What a migration reaches: the site, the remote it must not be, and the site's tenant when known. */
export interface MigrationTarget {
  readonly site: DatabaseTarget;
  readonly remote: DatabaseTarget;
  /** The tenant whose rows an adopted site of several tenants keeps, with allowTenantChange. */
  readonly tenantId?: number;
  readonly allowTenantChange?: boolean;
}

export type MigrationStep =
  /** `fromVersion`: the schema version found, and (when locked) left. */
  | { readonly fromVersion: number; readonly outcome: MigrateOutcome }
  /** Failed, rolled back: the schema is still at `fromVersion` (null when it could not be read). */
  | { readonly fromVersion: number | null; readonly error: MeterSyncError };

export async function migrateUnderLock(
  target: MigrationTarget,
  options: OperationOptions,
): Promise<MigrationStep> {
  try {
    return await migrate(target, options);
  } catch (error) {
    return { fromVersion: null, error: toMeterSyncError(error) };
  }
}

async function migrate(target: MigrationTarget, options: OperationOptions): Promise<MigrationStep> {
  if (options.deadline !== undefined && options.deadline <= Date.now()) throw new DeadlineExceededError();
  // The remote's session is opened while the site's is; it only says which server and database it is.
  const remoteSession = connectAhead(target.remote, 'remote', sessionOptions(options), {
    prepare: (remote) => readServerIdentity(remote).finally(() => remote.end().catch(() => {})),
  });
  let site: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    // A migration is one transaction: a statement cut at the deadline, or cancelled, rolls all of it back.
    site = await connect(target.site, 'site', sessionOptions(options));
    const siteIdentity = await readServerIdentity(site);
    const remoteIdentity = await remoteSession.take();
    const fromVersion = await siteSchemaVersion(site);
    try {
      refuseRemoteAsSite(siteIdentity, remoteIdentity);
      const outcome = await migrateSiteSchema(site, {
        siteLock: true,
        ...(options.migrations ? { migrations: options.migrations } : {}),
        ...(target.tenantId !== undefined ? { tenantId: target.tenantId } : {}),
        ...(target.allowTenantChange ? { allowTenantChange: true } : {}),
      });
      return { fromVersion, outcome };
    } catch (error) {
      return { fromVersion, error: toMeterSyncError(error) };
    }
  } finally {
    remoteSession.release();
    await site?.end().catch(() => {});
  }
}
