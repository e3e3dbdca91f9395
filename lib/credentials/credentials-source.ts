/** Where a site operation's database credentials come from: Secrets Manager in the Lambda, URLs on a laptop. */
import type { DatabaseTarget } from '../db/connect';

/** What one site's run needs to connect: both databases and the tenant whose slice the site holds. */
export interface SyncCredentials {
  remote: DatabaseTarget;
  site: DatabaseTarget;
  tenantId: number;
  /**
   * Changes whenever the secrets behind the targets change (a digest, never a value), so a caller
   * that re-read them after an authentication failure knows whether trying again can help.
   */
  version: string;
}

/** What a migration needs: the site's database alone. */
export interface SiteCredentials {
  site: DatabaseTarget;
  /** As SyncCredentials.version, of the site's secret alone. */
  version: string;
}

export interface CredentialsSource {
  /**
   * The credentials of a site; `refresh` bypasses any cache (after an authentication failure). A
   * source of one site's URLs needs no id; one that looks sites up fails without it.
   */
  load(siteId: string | undefined, options?: { refresh?: boolean }): Promise<SyncCredentials>;
  /** The site's database alone (no remote secret is read). */
  loadSite(siteId: string | undefined, options?: { refresh?: boolean }): Promise<SiteCredentials>;
}
