/**
 * Cancels the statement a session is running, the way `pg_cancel_backend` or libpq's PQcancel do:
 * a CancelRequest (the session's process id and secret key) sent on a new, short-lived connection;
 * and lets go of a session altogether (`letGo`), when a run reaches its deadline or is cancelled.
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

/** A cancel that arrives between two statements is dropped by the server: it is sent again this often. */
export const CANCEL_REPEAT_MS = 250;
/** A session that has not let go this long after the first cancel has its socket closed. */
export const CANCEL_GRACE_MS = 2_000;

/**
 * Makes a session let go of its server: its statement cancelled (again every CANCEL_REPEAT_MS,
 * until the session ends) and, if it still has not ended after CANCEL_GRACE_MS, its socket closed,
 * which ends its transaction without a commit, even when no cancel can reach the server. A session
 * still connecting is closed at once. Returns a function that stops it (the session ended anyway).
 */
export function letGo(client: Client): () => void {
  const { processID } = client as unknown as SessionIdentity;
  if (!processID) {
    destroySession(client);
    return () => {};
  }
  const timers: NodeJS.Timeout[] = [];
  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    timers.push(timer);
  };
  let over = false;
  const stop = () => {
    over = true;
    for (const timer of timers) clearTimeout(timer);
  };
  const cancel = () => {
    if (over) return;
    void sendCancelRequest(client);
    later(CANCEL_REPEAT_MS, cancel);
  };
  cancel();
  later(CANCEL_GRACE_MS, () => {
    if (!over) destroySession(client);
    stop();
  });
  client.once('end', stop);
  return stop;
}
