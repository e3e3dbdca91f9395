/** Bad command-line usage or configuration: reported in one line, exit code 2. */
import { MeterSyncError } from './meter-sync-error';

export class UsageError extends MeterSyncError {
  constructor(message: string) {
    super('BAD_USAGE', message);
    this.name = 'UsageError';
  }
}
