/** The base of every error this project raises on purpose: a stable code and a message a person can act on. */
export class MeterSyncError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The key of the row concerned, as `column=value` pairs, when one row is to blame. */
    readonly key?: string,
  ) {
    super(message);
    this.name = 'MeterSyncError';
  }
}
