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

/**
 * What a migration needs: the site, the remote (only to tell that the site is not it: a migration
 * adopts tables that are already there, and the remote has them), and the site's tenant when the
 * source knows it (the one whose rows an adopted site of several tenants keeps).
 */
export interface MigrationCredentials {
  site: DatabaseTarget;
  remote: DatabaseTarget;
  tenantId?: number;
  /** As SyncCredentials.version. */
  version: string;
}

export interface CredentialsSource {
  /**
   * The credentials of a site; `refresh` bypasses any cache (after an authentication failure). A
   * source of one site's URLs needs no id; one that looks sites up fails without it.
   */
  load(siteId: string | undefined, options?: { refresh?: boolean }): Promise<SyncCredentials>;
  /** What a migration of the site needs: as `load`, but the tenant where one is not given (a site by URL). */
  loadForMigration(
    siteId: string | undefined,
    options?: { refresh?: boolean },
  ): Promise<MigrationCredentials>;
}
