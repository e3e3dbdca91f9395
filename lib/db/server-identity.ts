/**
 * Which server and database a session is on, as the server itself says, not as the host name it
 * was reached through says (a proxy, a DNS alias, `localhost` against `127.0.0.1` all hide it):
 * so that a site that is the remote database is refused (SITE_IS_REMOTE) before anything is written.
 *
 * The server is told by `pg_control_system()`'s system identifier, which a server's physical
 * replicas share (a remote read from a replica and a site that is its primary are one database),
 * and where a role may not read it by the time the server started; the database by its oid there.
 */
import type { Client } from 'pg';
import { SiteIsRemoteError } from '../errors';

export interface ServerIdentity {
  /** The cluster's system identifier; null where the role may not call `pg_control_system()`. */
  readonly systemIdentifier: string | null;
  /** When the server started, in epoch seconds to the microsecond. */
  readonly startedAt: string;
  readonly databaseOid: string;
  readonly database: string;
}

const DATABASE = `extract(epoch FROM pg_postmaster_start_time())::text AS started_at,
    d.oid::text AS database_oid, d.datname AS database
  FROM pg_database AS d WHERE d.datname = current_database()`;
const WITH_SYSTEM_IDENTIFIER = `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier, ${DATABASE}`;
const WITHOUT_SYSTEM_IDENTIFIER = `SELECT NULL::text AS system_identifier, ${DATABASE}`;
/** A role that may not call it, or a server that does not offer it (a managed service's own build). */
const UNREADABLE = new Set(['42501', '42883', '0A000']);

interface IdentityRow {
  system_identifier: string | null;
  started_at: string;
  database_oid: string;
  database: string;
}

/**
 * Reads the session's identity. Outside a transaction: where the system identifier cannot be read,
 * the refused statement leaves nothing to roll back.
 */
export async function readServerIdentity(client: Client): Promise<ServerIdentity> {
  let rows: IdentityRow[];
  try {
    ({ rows } = await client.query<IdentityRow>(WITH_SYSTEM_IDENTIFIER));
  } catch (error) {
    if (!UNREADABLE.has(String((error as { code?: unknown }).code))) throw error;
    ({ rows } = await client.query<IdentityRow>(WITHOUT_SYSTEM_IDENTIFIER));
  }
  const row = rows[0]!;
  return {
    systemIdentifier: row.system_identifier,
    startedAt: row.started_at,
    databaseOid: row.database_oid,
    database: row.database,
  };
}

/** How two identities show one database, or undefined when they are two. */
export function sameDatabase(site: ServerIdentity, remote: ServerIdentity): string | undefined {
  if (site.databaseOid !== remote.databaseOid) return undefined;
  if (site.systemIdentifier !== null && remote.systemIdentifier !== null) {
    return site.systemIdentifier === remote.systemIdentifier
      ? `the same database oid ${site.databaseOid} of a server of system identifier ${site.systemIdentifier}`
      : undefined;
  }
  return site.startedAt === remote.startedAt
    ? `the same database oid ${site.databaseOid} of a server started at the same instant`
    : undefined;
}

/** Throws SITE_IS_REMOTE when the site's session and the remote's are on one database. */
export function refuseRemoteAsSite(site: ServerIdentity, remote: ServerIdentity): void {
  const how = sameDatabase(site, remote);
  if (how !== undefined) throw new SiteIsRemoteError(site.database, how);
}
