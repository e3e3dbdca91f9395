/**
 * Each entity's columns on both sides: the remote table (or custom query) gives every column the
 * metadata names, the site table has them under a unique key, and each remote type converts to
 * the site column's type (type-conversion.ts). The remote is read with the engine's own slice
 * statement at LIMIT 0: the run's privileges and columns, none of its rows.
 */
import { type Client, escapeIdentifier, type FieldDef } from 'pg';
import { baseType, siteSchemaSql } from '../../db/site-schema-sql';
import { remoteSql, siteSql } from '../../db/sync-sql';
import { type ColumnType, conversion } from '../../db/type-conversion';
import type { EntityMetadata } from '../../entities';
import { type Check, check, describeError } from './check';
import { underSavepoint } from './savepoint';

/** What the remote gives for an entity: each column's type, or why it cannot be read. */
export type RemoteColumns =
  | { readonly types: Readonly<Record<string, ColumnType>> }
  | { readonly problem: string; readonly hint?: string };

/** The entity's site table: absent, its columns' types and whether its key is unique, or why it cannot be read. */
export type SiteColumns =
  | { readonly present: false }
  | {
      readonly present: true;
      readonly types: Readonly<Record<string, ColumnType>>;
      readonly uniqueKey: boolean;
    }
  | { readonly problem: string };

/** The types of result fields, by their type OIDs and modifiers (`$1`, `$2`), in order. */
const FIELD_TYPES = `SELECT format_type(b.oid, r.typmod) AS type, format_type(b.oid, NULL) AS base,
    r.typmod, b.typcategory AS category
  FROM unnest($1::oid[], $2::integer[]) WITH ORDINALITY AS m(oid, typmod, n)
    JOIN pg_type AS t ON t.oid = m.oid
    ${baseType('m.typmod')}
  ORDER BY m.n`;

const TABLE_COLUMNS = `SELECT to_regclass($1) IS NOT NULL AS present,
    ARRAY(SELECT attname::text FROM pg_attribute
          WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns`;

/** A unique index the upsert's ON CONFLICT can use: on exactly the key columns (`$2`), immediate, whole. */
const UNIQUE_KEY = `SELECT EXISTS (SELECT 1 FROM pg_index AS i
    WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indimmediate AND i.indisvalid
      AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = cardinality($2::text[])
      AND ARRAY(SELECT attname::text FROM pg_attribute
                WHERE attrelid = i.indrelid AND attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
          @> $2::text[]) AS unique_key`;

const REMOTE_SCHEMA_HINT =
  "the entity's metadata names what the remote must have: fix the remote schema or the metadata";

async function typesOf(client: Client, fields: readonly FieldDef[]): Promise<Record<string, ColumnType>> {
  const { rows } = await client.query<ColumnType>(FIELD_TYPES, [
    fields.map((f) => f.dataTypeID),
    fields.map((f) => f.dataTypeModifier),
  ]);
  return Object.fromEntries(fields.map((f, i) => [f.name, rows[i]!]));
}

/** The result fields of a statement that takes the tenant id as `$1`, run to LIMIT 0: no row is read. */
async function fieldsOf(client: Client, sql: string, tenantId: number): Promise<FieldDef[]> {
  const result = await underSavepoint(client, () =>
    client.query({ text: `SELECT * FROM (${sql}) AS q LIMIT 0`, values: [tenantId] }),
  );
  return result.fields;
}

/** Why the engine's slice statement of a query entity fails: the query itself, or a column it lacks. */
async function queryFailure(
  client: Client,
  meta: EntityMetadata,
  tenantId: number,
  error: unknown,
): Promise<RemoteColumns> {
  const hint = 'run the query on the remote as the remote role, with $1 the tenant id';
  try {
    const returned = new Set((await fieldsOf(client, meta.remoteQuery!, tenantId)).map((f) => f.name));
    const missing = meta.columns.filter((c) => !returned.has(c));
    if (missing.length > 0)
      return { problem: `the remote query returns no column ${missing.join(', ')}`, hint };
  } catch (failure) {
    return { problem: `the remote query fails: ${describeError(failure)}`, hint };
  }
  return { problem: `the remote query fails: ${describeError(error)}`, hint };
}

