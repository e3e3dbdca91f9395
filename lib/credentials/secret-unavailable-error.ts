/** A secret that could not be read at all: it does not exist, or the secret store refused or failed. */
import { MeterSyncError } from '../errors';

export class SecretUnavailableError extends MeterSyncError {
  constructor(code: 'SECRET_NOT_FOUND' | 'SECRETS_UNAVAILABLE', message: string) {
    super(code, message);
    this.name = 'SecretUnavailableError';
  }
}
