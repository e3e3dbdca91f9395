/**
 * The databases a property file runs against: one remote and one site on the harness server,
 * emptied between runs, loaded with generated rows through parameters, and read back as text.
 */
import fc from 'fast-check';
import { Client, escapeIdentifier as q } from 'pg';
import { type Row, TEXT_TYPES } from '../../lib/db/rows';
import { applySiteMigrations } from '../../lib/db/site-migrations';
import { performSync, type SyncOptions, type SyncResult } from '../../lib/engine';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';
import type { Padding, SyncCase } from './arbitraries';
import { KEY_COLUMNS, TABLES, type Table, type TableRows } from './model';

/** Runs per property: PROPERTY_RUNS, 100 by default (CI). */
export const PROPERTY_RUNS = Number(process.env.PROPERTY_RUNS ?? 100);

/**
 * A jest timeout that grows with the number of runs, with room for shrinking a counterexample:
 * a jest timeout would hide fast-check's report (seed, path, counterexample).
 */
export function propertyTimeout(msPerRun: number): number {
  return 15 * 60_000 + PROPERTY_RUNS * msPerRun;
}

/** fast-check parameters: the run count, and a replay of PROPERTY_SEED / PROPERTY_PATH when given. */
export function propertyParameters<T>(): fc.Parameters<T> {
  const seed = process.env.PROPERTY_SEED;
  const path = process.env.PROPERTY_PATH;
  return {
    numRuns: PROPERTY_RUNS,
    verbose: Number(process.env.PROPERTY_VERBOSE ?? fc.VerbosityLevel.None),
    includeErrorInReport: true,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    // With the path, only the shrunk counterexample runs, and is not shrunk again.
    ...(path !== undefined ? { path, endOnFailure: true } : {}),
  };
}

/** Each column's type on both sides: generated text is cast by the server on insert. */
export const COLUMN_TYPES: Readonly<Record<Table, Readonly<Record<string, string>>>> = {
  meter: {
    id: 'bigint',
    tenant_id: 'integer',
    name: 'text',
    serial_number: 'text',
    protocol: 'text',
    ip_address: 'text',
    port: 'integer',
    active: 'boolean',
    config: 'jsonb',
    updated_at: 'timestamptz',
  },
  register: {
    id: 'bigint',
    tenant_id: 'integer',
    name: 'text',
    address: 'integer',
    data_type: 'text',
    unit: 'text',
    scale: 'numeric',
    description: 'text',
    updated_at: 'timestamptz',
  },
  device_register: {
    device_id: 'bigint',
    register_id: 'bigint',
    poll_interval_s: 'integer',
    enabled: 'boolean',
  },
};

export const COLUMNS: Readonly<Record<Table, readonly string[]>> = {
  meter: Object.keys(COLUMN_TYPES.meter),
  register: Object.keys(COLUMN_TYPES.register),
  device_register: Object.keys(COLUMN_TYPES.device_register),
};

const SITE_TABLES = 'device_register, meter, register, sync_run, meter_sync_site';

/** Inserts rows in one statement per table: one text[] parameter per column, cast by the server. */
export async function insertRows(client: Client, table: Table, rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = COLUMNS[table];
  const names = columns.map((c) => q(c)).join(', ');
  const casts = columns.map((c) => `u.${q(c)}::${COLUMN_TYPES[table][c]}`).join(', ');
  const params = columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
  await client.query(
    `INSERT INTO ${q(table)} (${names}) SELECT ${casts} FROM unnest(${params}) AS u(${names})`,
    columns.map((c) => rows.map((row) => row[c] ?? null)),
  );
}

/** Inserts rows, or rewrites the ones whose key exists (a remote edit). */
export async function upsertRows(client: Client, table: Table, rows: readonly Row[]): Promise<void> {
  const columns = COLUMNS[table];
  const keys = KEY_COLUMNS[table];
  const names = columns.map((c) => q(c)).join(', ');
  const casts = columns.map((c) => `$${columns.indexOf(c) + 1}::${COLUMN_TYPES[table][c]}`).join(', ');
  const sets = columns
    .filter((c) => !keys.includes(c))
    .map((c) => `${q(c)} = EXCLUDED.${q(c)}`)
    .join(', ');
  for (const row of rows) {
    await client.query(
      `INSERT INTO ${q(table)} (${names}) VALUES (${casts}) ON CONFLICT (${keys.map((k) => q(k)).join(', ')}) DO UPDATE SET ${sets}`,
      columns.map((c) => row[c] ?? null),
    );
  }
}