/** Reads an entity's columns on the remote, in the check's read-only transaction. */
export async function readRemoteColumns(
  client: Client,
  meta: EntityMetadata,
  tenantId: number,
): Promise<RemoteColumns> {
  if (meta.remoteQuery === undefined) {
    const { rows } = await underSavepoint(client, () =>
      client.query<{ present: boolean; columns: string[] }>(TABLE_COLUMNS, [escapeIdentifier(meta.table)]),
    );
    const table = rows[0]!;
    if (!table.present)
      return { problem: `remote table ${meta.table} does not exist`, hint: REMOTE_SCHEMA_HINT };
    const missing = meta.columns.filter((c) => !table.columns.includes(c));
    if (missing.length > 0)
      return {
        problem: `remote table ${meta.table} has no column ${missing.join(', ')}`,
        hint: REMOTE_SCHEMA_HINT,
      };
  }
  let fields: FieldDef[];
  try {
    fields = await fieldsOf(client, remoteSql.selectSlice(meta), tenantId);
  } catch (error) {
    if (meta.remoteQuery !== undefined) return queryFailure(client, meta, tenantId, error);
    return {
      problem: `reading remote table ${meta.table} fails: ${describeError(error)}`,
      hint: `grant the remote role SELECT on ${meta.table}`,
    };
  }
  return { types: await underSavepoint(client, () => typesOf(client, fields)) };
}

/** Reads an entity's site table, in the check's read-only transaction. */
export async function readSiteColumns(client: Client, meta: EntityMetadata): Promise<SiteColumns> {
  const table = escapeIdentifier(meta.table);
  try {
    return await underSavepoint(client, async () => {
      const { rows: exists } = await client.query<{ present: boolean }>(siteSql.tableExists, [table]);
      if (!exists[0]?.present) return { present: false } as const;
      // The catalog read adoption makes too (site-schema-sql.ts); a domain converts as its base type.
      const { rows } = await client.query<ColumnType & { name: string }>(siteSchemaSql.columns, [table]);
      const { rows: key } = await client.query<{ unique_key: boolean }>(UNIQUE_KEY, [table, meta.keyColumns]);
      const types = Object.fromEntries(
        rows.map(({ name, type, base, typmod, category }) => [name, { type, base, typmod, category }]),
      );
      return { present: true, types, uniqueKey: key[0]?.unique_key === true } as const;
    });
  } catch (error) {
    return { problem: describeError(error) };
  }
}

/** One entity's check: `siteBehind` when the site schema is behind, so a missing table is the migration's to create. */
export function entityColumnsCheck(
  meta: EntityMetadata,
  remote: RemoteColumns,
  site: SiteColumns,
  siteBehind: boolean,
): Check {
  const name = `entity ${meta.name}`;
  if ('problem' in remote) return check(name, 'fail', remote.problem, remote.hint);
  const read =
    meta.remoteQuery !== undefined
      ? `the remote query returns its ${meta.columns.length} columns`
      : `remote table ${meta.table} has its ${meta.columns.length} columns`;
  if ('problem' in site)
    return check(name, 'fail', `${read}; reading site table ${meta.table} fails: ${site.problem}`);
  const missing = site.present ? meta.columns.filter((c) => !(c in site.types)) : [];
  if (!site.present || missing.length > 0) {
    if (siteBehind) return check(name, 'ok', `${read}; site types not checked: site schema behind`);
    return check(
      name,
      'fail',
      site.present
        ? `site table ${meta.table} has no column ${missing.join(', ')}`
        : `site table ${meta.table} does not exist`,
      "the site schema is current, yet lacks what the entity's metadata names: add it to the site schema",
    );
  }
  if (!site.uniqueKey) {
    return check(
      name,
      'fail',
      `site table ${meta.table} has no primary key or unique index on (${meta.keyColumns.join(', ')})`,
      "the run's upserts need one (ON CONFLICT on the key)",
    );
  }
  const failed: string[] = [];
  const lossy: string[] = [];
  for (const column of meta.columns) {
    const from = remote.types[column]!;
    const to = site.types[column]!;
    const result = conversion(from, to);
    if (result.status === 'ok') continue;
    (result.status === 'fail' ? failed : lossy).push(
      `${meta.table}.${column}: ${from.type} to ${to.type}: ${result.why}`,
    );
  }
  if (failed.length > 0)
    return check(
      name,
      'fail',
      [...failed, ...lossy].join('; '),
      "give the site column a type that takes the remote's values (they arrive as the remote's text)",
    );
  if (lossy.length > 0)
    return check(
      name,
      'warn',
      lossy.join('; '),
      'widen the site column (or narrow the remote one) to keep every value',
    );
  return check(name, 'ok', `${read}, each of a type its site column takes`);
}
