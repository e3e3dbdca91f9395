/**
 * Runs a site operation with credentials from a source, and after a refused login re-reads them
 * once and, if they changed (a rotated password), runs it again. Safe to repeat: an attempt whose
 * login was refused connected nowhere or rolled back.
 */
import type { ErrorReport } from '../engine';

export interface Versioned {
  /** Changes whenever the secrets behind the credentials change (a digest, never a value). */
  readonly version: string;
}

export async function withCredentials<C extends Versioned, R extends { error?: ErrorReport }>(
  load: (refresh: boolean) => Promise<C>,
  attempt: (credentials: C) => Promise<R>,
  onRefreshed?: (error: ErrorReport) => void,
): Promise<R> {
  const credentials = await load(false);
  const result = await attempt(credentials);
  if (result.error?.code !== 'AUTHENTICATION_FAILED') return result;
  const fresh = await load(true);
  // The same secrets would fail the same way (and count against the account's failed logins).
  if (fresh.version === credentials.version) return result;
  onRefreshed?.(result.error);
  return attempt(fresh);
}
