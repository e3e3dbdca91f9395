/** An entity step would delete too large a share of the site's rows; a remote that suddenly returns nothing must not wipe a site. */
import { MeterSyncError } from './meter-sync-error';

export class MassDeleteGuardError extends MeterSyncError {
  constructor(entity: string, deleting: number, siteRows: number, maxDeleteRatio: number) {
    const share =
      deleting >= siteRows
        ? `every one of its ${siteRows} site rows`
        : `${deleting} of ${siteRows} site rows (more than ${Math.round(maxDeleteRatio * 100)}%)`;
    super(
      'MASS_DELETE_GUARD',
      `${entity}: refusing to delete ${share}; ` +
        'rerun with allowMassDelete (--allow-mass-delete) if the remote really lost them',
    );
    this.name = 'MassDeleteGuardError';
  }
}
