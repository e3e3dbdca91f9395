/**
 * The SQL of the site schema's tables, in one place: each created from its spec (site-tables.ts),
 * what adoption adds to a table the site already has, and the catalog reads that say how a table
 * is made. Identifiers are quoted; table names reach the catalog as parameters (`$1`, quoted, for
 * `to_regclass`), never as text spliced into it.
 */
import { escapeLiteral, escapeIdentifier as q } from 'pg';
import type { SiteForeignKeySpec, SiteIndexSpec, SiteTableSpec } from './site-tables';

const list = (columns: readonly string[], alias?: string) =>
  columns.map((c) => (alias ? `${alias}.${q(c)}` : q(c))).join(', ');

/** NOT DEFERRABLE and NO ACTION: a delete of a referenced row fails instead of cascading (DESIGN §2). */
function references(fk: SiteForeignKeySpec): string {
  return `FOREIGN KEY (${list(fk.columns)}) REFERENCES ${q(fk.parent)} (${list(fk.parentColumns)}) ON DELETE NO ACTION NOT DEFERRABLE`;
}

/**
 * Joins `b`, the base type of type `t` whose modifier is `typmod`, and `r.typmod`, its modifier: a
 * domain stands for its base type.
 */
export const baseType = (typmod: string) => `CROSS JOIN LATERAL (SELECT
      CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END AS oid,
      CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE ${typmod} END AS typmod) AS r
    JOIN pg_type AS b ON b.oid = r.oid`;

/** The key columns of index `i`, in order; NULL for an expression. */
const indexColumns = `ARRAY(SELECT a.attname::text
    FROM unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
      LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
    ORDER BY k.n)`;

const constraintColumns = (attnums: string, relation: string) => `ARRAY(SELECT a.attname::text
    FROM unnest(${attnums}) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute AS a ON a.attrelid = ${relation} AND a.attnum = k.attnum
    ORDER BY k.n)`;

export const siteSchemaSql = {
  /** A table as migration 1 writes it: the key, then each foreign key, named as PostgreSQL names them. */
  createTable: (table: SiteTableSpec) => {
    const parts = [
      ...table.columns.map((c) => `${q(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}`),
      `PRIMARY KEY (${list(table.key)})`,
      ...table.foreignKeys.map((fk) => `CONSTRAINT ${q(fk.name)} ${references(fk)}`),
    ];
    return `CREATE TABLE ${q(table.name)} (\n  ${parts.join(',\n  ')}\n)`;
  },
  createIndex: (table: SiteTableSpec, index: SiteIndexSpec) =>
    `CREATE INDEX ${q(index.name)} ON ${q(table.name)} (${list(index.columns)})`,
  /**
   * A foreign key added to an adopted table without checking its rows (a brief lock), then
   * `validateConstraint` checks them under a lock that lets the table be read and written.
   */
  addForeignKey: (table: SiteTableSpec, fk: SiteForeignKeySpec) =>
    `ALTER TABLE ${q(table.name)} ADD CONSTRAINT ${q(fk.name)} ${references(fk)} NOT VALID`,
  validateConstraint: (table: SiteTableSpec, name: string) =>
    `ALTER TABLE ${q(table.name)} VALIDATE CONSTRAINT ${q(name)}`,

  // ---- the catalog: how a table the site has is made (`$1`: its quoted name) ----

  /** The relation of the name, if any, and what kind it is (`r` a table, `v` a view, ...). */
  relation: `SELECT c.oid::text AS oid, c.relkind AS kind FROM pg_class AS c WHERE c.oid = to_regclass($1)`,
  /**
   * Each column: its type as `format_type` writes it with and without its modifier, the modifier,
   * the type's category, whether it is NOT NULL (or its domain is), has a default, is an identity
   * (`a` always, `d` by default) or generated column; a domain is read as its base type, and named.
   */
  columns: `SELECT a.attname AS name, format_type(b.oid, r.typmod) AS type,
      format_type(b.oid, NULL) AS base, r.typmod, b.typcategory AS category,
      a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS not_null,
      a.atthasdef OR (t.typtype = 'd' AND t.typdefault IS NOT NULL) AS has_default,
      a.attidentity AS identity, a.attgenerated AS generated,
      CASE WHEN t.typtype = 'd' THEN format_type(t.oid, a.atttypmod) END AS domain
    FROM pg_attribute AS a
      JOIN pg_type AS t ON t.oid = a.atttypid
      ${baseType('a.atttypmod')}
    WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`,
  /**
   * Each valid index: its name, key columns in order (NULL for an expression), whether it is the
   * primary key, and whether an upsert's ON CONFLICT can use it as the key (unique, immediate,
   * whole, of plain columns).
   */
  indexes: `SELECT c.relname AS name, ${indexColumns} AS columns, i.indisprimary AS primary,
      (i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL) AS usable_key,
      i.indpred IS NULL AS whole
    FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
    WHERE i.indrelid = to_regclass($1) AND i.indisvalid
    ORDER BY i.indisprimary DESC, c.relname`,
  /** Each foreign key of the table: its columns, the table it references (its oid) and those columns. */
  foreignKeys: `SELECT conname AS name, ${constraintColumns('conkey', 'conrelid')} AS columns,
      confrelid::text AS parent, ${constraintColumns('confkey', 'confrelid')} AS parent_columns
    FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'f' ORDER BY conname`,
  /** Whether the table has a constraint named `$2`. */
  constraintNamed: `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2) AS taken`,
  /** Whether a relation named `$2` is in the table's schema (an index is created there). */
  relationNamed: `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $2
      AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass($1))) AS taken`,
  /** The base type and category of each type name (`$1`, as `format_type` writes them). */
  typeInfo: `SELECT format_type(ty.oid, NULL) AS base, ty.typcategory AS category
    FROM unnest($1::text[]) WITH ORDINALITY AS n(type, i) LEFT JOIN pg_type AS ty ON ty.oid = to_regtype(n.type)
    ORDER BY n.i`,
  /** The tables of the schema unqualified names are created in: before and after a migration, what it added. */
  tablesOfSchema: `SELECT c.relname AS name FROM pg_class AS c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1`,

  // ---- a table's rows ----

  countRows: (table: SiteTableSpec) => `SELECT count(*) AS rows FROM ${q(table.name)}`,
  /** The distinct values of the tenant column, `$1` at most, in order, as text. */
  tenants: (table: SiteTableSpec, column: string) =>
    `SELECT DISTINCT ${q(column)}::text AS tenant, ${q(column)} FROM ${q(table.name)}
      WHERE ${q(column)} IS NOT NULL ORDER BY ${q(column)} LIMIT $1`,
  /**
   * The rows of `table` a foreign key would refuse: how many (on each row), and the first by key,
   * its key as text. `parentPresent` false: the parent table is yet to be created, empty, so every
   * row that references something is refused.
   */
  brokenReferences: (table: SiteTableSpec, fk: SiteForeignKeySpec, parentPresent: boolean) => {
    const referencing = fk.columns.map((c) => `c.${q(c)} IS NOT NULL`).join(' AND ');
    const match = fk.columns.map((c, i) => `p.${q(fk.parentColumns[i]!)} = c.${q(c)}`).join(' AND ');
    const missing = parentPresent
      ? ` AND NOT EXISTS (SELECT 1 FROM ${q(fk.parent)} AS p WHERE ${match})`
      : '';
    const key = table.key.map((k) => `c.${q(k)}::text AS ${q(k)}`).join(', ');
    return `SELECT count(*) OVER () AS broken, ${key} FROM ${q(table.name)} AS c
      WHERE ${referencing}${missing} ORDER BY ${list(table.key, 'c')} LIMIT 1`;
  },
};

