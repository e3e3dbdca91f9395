/** The site operations both adapters (the Lambda handler, the CLI) call: each by site id or by URLs. */
export {
  type Check,
  type CheckReport,
  type CheckSiteRequest,
  type CheckStatus,
  checkSite,
} from './check-site';
export { type MigrateResult, type MigrateSiteRequest, migrateSite } from './migrate-site';
export type { OperationOptions, SiteMigrationsMode } from './operation-options';
export {
  DEFAULT_SYNC_RUN_RETENTION_DAYS,
  type OperationSettings,
  operationSettings,
} from './operation-settings';
export { type PlanResult, type PlanSiteRequest, planSite } from './plan-site';
export { type SyncSiteOptions, type SyncSiteRequest, syncSite } from './sync-site';
