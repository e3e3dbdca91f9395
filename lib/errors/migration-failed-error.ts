/** A site schema migration failed on the site: rolled back whole, the schema left at its old version. */
import { MeterSyncError } from './meter-sync-error';

export class MigrationFailedError extends MeterSyncError {
  constructor(
    readonly migration: { version: number; name: string },
    cause: string,
  ) {
    super(
      'MIGRATION_FAILED',
      `migration ${migration.version} (${migration.name}) failed, nothing applied: ${cause}`,
    );
    this.name = 'MigrationFailedError';
  }
}
