/** How a table a site database already has is made, read off its catalog: its columns, indexes and foreign keys. */
import type { Client } from 'pg';
import { siteSchemaSql } from './site-schema-sql';
import type { ColumnType } from './type-conversion';

export interface SiteColumn extends ColumnType {
  readonly name: string;
  readonly notNull: boolean;
  readonly hasDefault: boolean;
  /** `a` GENERATED ALWAYS AS IDENTITY, `d` BY DEFAULT, '' neither. */
  readonly identity: string;
  /** `s` a stored generated column, '' none. */
  readonly generated: string;
  /** The column's type is a domain (`declared` is its name). */
  readonly domain?: string;
}

export interface SiteIndex {
  readonly name: string;
  /** Key columns in order; null for an expression. */
  readonly columns: readonly (string | null)[];
  readonly primary: boolean;
  /** Unique, immediate, whole and of plain columns: an upsert's ON CONFLICT can use it. */
  readonly usableKey: boolean;
  /** Not partial. */
  readonly whole: boolean;
}

export interface SiteForeignKey {
  readonly name: string;
  readonly columns: readonly string[];
  /** The oid of the table it references, as text. */
  readonly parent: string;
  readonly parentColumns: readonly string[];
}

export type TableShape =
  | { readonly kind: 'absent' }
  /** A relation of the name that is no table: `v` a view, `m` a materialized view, `f` a foreign table, ... */
  | { readonly kind: 'other'; readonly relkind: string }
  | {
      readonly kind: 'table';
      readonly oid: string;
      readonly columns: readonly SiteColumn[];
      readonly indexes: readonly SiteIndex[];
      readonly foreignKeys: readonly SiteForeignKey[];
    };

interface ColumnRow {
  name: string;
  type: string;
  base: string;
  typmod: number;
  category: string;
  not_null: boolean;
  has_default: boolean;
  identity: string;
  generated: string;
  domain: string | null;
}

/** Reads the table `quoted` (an identifier as escapeIdentifier quotes it) resolves to through the search path. */
export async function readTableShape(client: Client, quoted: string): Promise<TableShape> {
  const { rows: relation } = await client.query<{ oid: string; kind: string }>(siteSchemaSql.relation, [
    quoted,
  ]);
  const found = relation[0];
  if (!found) return { kind: 'absent' };
  // A partitioned table takes upserts and foreign keys as a table does.
  if (found.kind !== 'r' && found.kind !== 'p') return { kind: 'other', relkind: found.kind };
  const { rows: columns } = await client.query<ColumnRow>(siteSchemaSql.columns, [quoted]);
  const { rows: indexes } = await client.query<{
    name: string;
    columns: (string | null)[];
    primary: boolean;
    usable_key: boolean;
    whole: boolean;
  }>(siteSchemaSql.indexes, [quoted]);
  const { rows: foreignKeys } = await client.query<{
    name: string;
    columns: string[];
    parent: string;
    parent_columns: string[];
  }>(siteSchemaSql.foreignKeys, [quoted]);
  return {
    kind: 'table',
    oid: found.oid,
    columns: columns.map((c) => ({
      name: c.name,
      type: c.type,
      base: c.base,
      typmod: Number(c.typmod),
      category: c.category,
      notNull: c.not_null,
      hasDefault: c.has_default,
      identity: c.identity,
      generated: c.generated,
      ...(c.domain !== null ? { domain: c.domain } : {}),
    })),
    indexes: indexes.map((i) => ({
      name: i.name,
      columns: i.columns,
      primary: i.primary,
      usableKey: i.usable_key,
      whole: i.whole,
    })),
    foreignKeys: foreignKeys.map((fk) => ({
      name: fk.name,
      columns: fk.columns,
      parent: fk.parent,
      parentColumns: fk.parent_columns,
    })),
  };
}
