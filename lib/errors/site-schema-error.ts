/** The site database lacks the schema the engine needs: not migrated, or a table or column of an entity missing. */
import { MeterSyncError } from './meter-sync-error';

export class SiteSchemaError extends MeterSyncError {
  constructor(code: 'SITE_NOT_MIGRATED' | 'SITE_SCHEMA_MISMATCH', message: string) {
    super(code, message);
    this.name = 'SiteSchemaError';
  }
}
