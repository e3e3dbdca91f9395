/**
 * The site database's schema is not the one this build syncs: not migrated (or behind), newer than
 * this build knows (a rollback deploy), or a table or column of an entity missing.
 */
import { MeterSyncError } from './meter-sync-error';

export class SiteSchemaError extends MeterSyncError {
  constructor(code: 'SITE_NOT_MIGRATED' | 'SITE_SCHEMA_NEWER' | 'SITE_SCHEMA_MISMATCH', message: string) {
    super(code, message);
    this.name = 'SiteSchemaError';
  }
}
