/**
 * The site session was lost during COMMIT and the site could not be asked afterwards whether the
 * transaction committed: the run's changes are all written or none, never a part.
 */
import { MeterSyncError } from './meter-sync-error';

export class CommitUnconfirmedError extends MeterSyncError {
  constructor(cause: string) {
    super(
      'COMMIT_UNCONFIRMED',
      `the site connection was lost during COMMIT (${cause}) and the site could not be asked whether it committed: ` +
        'the changes of this run are either all written or none; the next run finds out and converges',
    );
    this.name = 'CommitUnconfirmedError';
  }
}
