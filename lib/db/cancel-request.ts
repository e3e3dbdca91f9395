/**
 * Cancels the statement a session is running, the way `pg_cancel_backend` or libpq's PQcancel do:
 * a CancelRequest (the session's process id and secret key) sent on a new, short-lived connection.
 */
import { type Client, Connection } from 'pg';

/** What node-postgres keeps of a session after its startup handshake. */
interface SessionIdentity {
  host?: string;
  port?: number;
  processID?: number | null;
  secretKey?: number | null;
}

/** Gives up on a cancel connection that neither connects nor closes in this time. */
const CANCEL_CONNECTION_TIMEOUT_MS = 2_000;

/**
 * Sends the cancel request and resolves once the server closed the connection (or it failed):
 * never rejects, as a cancel is best effort and the caller has a fallback. The request goes in
 * clear text even for a TLS session, as libpq's does: it carries no credentials, only the
 * session's random key, and the server reads it before any authentication.
 */
export function sendCancelRequest(client: Client): Promise<void> {
  const { host, port, processID, secretKey } = client as unknown as SessionIdentity;
  if (!processID || secretKey === undefined || secretKey === null || !port) return Promise.resolve();
  return new Promise((resolve) => {
    const connection = new Connection() as Connection & {
      connect(portOrPath: number | string, host?: string): void;
      cancel(processID: number, secretKey: number): void;
    };
    const timer = setTimeout(() => connection.stream.destroy(), CANCEL_CONNECTION_TIMEOUT_MS);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      connection.stream.destroy();
      resolve();
    };
    connection.on('connect', () => connection.cancel(processID, secretKey));
    connection.on('end', done);
    connection.on('error', done);
    if (host?.startsWith('/')) connection.connect(`${host}/.s.PGSQL.${port}`);
    else connection.connect(port, host || 'localhost');
  });
}

/** Closes a session's socket at once: the last resort when a cancel did not end its statement. */
export function destroySession(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
