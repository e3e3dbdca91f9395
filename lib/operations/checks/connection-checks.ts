/**
 * Reaching each database, and TLS: the mode its target asks for, and whether the server sees the
 * session encrypted (pg_stat_ssl). Without TLS a session crosses the network in clear text, which
 * is fine on this machine only.
 */
import type { PeerCertificate } from 'node:tls';
import type { Client, ClientConfig } from 'pg';
import { parse } from 'pg-connection-string';
import { type ConnectOptions, connect, type DatabaseRole, type DatabaseTarget } from '../../db/connect';
import { isLocalHost } from '../../db/tls';
import { type MeterSyncError, toMeterSyncError } from '../../errors';
import { type Check, check, describeError } from './check';

export type TlsMode = 'disabled' | 'required (certificate not verified)' | 'verify-ca' | 'verify-full';

export type Connection =
  | { readonly client: Client; readonly check: Check }
  | { readonly error: MeterSyncError; readonly check: Check };

/** The settings pg connects with: a connection string's parameters override the rest, as pg merges them. */
function effectiveConfig(target: DatabaseTarget): ClientConfig {
  const base: ClientConfig = typeof target === 'string' ? { connectionString: target } : target;
  if (!base.connectionString) return base;
  try {
    return { ...base, ...(parse(base.connectionString) as ClientConfig) };
  } catch {
    return base; // pg cannot parse it either; the connect reports it
  }
}

/** pg's own reading of PGSSLMODE when a target says nothing about TLS. */
function environmentSsl(): ClientConfig['ssl'] {
  const mode = process.env.PGSSLMODE;
  if (mode === 'no-verify') return { rejectUnauthorized: false };
  return mode !== undefined && ['prefer', 'require', 'verify-ca', 'verify-full'].includes(mode);
}

/** A certificate that names another host: a check that lets it pass verifies no name (libpq's verify-ca). */
function verifiesName(
  checkServerIdentity: ((host: string, cert: PeerCertificate) => Error | undefined) | undefined,
) {
  if (checkServerIdentity === undefined) return true;
  try {
    const stranger = {
      subject: { CN: 'meter-sync.invalid' },
      subjectaltname: '',
    } as unknown as PeerCertificate;
    return checkServerIdentity('check.meter-sync.invalid', stranger) !== undefined;
  } catch {
    return true;
  }
}

/** The TLS mode of a target, read off the `ssl` option pg gets (see lib/db/tls.ts). */
export function tlsMode(target: DatabaseTarget): TlsMode {
  const config = effectiveConfig(target);
  const ssl = config.ssl === undefined ? environmentSsl() : config.ssl;
  if (!ssl) return 'disabled';
  if (ssl === true) return 'verify-full';
  if (ssl.rejectUnauthorized === false) return 'required (certificate not verified)';
  return verifiesName(ssl.checkServerIdentity) ? 'verify-full' : 'verify-ca';
}

/** Host and port of a target as pg resolves them (never its password). */
function address(config: ClientConfig): { host: string; port: string } {
  return {
    host: String(config.host || process.env.PGHOST || 'localhost'),
    port: String(config.port || process.env.PGPORT || 5432),
  };
}

const CONNECT_HINTS: Readonly<Record<string, string>> = {
  AUTHENTICATION_FAILED: 'check the user name and password in the secret or URL (a rotated password?)',
  CONNECTION_LOST:
    'check the host and port, that the server is up, and that the network (VPC, security groups) lets this machine reach it',
  TIMEOUT: 'the server did not answer in time: check that it is up and reachable from here',
};

export async function connectChecked(
  target: DatabaseTarget,
  role: DatabaseRole,
  options: ConnectOptions,
): Promise<Connection> {
  const name = `${role} connection`;
  const config = effectiveConfig(target);
  const { host, port } = address(config);
  const mode = tlsMode(target);
  let client: Client;
  try {
    client = await connect(target, role, options);
  } catch (error) {
    const failure = toMeterSyncError(error);
    const where = [
      `${host}:${port}`,
      config.database ? `database ${config.database}` : undefined,
      config.user ? `user ${config.user}` : undefined,
    ]
      .filter((part) => part !== undefined)
      .join(', ');
    return {
      error: failure,
      check: check(name, 'fail', `${describeError(failure)} (${where})`, CONNECT_HINTS[failure.code]),
    };
  }
  try {
    const { rows } = await client.query<{
      user: string;
      database: string;
      server: string;
      ssl: boolean | null;
      tls: string | null;
    }>(
      `SELECT current_user AS user, current_database() AS database, current_setting('server_version') AS server,
         s.ssl, s.version AS tls
       FROM (SELECT pg_backend_pid() AS pid) AS me LEFT JOIN pg_stat_ssl AS s ON s.pid = me.pid`,
    );
    const session = rows[0]!;
    const who = `PostgreSQL ${session.server} at ${host}:${port}, database ${session.database} as ${session.user}`;
    return {
      client,
      check: tlsCheck(name, who, mode, session.ssl === true ? (session.tls ?? 'TLS') : undefined, host),
    };
  } catch (error) {
    return {
      client,
      check: check(name, 'fail', `connected, but the session cannot be read: ${describeError(error)}`),
    };
  }
}

/** `tls`: the protocol version of an encrypted session, undefined when the server sees it in clear text. */
function tlsCheck(name: string, who: string, mode: TlsMode, tls: string | undefined, host: string): Check {
  if (tls !== undefined) return check(name, 'ok', `${who}; encrypted (${tls}), TLS ${mode}`);
  if (mode !== 'disabled') {
    return check(
      name,
      'warn',
      `${who}; TLS ${mode}, yet the server sees the session unencrypted (a proxy in between?)`,
      'make sure the hop from the proxy to the server is encrypted too',
    );
  }
  if (isLocalHost(host)) return check(name, 'ok', `${who}; TLS disabled (a local host)`);
  return check(
    name,
    'warn',
    `${who}; not encrypted: TLS disabled for a host that is not this machine`,
    'use sslmode=verify-full (the default for such a host) in the secret or URL',
  );
}
