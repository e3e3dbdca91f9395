/** Credentials from connection URLs, for the CLI and the demo: the same handler, no Secrets Manager. */
import { urlTarget } from '../db/tls';
import { ConfigurationError } from './configuration-error';
import type { CredentialsSource, MigrationCredentials, SyncCredentials } from './credentials-source';
import { SecretUnavailableError } from './secret-unavailable-error';

export interface LocalSite {
  url: string;
  tenantId: number;
}

export interface LocalCredentialsOptions {
  remote: string;
  /** The sites by id, or a function that finds one. */
  sites: Readonly<Record<string, LocalSite>> | ((siteId: string) => LocalSite | undefined);
}

export class LocalCredentials implements CredentialsSource {
  constructor(private readonly options: LocalCredentialsOptions) {}

  async load(siteId: string | undefined): Promise<SyncCredentials> {
    const site = this.site(siteId);
    // URLs do not change under a running process: a re-read finds the same, so no retry is tried.
    return {
      remote: urlTarget(this.options.remote),
      site: urlTarget(site.url),
      tenantId: site.tenantId,
      version: 'local',
    };
  }

  loadForMigration(siteId: string | undefined): Promise<MigrationCredentials> {
    return this.load(siteId);
  }

  private site(siteId: string | undefined): LocalSite {
    const { sites } = this.options;
    if (siteId === undefined)
      throw new ConfigurationError('a site id is needed to find its local credentials');
    const site =
      typeof sites === 'function' ? sites(siteId) : Object.hasOwn(sites, siteId) ? sites[siteId] : undefined;
    if (!site) {
      throw new SecretUnavailableError(
        'SECRET_NOT_FOUND',
        `no local credentials for site ${JSON.stringify(siteId)}`,
      );
    }
    return site;
  }
}