/** Sets some columns of the row with this key, if it exists. */
export async function patchRow(client: Client, table: Table, key: Row, patch: Partial<Row>): Promise<void> {
  const columns = Object.keys(patch).filter((c) => c in COLUMN_TYPES[table] && patch[c] !== undefined);
  if (columns.length === 0) return;
  const keys = KEY_COLUMNS[table];
  const sets = columns.map((c, i) => `${q(c)} = $${i + 1}::${COLUMN_TYPES[table][c]}`).join(', ');
  const where = keys
    .map((k, i) => `${q(k)} = $${columns.length + i + 1}::${COLUMN_TYPES[table][k]}`)
    .join(' AND ');
  await client.query(`UPDATE ${q(table)} SET ${sets} WHERE ${where}`, [
    ...columns.map((c) => patch[c] ?? null),
    ...keys.map((k) => key[k] ?? null),
  ]);
}

export async function deleteRow(client: Client, table: Table, key: Row): Promise<void> {
  const keys = KEY_COLUMNS[table];
  const where = keys.map((k, i) => `${q(k)} = $${i + 1}::${COLUMN_TYPES[table][k]}`).join(' AND ');
  await client.query(
    `DELETE FROM ${q(table)} WHERE ${where}`,
    keys.map((k) => key[k] ?? null),
  );
}

/**
 * Padding rows for `tenant`, generated in the server (ids from 1,000,000 on). On the site, in the
 * tables listed in `padding.drift`, row i with i % every = 0 differs in one of four ways, by
 * (i / every) % 4: a changed text value, a value equal in type but not in text (jsonb 1.0 vs 1,
 * numeric scale, '' vs NULL), missing, or an extra site-only row. The remote rows are all the
 * tenant's, so they are all in its slice.
 */
export async function padTables(client: Client, side: 'remote' | 'site', padding: Padding, tenant: number) {
  const on = (table: Table) => side === 'site' && padding.drift.includes(table);
  // `flag` is the parameter saying whether the table drifts here; $1 is rows, $2 every.
  const drift = (flag: string, kind: number, i = 'i') =>
    `(${flag}::boolean AND ${i} % $2::integer = 0 AND (${i} / $2::integer) % 4 = ${kind})`;
  const series = 'FROM generate_series(1, $1::integer) AS i';
  await client.query(
    `INSERT INTO meter (id, tenant_id, name, serial_number, protocol, ip_address, port, active, config, updated_at)
     SELECT 1000000 + i, $4::integer,
            CASE WHEN ${drift('$3', 0)} THEN 'pad ' || i || ' (site)' ELSE 'pad ' || i END,
            NULL, 'mbus', NULL, 502, true,
            (CASE WHEN ${drift('$3', 1)} THEN '{"a": 1.0}' ELSE '{"a": 1}' END)::jsonb,
            timestamptz '2024-01-01 00:00:00+00' + i * interval '1 microsecond'
     ${series} WHERE NOT ${drift('$3', 2)}
     UNION ALL
     SELECT 2000000 + i, $4::integer, 'extra', NULL, 'mbus', NULL, NULL, false, NULL, timestamptz '2024-01-01 00:00:00+00'
     ${series} WHERE ${drift('$3', 3)}`,
    [padding.rows, padding.every, on('meter'), tenant],
  );
  await client.query(
    `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
     SELECT 1000000 + i, $4::integer,
            CASE WHEN ${drift('$3', 0)} THEN 'pad ' || i || ' (site)' ELSE 'pad ' || i END,
            i % 65536, 'uint16', 'kWh',
            CASE WHEN ${drift('$3', 1)} THEN 1.000001 ELSE 1 END,
            CASE WHEN ${drift('$3', 1)} THEN '' ELSE NULL END,
            timestamptz '2024-01-01 00:00:00+00'
     ${series} WHERE NOT ${drift('$3', 2)}
     UNION ALL
     SELECT 2000000 + i, $4::integer, 'extra', 0, 'uint16', NULL, 0, NULL, timestamptz '2024-01-01 00:00:00+00'
     ${series} WHERE ${drift('$3', 3)}`,
    [padding.rows, padding.every, on('register'), tenant],
  );
  // $3 meter, $4 register, $5 device_register: an association needs both parents on the site.
  await client.query(
    `INSERT INTO device_register (device_id, register_id, poll_interval_s, enabled)
     SELECT 1000000 + i, 1000000 + i, CASE WHEN ${drift('$5', 1)} THEN 61 ELSE 60 END, NOT ${drift('$5', 0)}
     ${series} WHERE NOT ${drift('$5', 2)} AND NOT ${drift('$3', 2)} AND NOT ${drift('$4', 2)}
     UNION ALL
     SELECT 1000000 + i, 1000000 + i + 1, 60, true
     FROM generate_series(1, $1::integer - 1) AS i
     WHERE ${drift('$5', 3)} AND NOT ${drift('$3', 2)} AND NOT ${drift('$4', 2, '(i + 1)')}`,
    [padding.rows, padding.every, on('meter'), on('register'), on('device_register')],
  );
}

