/**
 * All SQL the engine runs against the site and the remote, generated from entity metadata in
 * this one module. Identifiers are always quoted; values are always parameters (the tenant id
 * reaches COPY through a transaction-local setting, since COPY takes no parameters).
 */
import { escapeIdentifier as q } from 'pg';
import type { EntityMetadata } from '../entities';

/** An entity bound to one site database: its quoted table and each column's base type there. */
export interface ResolvedEntity {
  readonly meta: EntityMetadata;
  /** Quoted table name. */
  readonly table: string;
  /** Column → site base type (`format_type(atttypid, NULL)`): typmods are left to assignment, so an over-long value fails instead of being cut. */
  readonly types: Readonly<Record<string, string>>;
  /** Quoted temporary table holding this run's remote rows as text, when the entity is in the run. */
  readonly stage: string;
}

/** How a child sees one parent while a run is planned. */
export type ParentSource =
  /** The parent is synced by this run: it will hold exactly its applicable staged rows. */
  | { readonly kind: 'planned'; readonly entity: ResolvedEntity }
  /** The parent is not in the run, or failed: it keeps what the site has. */
  | { readonly kind: 'site'; readonly entity: ResolvedEntity };

export type ParentLookup = (name: string) => ParentSource;

export const TENANT_SETTING = 'meter_sync.tenant_id';
const TENANT_FROM_SETTING = `current_setting('${TENANT_SETTING}')::integer`;

function list(columns: readonly string[], alias?: string): string {
  return columns.map((c) => (alias ? `${alias}.${q(c)}` : q(c))).join(', ');
}

function nonKeyColumns(meta: EntityMetadata): string[] {
  return meta.columns.filter((c) => !meta.keyColumns.includes(c));
}

/** `t.k = s.k::type` for every key column: `s` holds text, `t` is the typed site table. */
function keyMatch(e: ResolvedEntity, t: string, s: string): string {
  return e.meta.keyColumns.map((k) => `${t}.${q(k)} = ${s}.${q(k)}::${e.types[k]}`).join(' AND ');
}

// ---- remote ---------------------------------------------------------------------------------

/** The tenant's slice of an entity on the remote; `tenant` is the SQL that yields the tenant id. */
function remoteSlice(meta: EntityMetadata, tenant: string): string {
  if (meta.remoteQuery !== undefined) {
    const query = meta.remoteQuery.replace(/\$1(?!\d)/g, tenant);
    return `SELECT ${list(meta.columns, 'r')} FROM (${query}) AS r`;
  }
  const where = meta.tenantColumn !== undefined ? ` WHERE ${q(meta.tenantColumn)} = ${tenant}` : '';
  return `SELECT ${list(meta.columns)} FROM ${q(meta.table)}${where}`;
}

export const remoteSql = {
  beginSnapshot: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  setTenant: `SELECT set_config('${TENANT_SETTING}', $1, true)`,
  /** Streams the slice in COPY text format: the server's own text for every value. */
  copySlice: (meta: EntityMetadata) => `COPY (${remoteSlice(meta, TENANT_FROM_SETTING)}) TO STDOUT`,
  /** The slice as rows, in key order; `$1` is the tenant id. */
  selectSlice: (meta: EntityMetadata) =>
    `SELECT * FROM (${remoteSlice(meta, '$1::integer')}) AS slice ORDER BY ${list(meta.keyColumns)}`,
};

// ---- site: catalog, lock, staging -------------------------------------------------------------

