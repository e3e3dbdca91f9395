/**
 * The deployment's settings of the site operations, read from the environment the same way by the
 * function and the CLI: `SITE_MIGRATIONS` (auto | manual, default auto) and
 * `SYNC_RUN_RETENTION_DAYS` (default 30).
 */
// The error's own module, not the credentials index: that loads the AWS SDK, which a run by URLs never needs.
import { ConfigurationError } from '../credentials/configuration-error';
import type { SiteMigrationsMode } from './operation-options';

export const DEFAULT_SYNC_RUN_RETENTION_DAYS = 30;
/** Ten years: longer is a typo, and keeps a site's audit table growing for ever. */
const MAX_SYNC_RUN_RETENTION_DAYS = 3_650;

export interface OperationSettings {
  siteMigrations: SiteMigrationsMode;
  syncRunRetentionDays: number;
}

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
  return {
    siteMigrations: migrations,
    syncRunRetentionDays: retention === undefined ? DEFAULT_SYNC_RUN_RETENTION_DAYS : Number(retention),
  };
}
