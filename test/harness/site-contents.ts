/** Oracles for engine tests: table contents as server text, the expected tenant slice, and a row-by-row diff. */
import type { Client } from 'pg';
import { escapeIdentifier } from 'pg';
import { type Row, TEXT_TYPES } from '../../lib/db/rows';
import type { EntityResult, SyncResult } from '../../lib/engine';
import type { SyncFixture } from './sync-fixture';

/** A table and its key, enough to read it in a stable order and to diff two readings. */
export interface TableKey {
  readonly table: string;
  readonly keyColumns: readonly string[];
}

export const SHIPPED_TABLES: Readonly<Record<string, TableKey>> = {
  meter: { table: 'meter', keyColumns: ['id'] },
  register: { table: 'register', keyColumns: ['id'] },
  device_register: { table: 'device_register', keyColumns: ['device_id', 'register_id'] },
};

export type Contents = Record<string, Row[]>;

/** Every row of a table as server text, in key order. */
export async function tableRows(client: Client, { table, keyColumns }: TableKey): Promise<Row[]> {
  const { rows } = await client.query<Row>({
    text: `SELECT * FROM ${escapeIdentifier(table)} ORDER BY ${keyColumns.map(escapeIdentifier).join(', ')}`,
    types: TEXT_TYPES,
  });
  return rows;
}

/** The contents of the given tables (by entity name), plus the number of `sync_run` rows. */
export async function siteContents(
  client: Client,
  tables: Readonly<Record<string, TableKey>> = SHIPPED_TABLES,
): Promise<Contents & { sync_run_count: Row[] }> {
  const contents: Contents = {};
  for (const [entity, key] of Object.entries(tables)) contents[entity] = await tableRows(client, key);
  const { rows } = await client.query<Row>({
    text: 'SELECT count(*) AS runs FROM sync_run',
    types: TEXT_TYPES,
  });
  return { ...contents, sync_run_count: rows };
}

/** The contents of the shipped entity tables alone, without the run history: to compare with `expectedSlice`. */
export async function entityContents(client: Client): Promise<Contents> {
  const { sync_run_count: _runs, ...rows } = await siteContents(client);
  return rows;
}

/**
 * What the site must hold after a successful run over the shipped entities, computed from the
 * remote independently of the engine: the tenant's meters and registers, and the associations
 * of its meters whose register is one of its registers.
 */
export async function expectedSlice(remote: Client, tenantId: number): Promise<Contents> {
  const query = async (text: string) =>
    (await remote.query<Row>({ text, values: [tenantId], types: TEXT_TYPES })).rows;
  return {
    meter: await query('SELECT * FROM meter WHERE tenant_id = $1 ORDER BY id'),
    register: await query('SELECT * FROM register WHERE tenant_id = $1 ORDER BY id'),
    device_register: await query(
      `SELECT dr.* FROM device_register dr
       JOIN meter m ON m.id = dr.device_id AND m.tenant_id = $1
       JOIN register r ON r.id = dr.register_id AND r.tenant_id = $1
       ORDER BY dr.device_id, dr.register_id`,
    ),
  };
}

export interface RowCounts {
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

/** What a row-by-row comparison of two readings of one table counts (DESIGN §3.7). */
export function rowDiff(
  before: readonly Row[],
  after: readonly Row[],
  keyColumns: readonly string[],
): RowCounts {
  const keyOf = (row: Row) => JSON.stringify(keyColumns.map((c) => row[c]));
  const old = new Map(before.map((row) => [keyOf(row), JSON.stringify(row)]));
  const counts: RowCounts = { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
  for (const row of after) {
    const previous = old.get(keyOf(row));
    if (previous === undefined) counts.inserted += 1;
    else if (previous === JSON.stringify(row)) counts.unchanged += 1;
    else counts.updated += 1;
    old.delete(keyOf(row));
  }
  counts.deleted = old.size;
  return counts;
}

/** Row-by-row counts per entity between two readings of the site. */
export function contentsDiff(
  before: Contents,
  after: Contents,
  tables: Readonly<Record<string, TableKey>> = SHIPPED_TABLES,
): Record<string, RowCounts> {
  const diff: Record<string, RowCounts> = {};
  for (const [entity, key] of Object.entries(tables)) {
    diff[entity] = rowDiff(before[entity] ?? [], after[entity] ?? [], key.keyColumns);
  }
  return diff;
}

/** The engine's counts per entity, shaped like `contentsDiff` (skipped rows are not a diff). */
export function reportedCounts(result: SyncResult): Record<string, RowCounts> {
  const counts: Record<string, RowCounts> = {};
  for (const e of result.entities) {
    counts[e.entity] = {
      inserted: e.inserted,
      updated: e.updated,
      deleted: e.deleted,
      unchanged: e.unchanged,
    };
  }
  return counts;
}

export function entity(result: SyncResult, name: string): EntityResult {
  const found = result.entities.find((e) => e.entity === name);
  if (!found) throw new Error(`no result for entity ${name}`);
  return found;
}

/** `[entity, inserted, updated, deleted, skipped, unchanged]` per entity, for compact assertions. */
export function countRows(result: SyncResult): [string, number, number, number, number, number][] {
  return result.entities.map((e) => [e.entity, e.inserted, e.updated, e.deleted, e.skipped, e.unchanged]);
}

/** The result without the fields that differ between two runs of the same work. */
export function comparable(result: SyncResult): unknown {
  return {
    status: result.status,
    entities: result.entities.map(({ durationMs: _durationMs, ...rest }) => rest),
  };
}

/**
 * Empties the shipped tables (and `extraTables`, e.g. a test entity's) on both sides and the site's
 * audit table, so a file's cases share one fixture.
 */
export async function resetFixture(fx: SyncFixture, extraTables: readonly string[] = []): Promise<void> {
  const tables = [
    'device_register',
    'meter',
    'register',
    ...extraTables.map((t) => escapeIdentifier(t)),
  ].join(', ');
  await fx.remoteClient.query(`TRUNCATE ${tables}`);
  await fx.siteClient.query(
    `TRUNCATE ${tables}, sync_run, meter_sync_skipped_row, meter_sync_site, meter_sync_fingerprint RESTART IDENTITY`,
  );
}

/** Inserts rows given as server text, one statement per row (arranging tests only; the server parses each value). */
export async function insertTextRows(client: Client, table: string, rows: readonly Row[]): Promise<void> {
  for (const row of rows) {
    const columns = Object.keys(row);
    await client.query(
      `INSERT INTO ${escapeIdentifier(table)} (${columns.map(escapeIdentifier).join(', ')})
       VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      columns.map((c) => row[c]),
    );
  }
}
