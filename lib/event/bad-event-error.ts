/** A Lambda event that is not a site operation's request: rejected before any work, with a one-line reason. */
import { MeterSyncError } from '../errors';

export class BadEventError extends MeterSyncError {
  constructor(problem: string) {
    super('BAD_EVENT', `bad event: ${problem}`);
    this.name = 'BadEventError';
  }
}
