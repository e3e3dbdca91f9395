/** A secret that is not a usable RDS JSON secret: the message names the secret and the field, never a value. */
import { MeterSyncError } from '../errors';

export class BadSecretError extends MeterSyncError {
  constructor(secretId: string, problem: string) {
    super('BAD_SECRET', `secret ${JSON.stringify(secretId)}: ${problem}`);
    this.name = 'BadSecretError';
  }
}
