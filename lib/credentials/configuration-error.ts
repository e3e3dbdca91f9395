/** The function's environment is missing or has a bad setting: a deployment mistake, reported in one line. */
import { MeterSyncError } from '../errors';

export class ConfigurationError extends MeterSyncError {
  constructor(message: string) {
    super('BAD_CONFIGURATION', message);
    this.name = 'ConfigurationError';
  }
}
