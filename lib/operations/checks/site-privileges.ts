/**
 * What the site role needs for a run: to read and write the entity tables, `sync_run` and the
 * fingerprints runs keep (without which a run still syncs, scanning every table), to
 * create temporary tables (the run stages remote rows in them), and, while the schema is behind,
 * to create tables (the migration the next sync applies).
 */
import { type Client, escapeIdentifier } from 'pg';
import { KEPT_FINGERPRINT_PRIVILEGES, SKIPPED_ROWS_TABLE } from '../../db/sync-sql';
import type { EntityMetadata } from '../../entities';
import { type Check, check } from './check';

/** What a run does to each table: entity rows are upserted and deleted; `sync_run` rows recorded and pruned. */
const ENTITY_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];
const SYNC_RUN_PRIVILEGES = ['SELECT', 'INSERT', 'DELETE'];
/** The skips a site remembers are replaced as runs decide them again. */
const SKIPPED_ROW_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];

/** For each table that exists (`$1` names, `$2` quoted names), the privileges of `$3` it lacks. */
const MISSING_TABLE_PRIVILEGES = `SELECT u.name,
    ARRAY(SELECT p FROM unnest($3::text[]) AS p WHERE NOT has_table_privilege(u.oid, p)) AS missing
  FROM (SELECT t.name, to_regclass(t.quoted) AS oid FROM unnest($1::text[], $2::text[]) AS t(name, quoted)) AS u
  WHERE u.oid IS NOT NULL`;

const SESSION_PRIVILEGES = `SELECT current_user AS role, current_database() AS database, current_schema() AS schema,
    has_database_privilege(current_database(), 'TEMPORARY') AS temporary,
    coalesce(has_schema_privilege(current_schema(), 'CREATE'), false) AS can_create`;

interface Missing {
  name: string;
  missing: string[];
}

async function missingOn(
  client: Client,
  tables: readonly string[],
  privileges: readonly string[],
): Promise<Missing[]> {
  const { rows } = await client.query<Missing>(MISSING_TABLE_PRIVILEGES, [
    tables,
    tables.map((t) => escapeIdentifier(t)),
    privileges,
  ]);
  return rows;
}

export async function sitePrivilegesCheck(
  client: Client,
  entities: readonly EntityMetadata[],
  schemaBehind: boolean,
): Promise<Check> {
  const name = 'site privileges';
  const tables = [...new Set(entities.map((e) => e.table))];
  const found = [
    ...(await missingOn(client, tables, ENTITY_PRIVILEGES)),
    ...(await missingOn(client, ['sync_run'], SYNC_RUN_PRIVILEGES)),
    ...(await missingOn(client, [SKIPPED_ROWS_TABLE], SKIPPED_ROW_PRIVILEGES)),
  ];
  for (const [table, privileges] of Object.entries(KEPT_FINGERPRINT_PRIVILEGES))
    found.push(...(await missingOn(client, [table], privileges)));
  const { rows } = await client.query<{
    role: string;
    database: string;
    schema: string | null;
    temporary: boolean;
    can_create: boolean;
  }>(SESSION_PRIVILEGES);
  const session = rows[0]!;
  const lacks: string[] = [];
  const grants: string[] = [];
  const role = escapeIdentifier(session.role);
  for (const { name: table, missing } of found) {
    if (missing.length === 0) continue;
    lacks.push(`${missing.join(', ')} on ${table}`);
    grants.push(`GRANT ${missing.join(', ')} ON ${escapeIdentifier(table)} TO ${role}`);
  }
  if (!session.temporary) {
    lacks.push(`TEMPORARY on database ${session.database}`);
    grants.push(`GRANT TEMPORARY ON DATABASE ${escapeIdentifier(session.database)} TO ${role}`);
  }
  const schema = session.schema ?? 'public';
  if (schemaBehind && !session.can_create) {
    lacks.push(`CREATE on schema ${schema} (the migration creates tables)`);
    grants.push(`GRANT CREATE ON SCHEMA ${escapeIdentifier(schema)} TO ${role}`);
  }
  if (lacks.length > 0)
    return check(name, 'fail', `the site role ${session.role} lacks ${lacks.join('; ')}`, grants.join('; '));
  const readWrite = found.map((f) => f.name);
  const parts = [
    ...(readWrite.length > 0 ? [`read and write ${readWrite.join(', ')}`] : []),
    'create temporary tables',
    ...(schemaBehind ? [`create tables in schema ${schema}`] : []),
  ];
  const can = `${parts.slice(0, -1).join(', ')}${parts.length > 1 ? ' and ' : ''}${parts.at(-1)}`;
  return check(name, 'ok', `the site role ${session.role} can ${can}`);
}
