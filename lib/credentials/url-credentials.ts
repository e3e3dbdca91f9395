/**
 * Credentials of one site given as URLs (the CLI's `--remote`, `--site`, `--tenant`, or
 * METER_SYNC_REMOTE_URL / METER_SYNC_SITE_URL): no site id, no lookup. A URL without a password
 * gets it, when the server asks, from PGPASSWORD or the password file, as psql does.
 */
import type { ClientConfig } from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import type { DatabaseTarget } from '../db/connect';
import { urlTarget } from '../db/tls';
import { ConfigurationError } from './configuration-error';
import type { CredentialsSource, MigrationCredentials, SyncCredentials } from './credentials-source';
import { environmentPassword } from './environment-password';

export interface UrlCredentialsOptions {
  site: string;
  remote?: string;
  tenantId?: number;
  /** Where PGPASSWORD is read; the password file is found through PGPASSFILE of the process. */
  env?: NodeJS.ProcessEnv;
}

function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return true; // not a URL: the connect reports it, as it would without us
  }
}

export class UrlCredentials implements CredentialsSource {
  constructor(private readonly options: UrlCredentialsOptions) {}

  private target(url: string): DatabaseTarget {
    const target = urlTarget(url);
    if (hasPassword(url)) return target;
    // A connection string's empty password would win over a callback: give pg the parsed fields.
    const parsed = parseIntoClientConfig(
      typeof target === 'string' ? url : target.connectionString!,
    ) as ClientConfig;
    return {
      ...parsed,
      ...(typeof target === 'string' ? {} : { ssl: target.ssl }),
      password: environmentPassword(this.options.env) as ClientConfig['password'],
    };
  }

  async load(): Promise<SyncCredentials> {
    const { remote, tenantId } = this.options;
    if (remote === undefined || tenantId === undefined)
      throw new ConfigurationError('a sync needs the remote URL and the tenant id');
    // URLs do not change under a running process: a re-read finds the same, so no retry is tried.
    return { remote: this.target(remote), site: this.target(this.options.site), tenantId, version: 'url' };
  }

  /** The tenant is optional: a migration by URLs needs it only to adopt a site of several tenants on purpose. */
  async loadForMigration(): Promise<MigrationCredentials> {
    const { remote, tenantId } = this.options;
    if (remote === undefined)
      throw new ConfigurationError(
        'a migration needs the remote URL, to tell that the site is not the remote',
      );
    return {
      remote: this.target(remote),
      site: this.target(this.options.site),
      ...(tenantId !== undefined ? { tenantId } : {}),
      version: 'url',
    };
  }
}
