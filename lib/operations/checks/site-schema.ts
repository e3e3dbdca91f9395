/** The site schema's version against this build's: behind is the next sync's to migrate, newer is a build too old for the site. */
import type { Client } from 'pg';
import { schemaMismatch, siteSchemaVersion } from '../../db/site-migrations';
import { type Check, check, describeError } from './check';
import { underSavepoint } from './savepoint';

export interface SiteSchemaState {
  readonly check: Check;
  /** True when the site's version is older than this build's: its migrations have yet to create tables. */
  readonly behind: boolean;
  /** The version read, when it could be. */
  readonly version?: number;
}

export async function siteSchemaCheck(client: Client, latest: number): Promise<SiteSchemaState> {
  const name = 'site schema';
  let version: number;
  try {
    version = await underSavepoint(client, () => siteSchemaVersion(client));
  } catch (error) {
    return {
      check: check(name, 'fail', `the schema version cannot be read: ${describeError(error)}`),
      behind: false,
    };
  }
  const mismatch = schemaMismatch(version, latest);
  if (mismatch === undefined)
    return {
      check: check(name, 'ok', `version ${version}, the one this build syncs`),
      behind: false,
      version,
    };
  if (mismatch.code === 'SITE_SCHEMA_NEWER') {
    return {
      check: check(
        name,
        'fail',
        `version ${version}, newer than the ${latest} this build knows [${mismatch.code}]: a newer meter-sync migrated it`,
        'deploy the newer meter-sync build (a sync by this one does nothing)',
      ),
      behind: false,
      version,
    };
  }
  const found = version === 0 ? 'no meter-sync schema (version 0)' : `version ${version}`;
  return {
    check: check(
      name,
      'warn',
      `${found}, this build syncs version ${latest} [${mismatch.code}]`,
      'the next sync migrates it (SITE_MIGRATIONS=auto), or run `meter-sync migrate`',
    ),
    behind: true,
    version,
  };
}
