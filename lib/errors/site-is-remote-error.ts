/**
 * The site database is the remote database itself (DESIGN §2): a copied secret or a wrong host.
 * Synced as a site, it would lose every other tenant's rows; nothing is written to it.
 */
import { MeterSyncError } from './meter-sync-error';

export class SiteIsRemoteError extends MeterSyncError {
  /** `how`: what the two sessions' servers said of themselves that shows them to be one database. */
  constructor(database: string, how: string) {
    super(
      'SITE_IS_REMOTE',
      `the site database is the remote database (database ${JSON.stringify(database)}, ${how}), so nothing was done: ` +
        "point the site's secret or --site URL at the site's own database",
    );
    this.name = 'SiteIsRemoteError';
  }
}
