/** The sync engine's public surface. */
export {
  DEFAULT_MAX_DELETE_RATIO,
  MASS_DELETE_MIN_ROWS,
  type PhaseTiming,
  type ProgressEvent,
  performSync,
  type SyncOptions,
  syncEntity,
} from './perform-sync';
export { planSteps, type Step } from './plan-steps';
export { createSyncDatabase, type EntityOperations, type SyncDatabase } from './sync-database';
export type {
  EntityResult,
  EntityStatus,
  ErrorReport,
  RowChange,
  RunStatus,
  SyncResult,
} from './sync-result';
export { runStatus, totals } from './sync-result';
