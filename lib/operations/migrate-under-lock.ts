/**
 * One site schema migration as a site operation step: its own connection and transaction, under
 * the site's run lock, within the operation's deadline.
 */
import { connect, type DatabaseTarget } from '../db/connect';
import { type MigrateOutcome, migrateSiteSchema, siteSchemaVersion } from '../db/site-migrations';
import { DeadlineExceededError, type MeterSyncError, toMeterSyncError } from '../errors';
import type { OperationOptions } from './operation-options';

export type MigrationStep =
  /** `fromVersion`: the schema version found, and (when locked) left. */
  | { readonly fromVersion: number; readonly outcome: MigrateOutcome }
  /** Failed, rolled back: the schema is still at `fromVersion` (null when it could not be read). */
  | { readonly fromVersion: number | null; readonly error: MeterSyncError };

export async function migrateUnderLock(
  site: DatabaseTarget,
  options: OperationOptions,
): Promise<MigrationStep> {
  try {
    return await migrate(site, options);
  } catch (error) {
    return { fromVersion: null, error: toMeterSyncError(error) };
  }
}

async function migrate(site: DatabaseTarget, options: OperationOptions): Promise<MigrationStep> {
  const connectOptions = { ...options.connectOptions };
  if (options.deadline !== undefined) {
    const remaining = options.deadline - Date.now();
    if (remaining <= 0) throw new DeadlineExceededError();
    // A migration is one transaction: a statement cut at the deadline rolls all of it back.
    const cap = Math.max(1, Math.floor(remaining));
    connectOptions.statementTimeoutMs = Math.min(connectOptions.statementTimeoutMs || cap, cap);
    connectOptions.connectTimeoutMs = Math.min(connectOptions.connectTimeoutMs ?? cap, cap);
  }
  const client = await connect(site, 'site', connectOptions);
  try {
    const fromVersion = await siteSchemaVersion(client);
    try {
      const outcome = await migrateSiteSchema(client, {
        siteLock: true,
        ...(options.migrations ? { migrations: options.migrations } : {}),
      });
      return { fromVersion, outcome };
    } catch (error) {
      return { fromVersion, error: toMeterSyncError(error) };
    }
  } finally {
    await client.end().catch(() => {});
  }
}