/** The SQL that creates tables on an empty site: each table, then each index the engine needs. */
export function createTablesSql(tables: readonly SiteTableSpec[]): string {
  return [
    ...tables.map((t) => siteSchemaSql.createTable(t)),
    ...tables.flatMap((t) => t.indexes.map((index) => siteSchemaSql.createIndex(t, index))),
  ]
    .map((statement) => `${statement};`)
    .join('\n');
}

/** The trigger that notes which transactions wrote a table (migration 6), and its function. */
export const WRITE_NOTE_TRIGGER = 'meter_sync_note_write';

/**
 * What lets a run trust the site's fingerprint of a table from an earlier run instead of scanning
 * it again (compare-entity.ts): every transaction that writes the table leaves a row in
 * `meter_sync_table_write`, and a remembered fingerprint holds only while no transaction it did not
 * see has written. Rows, not a counter: concurrent writers never wait on each other.
 */
export const writeNotesSql = {
  createTables: `CREATE TABLE meter_sync_table_write (
      table_oid oid NOT NULL,
      xid xid8 NOT NULL,
      PRIMARY KEY (table_oid, xid)
    );
    CREATE TABLE meter_sync_fingerprint (
      entity text PRIMARY KEY,
      table_oid oid NOT NULL,
      signature text NOT NULL,
      buckets text NOT NULL,
      packed text NOT NULL,
      -- pg_snapshot as text: the type has no order, and a table of it could not be sorted whole.
      snapshot text NOT NULL,
      writer xid8,
      recorded_at timestamptz NOT NULL DEFAULT now()
    );`,
  /**
   * Runs as its owner, so that any role that may write a synced table may note it; its tables are
   * named in the schema the migration created them in.
   */
  createFunction: `DO $do$ BEGIN
    EXECUTE format($f$CREATE FUNCTION %1$I.${WRITE_NOTE_TRIGGER}() RETURNS trigger
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
      BEGIN
        INSERT INTO %1$I.meter_sync_table_write (table_oid, xid) VALUES (TG_RELID, pg_current_xact_id())
          ON CONFLICT DO NOTHING;
        RETURN NULL;
      END $body$$f$, current_schema());
  END $do$;`,
  /**
   * The trigger on an entity table: once per statement, whatever it writes (TRUNCATE and COPY
   * included), and ALWAYS, so that a session replicating with triggers off still notes its writes.
   * A role that may not add it leaves the table without one: its fingerprint is then never
   * remembered, only computed.
   */
  noteWrites: (table: string) => `DO $do$ BEGIN
    CREATE TRIGGER ${WRITE_NOTE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${q(table)}
      FOR EACH STATEMENT EXECUTE FUNCTION ${WRITE_NOTE_TRIGGER}();
    ALTER TABLE ${q(table)} ENABLE ALWAYS TRIGGER ${WRITE_NOTE_TRIGGER};
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'meter-sync: no trigger on %: its fingerprint is computed on every run', ${escapeLiteral(table)};
  END $do$;`,
};
