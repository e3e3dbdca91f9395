/**
 * One site schema migration as a site operation step: its own connection and transaction, under
 * the site's run lock, within the operation's deadline.
 */
import { connect, type DatabaseTarget } from '../db/connect';
import { type MigrateOutcome, migrateSiteSchema, siteSchemaVersion } from '../db/site-migrations';
import { DeadlineExceededError, type MeterSyncError, toMeterSyncError } from '../errors';
import { type OperationOptions, sessionOptions } from './operation-options';

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
  if (options.deadline !== undefined && options.deadline <= Date.now()) throw new DeadlineExceededError();
  // A migration is one transaction: a statement cut at the deadline, or cancelled, rolls all of it back.
  const client = await connect(site, 'site', sessionOptions(options));
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
