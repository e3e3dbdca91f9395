/** The command's exit codes (DESIGN §4): 0 all ok, 1 a failure running again may mend, 2 bad usage or configuration. */
import { CONFIGURATION_CONNECTION_CODES } from '../db/connection-error';

/**
 * Failures that running again cannot mend, only a change of configuration: exit 2, as bad usage.
 * A connection refused or lost may be the network's passing fault: exit 1.
 */
const CONFIGURATION_CODES: ReadonlySet<string> = new Set([
  ...CONFIGURATION_CONNECTION_CODES,
  'TENANT_MISMATCH',
  'SITE_NOT_MIGRATED',
  'SITE_SCHEMA_NEWER',
  'MIGRATION_FAILED',
  'SITE_SCHEMA_CONFLICT',
  'SITE_MIXED_TENANTS',
  'SITE_IS_REMOTE',
  'BAD_SECRET',
  'SECRET_NOT_FOUND',
  'BAD_CONFIGURATION',
]);

/** The exit code of a run that did not succeed, from its error's code (if it has one). */
export function failureExitCode(code: string | undefined): 1 | 2 {
  return code !== undefined && CONFIGURATION_CODES.has(code) ? 2 : 1;
}
