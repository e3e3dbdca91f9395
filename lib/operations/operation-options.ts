/** What every site operation is given besides its request: the deadline, connections, entities, migrations. */
import type { ConnectOptions } from '../db/connect';
import type { Migration } from '../db/site-migrations';
import type { ErrorReport, PhaseTiming, ProgressEvent } from '../engine';
import type { EntityRegistry } from '../entities';

/** Whether a sync brings an out-of-date site schema up to date first (SITE_MIGRATIONS). */
export type SiteMigrationsMode = 'auto' | 'manual';

export interface OperationOptions {
  /** Epoch ms the operation must be over by (the Lambda's remaining time less a margin). */
  deadline?: number;
  connectOptions?: ConnectOptions;
  registry?: EntityRegistry;
  /** The site schema migrations this build knows; tests give their own. */
  migrations?: readonly Migration[];
  /** Told when a login was refused and the operation runs again with re-read credentials. */
  onCredentialsRefreshed?: (error: ErrorReport) => void;
  onProgress?: (event: ProgressEvent) => void;
  /** Each phase of the run once it is over: the Lambda traces and debug-logs them. */
  onPhase?: (timing: PhaseTiming) => void;
  /** Cancels the operation (the CLI's Ctrl-C): its sessions let go of their servers. */
  signal?: AbortSignal;
  /** The deployment's mass-delete guard (MAX_DELETE_RATIO, MASS_DELETE_MIN_ROWS); the engine's defaults when absent. */
  maxDeleteRatio?: number;
  massDeleteMinRows?: number;
}

/** The mass-delete guard of a run: the request's own ratio over the deployment's, the deployment's minimum. */
export function guardOptions(
  request: { maxDeleteRatio?: number },
  options: OperationOptions,
): { maxDeleteRatio?: number; massDeleteMinRows?: number } {
  const maxDeleteRatio = request.maxDeleteRatio ?? options.maxDeleteRatio;
  return {
    ...(maxDeleteRatio !== undefined ? { maxDeleteRatio } : {}),
    ...(options.massDeleteMinRows !== undefined ? { massDeleteMinRows: options.massDeleteMinRows } : {}),
  };
}

/**
 * The connect options of an operation's own sessions (migrate, check): both timeouts capped so that
 * no connect or statement outlasts the deadline, and the signal that cancels the operation.
 */
export function sessionOptions(options: OperationOptions): ConnectOptions {
  const limited: ConnectOptions = {
    ...options.connectOptions,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  if (options.deadline === undefined) return limited;
  const cap = Math.max(1, Math.floor(options.deadline - Date.now()));
  limited.statementTimeoutMs = Math.min(limited.statementTimeoutMs || cap, cap);
  limited.connectTimeoutMs = Math.min(limited.connectTimeoutMs ?? cap, cap);
  return limited;
}
