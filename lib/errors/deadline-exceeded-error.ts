/** A run reached its deadline (the Lambda's remaining time less a safety margin): it was stopped and rolled back. */
import { MeterSyncError } from './meter-sync-error';

export class DeadlineExceededError extends MeterSyncError {
  constructor() {
    super(
      'DEADLINE_EXCEEDED',
      'the run reached its deadline before it finished; the query in flight was cancelled and nothing was committed',
    );
    this.name = 'DeadlineExceededError';
  }
}
