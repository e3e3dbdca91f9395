/**
 * Opens the engine's connections. Every session gets the settings that make server text
 * deterministic (DESIGN §3.3); the remote session is read-only by default as a second guard.
 */
import { Client, type ClientConfig } from 'pg';
import { CancelledError } from '../errors';
import { letGo } from './cancel-request';
import { type ConnectionPlace, connectionError } from './connection-error';

export type DatabaseRole = 'remote' | 'site';

/** A connection string, or a node-postgres client configuration. */
export type DatabaseTarget = string | ClientConfig;

export interface ConnectOptions {
  connectTimeoutMs?: number;
  /** Server-side `statement_timeout`; 0 disables it. */
  statementTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /**
   * When it aborts (Ctrl-C), the session lets go of its server: its statement is cancelled and, if
   * that does not end it within seconds, its socket closed (cancel-request.ts `letGo`).
   */
  signal?: AbortSignal;
}

/**
 * How often a server checks, while it runs a statement, that the client is still there
 * (PostgreSQL 14 and later): a client killed or cut off lets go of the site within seconds, not
 * when its statement ends. Older servers notice when they next write to the socket, or when TCP
 * keepalives give up.
 */
const CLIENT_CHECK_INTERVAL = '2s';
const CHECK_CLIENT_CONNECTION = `SELECT set_config('client_connection_check_interval', $1, false)
  WHERE current_setting('server_version_num')::integer >= 140000`;

export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  // The engine runs a scan on each server at once. For a bucket aggregate the planner's parallel plan
  // sorts every row and took twice as long as one process per side on two cores (DESIGN §6); and a
  // fleet of sync sessions should not take the central server's parallel workers from its own users.
  max_parallel_workers_per_gather: '0',
  // The planner's costs of the hash expressions over a whole slice run past the JIT thresholds, and
  // a compile took a quarter of a second of a statement that runs in half of one.
  jit: 'off',
};

function startupOptions(role: DatabaseRole): string {
  const settings: Record<string, string> = { ...SESSION_SETTINGS };
  if (role === 'remote') settings.default_transaction_read_only = 'on';
  // A run reads one tenant's rows: a slice of the remote's tables, the whole of the site's, both
  // cached. With the default cost of a random page the planner scans a million-row table to
  // delete a few thousand keys on the site instead of probing its index, and on the remote scans
  // every tenant's associations (1.1 million) to join the 100,000 of one tenant's meters, where
  // probing the key's index for each meter takes a fifth of the time (an association slice of
  // most of a table is still hashed).
  settings.random_page_cost = '1.1';
  return Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}

export function clientConfig(
  target: DatabaseTarget,
  role: DatabaseRole,
  options: ConnectOptions = {},
): ClientConfig {
  const base: ClientConfig = typeof target === 'string' ? { connectionString: target } : { ...target };
  return {
    ...base,
    application_name: 'meter-sync',
    // A peer that vanished without closing the socket is noticed instead of waited on forever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    options: startupOptions(role),
    connectionTimeoutMillis: options.connectTimeoutMs ?? base.connectionTimeoutMillis ?? 10_000,
    statement_timeout: options.statementTimeoutMs ?? base.statement_timeout,
    idle_in_transaction_session_timeout:
      options.idleInTransactionTimeoutMs ?? base.idle_in_transaction_session_timeout,
  };
}

/** Connects, or throws a MeterSyncError whose message names the role but never the credentials. */
export function connect(
  target: DatabaseTarget,
  role: DatabaseRole,
  options: ConnectOptions = {},
): Promise<Client> {
  return connectAhead(target, role, options).take();
}

/** The database a client connects to, as its errors name it. */
function placeOf(client: Client, role: DatabaseRole): ConnectionPlace {
  const { host, port, database } = (client as unknown as { connectionParameters: Partial<ConnectionPlace> })
    .connectionParameters;
  return { role, host: host || 'localhost', port: port ?? 5432, database: database ?? '' };
}

/**
 * A session being opened: `take` waits for it (and for what `prepare` made of it); `release` ends
 * it, or the attempt, if it was never taken.
 */
export interface PendingSession<T = Client> {
  take(): Promise<T>;
  release(): void;
}

export interface AheadOptions<T> {
  /** Called once the login is over, with its failure if it failed. */
  onSettled?: (error?: unknown) => void;
  /**
   * The session's first statements, run as soon as it is logged in, before anyone takes it: what
   * `take` then gives. Its failure ends the session and is given, unchanged, to whoever takes it.
   */
  prepare?: (client: Client) => Promise<T>;
}

/**
 * Starts connecting at once, so that a run opens one session while it works on the other (the
 * remote's login costs as much as the site's lock and catalog reads). A session never taken is
 * ended by `release`, and its failure is reported only to whoever takes it.
 */
export function connectAhead(
  target: DatabaseTarget,
  role: DatabaseRole,
  options?: ConnectOptions,
): PendingSession;
export function connectAhead<T>(
  target: DatabaseTarget,
  role: DatabaseRole,
  options: ConnectOptions,
  ahead: AheadOptions<T> & { prepare: (client: Client) => Promise<T> },
): PendingSession<T>;
export function connectAhead(
  target: DatabaseTarget,
  role: DatabaseRole,
  options: ConnectOptions,
  ahead: AheadOptions<Client>,
): PendingSession;
export function connectAhead<T>(
  target: DatabaseTarget,
  role: DatabaseRole,
  options: ConnectOptions = {},
  { onSettled, prepare }: AheadOptions<T> = {},
): PendingSession<T | Client> {
  const client = new Client(clientConfig(target, role, options));
  // A dropped connection must fail the query in flight, not crash the process.
  client.on('error', () => {});
  const { signal } = options;
  const onAbort = () => letGo(client);
  signal?.addEventListener('abort', onAbort, { once: true });
  client.once('end', () => signal?.removeEventListener('abort', onAbort));
  const loggedIn = (signal?.aborted ? Promise.reject(new CancelledError(signal.reason)) : client.connect())
    .then(() => client.query(CHECK_CLIENT_CONNECTION, [CLIENT_CHECK_INTERVAL]))
    .then(
      () => {
        onSettled?.();
        return client;
      },
      async (error: unknown) => {
        const failure = connectionError(error, placeOf(client, role));
        onSettled?.(failure);
        await client.end().catch(() => {});
        throw failure;
      },
    );
  const ready: Promise<T | Client> = prepare
    ? loggedIn.then((session) =>
        prepare(session).catch(async (error: unknown) => {
          await client.end().catch(() => {});
          throw error;
        }),
      )
    : loggedIn;
  // Until it is taken, a failure has nobody to report to.
  ready.catch(() => {});
  let taken = false;
  return {
    take() {
      taken = true;
      return ready;
    },
    release() {
      if (!taken) void client.end().catch(() => {});
    },
  };
}
