/** Logs, metrics and traces of the sync function: the shared instances and what a run reports through them. */
export { emitSiteMigrated, emitSyncMetrics, emitSyncNotStarted, isMeasuredRun } from './emit-sync-metrics';
export { logCheckReport, logMigrateResult, logPhase, logPlanResult, logSyncResult } from './log-sync-result';
export { logger } from './logger';
export { EntityMetric, METRICS_NAMESPACE, MetricDimension, RunMetric, SERVICE_NAME } from './metric-names';
export { metrics } from './metrics';