/** Loads a whole state, parents first (the site's foreign keys). */
export async function loadTables(client: Client, rows: TableRows): Promise<void> {
  for (const table of TABLES) await insertRows(client, table, rows[table]);
}

/** Every row of the three tables as server text, in key order. */
export async function snapshot(client: Client): Promise<TableRows> {
  const read = async (table: Table) => {
    const { rows } = await client.query<Row>({
      text: `SELECT ${COLUMNS[table].map((c) => q(c)).join(', ')} FROM ${q(table)} ORDER BY ${KEY_COLUMNS[table].map((k) => q(k)).join(', ')}`,
      types: TEXT_TYPES,
    });
    return rows;
  };
  return {
    meter: await read('meter'),
    register: await read('register'),
    device_register: await read('device_register'),
  };
}

/** Each row's key and the transaction that wrote its current version: a rewrite changes it. */
export async function rowVersions(client: Client): Promise<Record<Table, Row[]>> {
  const read = async (table: Table) => {
    const keys = KEY_COLUMNS[table].map((k) => q(k)).join(', ');
    const { rows } = await client.query<Row>({
      text: `SELECT ${keys}, xmin::text AS xmin, ctid::text AS ctid FROM ${q(table)} ORDER BY ${keys}`,
      types: TEXT_TYPES,
    });
    return rows;
  };
  return {
    meter: await read('meter'),
    register: await read('register'),
    device_register: await read('device_register'),
  };
}

export async function syncRunCount(site: Client): Promise<number> {
  const { rows } = await site.query<{ n: string }>('SELECT count(*)::text AS n FROM sync_run');
  return Number(rows[0]!.n);
}

async function openAdmin(url: string): Promise<Client> {
  const client = new Client({
    connectionString: url,
    options: '-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3',
  });
  await client.connect();
  return client;
}

/** One extra site database, e.g. the reference site of failure isolation. */
export interface ExtraSite {
  readonly db: TestDatabase;
  readonly client: Client;
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function createExtraSite(): Promise<ExtraSite> {
  const db = await createTestDatabase('site');
  const client = await openAdmin(db.url);
  await applySiteMigrations(client);
  return {
    db,
    client,
    reset: async () => {
      await client.query(`TRUNCATE ${SITE_TABLES} CASCADE`);
    },
    close: async () => {
      await client.end();
      await db.drop();
    },
  };
}

export interface PropertyDatabases {
  readonly fx: SyncFixture;
  readonly remote: Client;
  readonly site: Client;
  /** Empties both sides; cheap enough to run before every case. */
  reset(): Promise<void>;
  /** Empties both sides and loads a case. */
  load(state: SyncCase): Promise<void>;
  sync(tenantId: number, options?: Partial<SyncOptions>): Promise<SyncResult>;
  close(): Promise<void>;
}

/**
 * `PROPERTY_REMOTE_DATABASE_URL` puts the remote on another server than the site (.ci/run: the
 * machine's PostgreSQL 15 against the embedded 18), as a central database and its sites may be.
 */
export async function createPropertyDatabases(): Promise<PropertyDatabases> {
  const fx = await createSyncFixture(1, process.env.PROPERTY_REMOTE_DATABASE_URL || undefined);
  const reset = async () => {
    await fx.remoteClient.query('TRUNCATE device_register, meter, register');
    await fx.siteClient.query(`TRUNCATE ${SITE_TABLES} CASCADE`);
  };
  return {
    fx,
    remote: fx.remoteClient,
    site: fx.siteClient,
    reset,
    async load(state) {
      await reset();
      await loadTables(fx.remoteClient, state.remote);
      await loadTables(fx.siteClient, state.site);
      if (state.padding) {
        await padTables(fx.remoteClient, 'remote', state.padding, state.tenantId);
        await padTables(fx.siteClient, 'site', state.padding, state.tenantId);
      }
    },
    sync(tenantId, options = {}) {
      return performSync({
        remote: fx.remote.url,
        site: fx.site.url,
        tenantId,
        allowMassDelete: true,
        ...options,
      });
    },
    close: () => fx.close(),
  };
}

/** The fields of an entity result that a property compares (not durations). */
export function resultCounts(result: SyncResult): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    result.entities.map((e) => [
      e.entity,
      {
        status: e.status,
        inserted: e.inserted,
        updated: e.updated,
        deleted: e.deleted,
        skipped: e.skipped,
        unchanged: e.unchanged,
        remoteRows: e.remoteRows,
        ...(e.error ? { error: e.error.code } : {}),
      },
    ]),
  );
}