export const siteSql = {
  /** Transaction-scoped, so a crashed run can never leave a site locked. */
  tryLock: 'SELECT pg_try_advisory_xact_lock($1::bigint) AS locked',
  columnTypes: `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type
    FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
  tableExists: 'SELECT to_regclass($1) IS NOT NULL AS present',

  createStage: (e: ResolvedEntity) =>
    `CREATE TEMPORARY TABLE ${e.stage} (${e.meta.columns.map((c) => `${q(c)} text`).join(', ')}) ON COMMIT DROP`,
  copyIntoStage: (e: ResolvedEntity) => `COPY ${e.stage} (${list(e.meta.columns)}) FROM STDIN`,
  analyzeStage: (e: ResolvedEntity) => `ANALYZE ${e.stage}`,
  countRows: (e: ResolvedEntity) => `SELECT count(*) AS rows FROM ${e.table}`,
};

// ---- site: planning ---------------------------------------------------------------------------

/** True for a staged row `s` of `e` whose parents will all exist on the site after this run. */
export function parentsPresent(e: ResolvedEntity, parents: ParentLookup, s = 's'): string {
  const conditions = (e.meta.parents ?? []).map((reference) => {
    const parent = parents(reference.entity);
    const pairs = Object.entries(reference.columns);
    if (parent.kind === 'site') {
      const match = pairs.map(
        ([child, key]) => `p.${q(key)} = ${s}.${q(child)}::${parent.entity.types[key]}`,
      );
      return `EXISTS (SELECT 1 FROM ${parent.entity.table} AS p WHERE ${match.join(' AND ')})`;
    }
    const type = (key: string) => parent.entity.types[key];
    const match = pairs.map(([child, key]) => `p.${q(key)}::${type(key)} = ${s}.${q(child)}::${type(key)}`);
    return `EXISTS (SELECT 1 FROM (${applicableRows(parent.entity, parents)}) AS p WHERE ${match.join(' AND ')})`;
  });
  return conditions.length > 0 ? conditions.join(' AND ') : 'TRUE';
}

/** The staged rows of `e` that this run applies: those whose parents will be there. */
export function applicableRows(e: ResolvedEntity, parents: ParentLookup): string {
  return `SELECT s.* FROM ${e.stage} AS s WHERE ${parentsPresent(e, parents)}`;
}

export const planSql = {
  countApplicable: (e: ResolvedEntity, parents: ParentLookup) =>
    `SELECT count(*) AS total, count(*) FILTER (WHERE ${parentsPresent(e, parents)}) AS applicable FROM ${e.stage} AS s`,
  sampleSkipped: (e: ResolvedEntity, parents: ParentLookup) =>
    `SELECT ${list(e.meta.keyColumns, 's')} FROM ${e.stage} AS s WHERE NOT (${parentsPresent(e, parents)})
     ORDER BY ${list(e.meta.keyColumns, 's')} LIMIT $1`,
};

// ---- site: writes (shared by the staged engine and the row-level SyncDatabase functions) -----

/**
 * Upserts the rows of `source` (a SELECT of text columns named like the entity's), writing a row
 * only when its text form really differs, and counts what it did in the server.
 */
export function upsertFrom(e: ResolvedEntity, source: string): string {
  const columns = e.meta.columns;
  const values = columns.map((c) => `s.${q(c)}::${e.types[c]}`).join(', ');
  const others = nonKeyColumns(e.meta);
  const onConflict =
    others.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${others.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}
         WHERE ROW(${others.map((c) => `t.${q(c)}::text`).join(', ')})
           IS DISTINCT FROM ROW(${others.map((c) => `EXCLUDED.${q(c)}::text`).join(', ')})`;
  // xmax is 0 on a freshly inserted row version and set on one written by DO UPDATE.
  return `WITH written AS (
      INSERT INTO ${e.table} AS t (${list(columns)})
      SELECT ${values} FROM (${source}) AS s
      ON CONFLICT (${list(e.meta.keyColumns)}) ${onConflict}
      RETURNING (t.xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM written`;
}

/** Deletes the site rows whose key is not among the rows of `keep`. */
export function deleteAbsent(e: ResolvedEntity, keep: string): string {
  return `DELETE FROM ${e.table} AS t WHERE NOT EXISTS (SELECT 1 FROM (${keep}) AS s WHERE ${keyMatch(e, 't', 's')})`;
}

/** Deletes the site rows whose key is among the rows of `remove`. */
export function deleteListed(e: ResolvedEntity, remove: string): string {
  return `DELETE FROM ${e.table} AS t WHERE EXISTS (SELECT 1 FROM (${remove}) AS s WHERE ${keyMatch(e, 't', 's')})`;
}

/** Rows given as one text array parameter per column ($1, $2, …), as a SELECT of text columns. */
export function unnestSource(columns: readonly string[]): string {
  const params = columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
  return `SELECT * FROM unnest(${params}) AS u(${list(columns)})`;
}

export function selectRows(e: ResolvedEntity): string {
  return `SELECT ${list(e.meta.columns)} FROM ${e.table} ORDER BY ${list(e.meta.keyColumns)}`;
}
