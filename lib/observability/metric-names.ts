/**
 * The names the sync function emits metrics under (DESIGN §4). The function and the CDK alarms
 * and dashboard both import them, so an alarm can never watch a metric nobody emits.
 */
export const METRICS_NAMESPACE = 'MeterSync';
/** Powertools adds this as the `service` dimension of every metric. */
export const SERVICE_NAME = 'meter-sync';

export const EntityMetric = {
  RowsInserted: 'RowsInserted',
  RowsUpdated: 'RowsUpdated',
  RowsDeleted: 'RowsDeleted',
  RowsSkipped: 'RowsSkipped',
  EntityFailed: 'EntityFailed',
  EntityDurationMs: 'EntityDurationMs',
} as const;

export const RunMetric = {
  SyncSucceeded: 'SyncSucceeded',
  SyncDurationMs: 'SyncDurationMs',
  /** 1 whenever a sync run or the migrate action applied a site schema migration. */
  SiteMigrated: 'SiteMigrated',
  /**
   * 1 when the run failed before any entity ran (a connection, the site schema, the tenant the site
   * is bound to, its credentials), else 0: such a failure has no entity to count it.
   */
  RunFailed: 'RunFailed',
} as const;

export const MetricDimension = {
  SiteId: 'SiteId',
  Entity: 'Entity',
  Service: 'service',
} as const;
