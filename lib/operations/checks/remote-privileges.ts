/**
 * The remote is only ever read (DESIGN §3.1): its session is read-only by default, and its role
 * should not be able to write the entity tables at all, so that not even a bug could.
 */
import { type Client, escapeIdentifier } from 'pg';
import type { EntityMetadata } from '../../entities';
import { type Check, check } from './check';

export async function remoteReadOnlyCheck(client: Client): Promise<Check> {
  const name = 'remote read-only';
  const { rows } = await client.query<{ default_transaction_read_only: string }>(
    'SHOW default_transaction_read_only',
  );
  if (rows[0]?.default_transaction_read_only === 'on')
    return check(name, 'ok', 'the remote session is read-only (default_transaction_read_only)');
  return check(
    name,
    'warn',
    'the remote session is not read-only by default (default_transaction_read_only is off): only the read-only transaction guards the remote',
    'a connection pooler may drop startup options: connect to the server directly, or set default_transaction_read_only for the remote role',
  );
}

const WRITE_PRIVILEGES = `SELECT u.name,
    array_remove(ARRAY[
      CASE WHEN has_any_column_privilege(u.oid, 'INSERT') THEN 'INSERT' END,
      CASE WHEN has_any_column_privilege(u.oid, 'UPDATE') THEN 'UPDATE' END,
      CASE WHEN has_table_privilege(u.oid, 'DELETE') THEN 'DELETE' END,
      CASE WHEN has_table_privilege(u.oid, 'TRUNCATE') THEN 'TRUNCATE' END], NULL) AS privileges
  FROM (SELECT t.name, to_regclass(t.quoted) AS oid FROM unnest($1::text[], $2::text[]) AS t(name, quoted)) AS u
  WHERE u.oid IS NOT NULL`;

/** Warns when the remote role could write an entity table (a superuser can write them all). */
export async function remotePrivilegesCheck(
  client: Client,
  entities: readonly EntityMetadata[],
): Promise<Check> {
  const name = 'remote privileges';
  const tables = [...new Set(entities.map((e) => e.table))];
  const { rows: roles } = await client.query<{ role: string; superuser: boolean }>(
    'SELECT current_user AS role, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user',
  );
  const role = roles[0]?.role ?? 'the remote role';
  if (roles[0]?.superuser) {
    return check(
      name,
      'warn',
      `the remote role ${role} is a superuser: it could write every table`,
      'sync with a role that has SELECT on the entity tables alone (least privilege)',
    );
  }
  const { rows } = await client.query<{ name: string; privileges: string[] }>(WRITE_PRIVILEGES, [
    tables,
    tables.map((t) => escapeIdentifier(t)),
  ]);
  const writable = rows.filter((r) => r.privileges.length > 0);
  if (writable.length === 0)
    return check(
      name,
      'ok',
      `the remote role ${role} can write none of the entity tables (${tables.join(', ')})`,
    );
  const privileges = [...new Set(writable.flatMap((r) => r.privileges))];
  return check(
    name,
    'warn',
    `the remote role ${role} can write entity tables: ${writable.map((r) => `${r.name} (${r.privileges.join(', ')})`).join('; ')}`,
    `revoke them (least privilege): REVOKE ${privileges.join(', ')} ON ${writable.map((r) => escapeIdentifier(r.name)).join(', ')} FROM ${escapeIdentifier(role)}`,
  );
}
