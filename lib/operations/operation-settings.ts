/**
 * The deployment's settings of the site operations, read from the environment the same way by the
 * function and the CLI: `SITE_MIGRATIONS` (auto | manual, default auto),
 * `SYNC_RUN_RETENTION_DAYS` (default 30), and the mass-delete guard's `MAX_DELETE_RATIO` (default
 * 0.5) and `MASS_DELETE_MIN_ROWS` (default 20).
 */
// The error's own module, not the credentials index: that loads the AWS SDK, which a run by URLs never needs.
import { ConfigurationError } from '../credentials/configuration-error';
import { DEFAULT_MAX_DELETE_RATIO, MASS_DELETE_MIN_ROWS } from '../engine/mass-delete-defaults';
import type { SiteMigrationsMode } from './operation-options';

export const DEFAULT_SYNC_RUN_RETENTION_DAYS = 30;
/** Ten years: longer is a typo, and keeps a site's audit table growing for ever. */
const MAX_SYNC_RUN_RETENTION_DAYS = 3_650;

export interface OperationSettings {
  siteMigrations: SiteMigrationsMode;
  syncRunRetentionDays: number;
  /** The mass-delete guard: the share of an entity's site rows a run may delete... */
  maxDeleteRatio: number;
  /** ...once it has this many; a run that would delete all of them is guarded whatever their number. */
  massDeleteMinRows: number;
}

/** A share from 0 to 1, as a number: `0.5`, `1`, `.25`, `1e-3`. */
export function parseDeleteRatio(value: string): number | undefined {
  const share = /^[\d.eE+-]+$/.test(value) ? Number(value) : Number.NaN;
  return share >= 0 && share <= 1 ? share : undefined;
}

/** Rows: a whole number below a billion. */
const MAX_MIN_ROWS = 999_999_999;

export function operationSettings(env: NodeJS.ProcessEnv = process.env): OperationSettings {
  const migrations = env.SITE_MIGRATIONS ?? 'auto';
  if (migrations !== 'auto' && migrations !== 'manual')
    throw new ConfigurationError(
      `SITE_MIGRATIONS must be auto or manual, not ${JSON.stringify(migrations.slice(0, 20))}`,
    );
  const retention = env.SYNC_RUN_RETENTION_DAYS;
  if (
    retention !== undefined &&
    !(
      /^\d{1,4}$/.test(retention) &&
      Number(retention) >= 1 &&
      Number(retention) <= MAX_SYNC_RUN_RETENTION_DAYS
    )
  )
    throw new ConfigurationError(
      `SYNC_RUN_RETENTION_DAYS must be a whole number of days from 1 to ${MAX_SYNC_RUN_RETENTION_DAYS}`,
    );
  const ratio = env.MAX_DELETE_RATIO;
  const maxDeleteRatio = ratio === undefined ? DEFAULT_MAX_DELETE_RATIO : parseDeleteRatio(ratio);
  if (maxDeleteRatio === undefined)
    throw new ConfigurationError(
      `MAX_DELETE_RATIO must be a share from 0 to 1 (default ${DEFAULT_MAX_DELETE_RATIO}), not ${JSON.stringify(ratio!.slice(0, 20))}`,
    );
  const minRows = env.MASS_DELETE_MIN_ROWS;
  if (minRows !== undefined && !(/^\d{1,9}$/.test(minRows) && Number(minRows) <= MAX_MIN_ROWS))
    throw new ConfigurationError(
      `MASS_DELETE_MIN_ROWS must be a whole number of rows, 0 or more (default ${MASS_DELETE_MIN_ROWS}), not ${JSON.stringify(minRows.slice(0, 20))}`,
    );
  return {
    siteMigrations: migrations,
    syncRunRetentionDays: retention === undefined ? DEFAULT_SYNC_RUN_RETENTION_DAYS : Number(retention),
    maxDeleteRatio,
    massDeleteMinRows: minRows === undefined ? MASS_DELETE_MIN_ROWS : Number(minRows),
  };
}
