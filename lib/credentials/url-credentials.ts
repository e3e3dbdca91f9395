/** Credentials of one site given as URLs (the CLI's `--remote`, `--site`, `--tenant`): no site id, no lookup. */
import type { ClientConfig } from 'pg';
import { urlTarget } from '../db/tls';
import { ConfigurationError } from './configuration-error';
import type { CredentialsSource, SiteCredentials, SyncCredentials } from './credentials-source';

export interface UrlCredentialsOptions {
  site: string;
  remote?: string;
  tenantId?: number;
  /** Applied to both targets: where a password missing from a URL comes from (see pgpass-password.ts). */
  withPassword?: (target: ClientConfig) => ClientConfig;
}

export class UrlCredentials implements CredentialsSource {
  constructor(private readonly options: UrlCredentialsOptions) {}

  private target(url: string): ClientConfig {
    const target = urlTarget(url);
    const config = typeof target === 'string' ? { connectionString: target } : target;
    return this.options.withPassword ? this.options.withPassword(config) : config;
  }

  async load(): Promise<SyncCredentials> {
    const { remote, tenantId } = this.options;
    if (remote === undefined || tenantId === undefined)
      throw new ConfigurationError('a sync needs the remote URL and the tenant id');
    // URLs do not change under a running process: a re-read finds the same, so no retry is tried.
    return { remote: this.target(remote), site: this.target(this.options.site), tenantId, version: 'url' };
  }

  async loadSite(): Promise<SiteCredentials> {
    return { site: this.target(this.options.site), version: 'url' };
  }
}
