/**
 * A site database's schema and rows as one comparable value: to prove that a refused or rolled
 * back migration changed nothing, and to read what an adoption left.
 */
import { type Client, escapeIdentifier } from 'pg';
import { type Row, TEXT_TYPES } from '../../lib/db/rows';

export interface TableCatalog {
  /** `name type [NOT NULL] [DEFAULT …]`, in column order. */
  columns: string[];
  /** `name: definition`, validated or not, by name. */
  constraints: string[];
  /** Each index's definition, by name. */
  indexes: string[];
}

/** Every table of the `public` schema: its columns, constraints and indexes. */
export async function catalogOf(client: Client): Promise<Record<string, TableCatalog>> {
  const { rows: tables } = await client.query<{ name: string }>(
    `SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`,
  );
  const catalog: Record<string, TableCatalog> = {};
  for (const { name } of tables) {
    const table = escapeIdentifier(name);
    const { rows: columns } = await client.query<{ text: string }>(
      `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
          || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
          || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') AS text
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [table],
    );
    const { rows: constraints } = await client.query<{ text: string }>(
      `SELECT conname || ': ' || pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' (NOT VALID)' END AS text
        FROM pg_constraint WHERE conrelid = $1::regclass ORDER BY conname`,
      [table],
    );
    const { rows: indexes } = await client.query<{ text: string }>(
      `SELECT pg_get_indexdef(indexrelid) AS text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE indrelid = $1::regclass ORDER BY c.relname`,
      [table],
    );
    catalog[name] = {
      columns: columns.map((c) => c.text),
      constraints: constraints.map((c) => c.text),
      indexes: indexes.map((i) => i.text),
    };
  }
  return catalog;
}

/** Every row of every table of the `public` schema, as server text, in the order of all its columns. */
export async function rowsOf(client: Client): Promise<Record<string, Row[]>> {
  const { rows: tables } = await client.query<{ name: string; columns: number }>(
    `SELECT c.relname AS name, count(a.attnum)::int AS columns FROM pg_class c
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' GROUP BY c.relname ORDER BY 1`,
  );
  const contents: Record<string, Row[]> = {};
  for (const { name, columns } of tables) {
    const order = Array.from({ length: columns }, (_, i) => String(i + 1)).join(', ');
    const { rows } = await client.query<Row>({
      text: `SELECT * FROM ${escapeIdentifier(name)} ORDER BY ${order}`,
      types: TEXT_TYPES,
    });
    contents[name] = rows;
  }
  return contents;
}

/** The schema and the rows together: what "changed nothing" compares. */
export async function snapshotOf(client: Client): Promise<{ catalog: unknown; rows: unknown }> {
  return { catalog: await catalogOf(client), rows: await rowsOf(client) };
}
