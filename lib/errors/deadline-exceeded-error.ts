/** A run reached its deadline (the Lambda's remaining time less a safety margin): it was stopped and rolled back. */
import { MeterSyncError } from './meter-sync-error';

export class DeadlineExceededError extends MeterSyncError {
  /** `waitingOn`: the databases whose answer the run was waiting for when the deadline came (a stalled side). */
  constructor(waitingOn: readonly string[] = []) {
    const waiting = waitingOn.length > 0 ? `, waiting on the ${waitingOn.join(' and the ')} database` : '';
    super(
      'DEADLINE_EXCEEDED',
      `the run reached its deadline before it finished${waiting}; the query in flight was cancelled and nothing was committed`,
    );
    this.name = 'DeadlineExceededError';
  }
}
