/** The project's typed errors, each with a stable code. */
export { CancelledError } from './cancelled-error';
export { CommitUnconfirmedError } from './commit-unconfirmed-error';
export { toMeterSyncError } from './database-error';
export { DeadlineExceededError } from './deadline-exceeded-error';
export { EntityMetadataError } from './entity-metadata-error';
export { MassDeleteGuardError } from './mass-delete-guard-error';
export { MeterSyncError } from './meter-sync-error';
export { MigrationFailedError } from './migration-failed-error';
export { SiteIsRemoteError } from './site-is-remote-error';
export { SiteMixedTenantsError } from './site-mixed-tenants-error';
export {
  describeDifference,
  type SchemaDifference,
  SiteSchemaConflictError,
} from './site-schema-conflict-error';
export { SiteSchemaError } from './site-schema-error';
export { TenantMismatchError } from './tenant-mismatch-error';
export { UsageError } from './usage-error';
