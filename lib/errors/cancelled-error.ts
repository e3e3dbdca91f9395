/** The operator cancelled the run (Ctrl-C, a SIGTERM): it let go of both databases and nothing was committed. */
import { MeterSyncError } from './meter-sync-error';

export class CancelledError extends MeterSyncError {
  constructor(reason?: unknown) {
    const why = typeof reason === 'string' ? ` (${reason})` : '';
    super(
      'CANCELLED',
      `the run was cancelled${why}; the statements in flight were cancelled and nothing was committed`,
    );
    this.name = 'CancelledError';
  }
}
