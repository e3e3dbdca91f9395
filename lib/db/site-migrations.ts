/**
 * The site schema, owned by meter-sync: versioned migrations applied in order, each once.
 * Foreign keys are real, NOT DEFERRABLE and NOT cascading: the engine orders its work so they never fire.
 */
import type { Client } from 'pg';
import { MigrationFailedError, SiteSchemaError, toMeterSyncError } from '../errors';
import { SITE_LOCK_KEY } from './site-database';
import { siteSql } from './sync-sql';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const SITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'meter, register, device_register',
    sql: `
      CREATE TABLE meter (
        id bigint PRIMARY KEY,
        tenant_id integer NOT NULL,
        name text NOT NULL,
        serial_number text,
        protocol text NOT NULL,
        ip_address text,
        port integer,
        active boolean NOT NULL,
        config jsonb,
        updated_at timestamptz NOT NULL
      );
      CREATE TABLE register (
        id bigint PRIMARY KEY,
        tenant_id integer NOT NULL,
        name text NOT NULL,
        address integer NOT NULL,
        data_type text NOT NULL,
        unit text,
        scale numeric(18,6) NOT NULL,
        description text,
        updated_at timestamptz NOT NULL
      );
      CREATE TABLE device_register (
        device_id bigint NOT NULL REFERENCES meter (id) ON DELETE NO ACTION NOT DEFERRABLE,
        register_id bigint NOT NULL REFERENCES register (id) ON DELETE NO ACTION NOT DEFERRABLE,
        poll_interval_s integer NOT NULL,
        enabled boolean NOT NULL,
        PRIMARY KEY (device_id, register_id)
      );
      -- Deleting a register checks device_register by register_id.
      CREATE INDEX device_register_register_id_idx ON device_register (register_id);`,
  },
  {
    version: 2,
    name: 'sync_run audit table',
    sql: `
      CREATE TABLE sync_run (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site_id text,
        tenant_id integer NOT NULL,
        status text NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        duration_ms integer NOT NULL,
        inserted bigint NOT NULL,
        updated bigint NOT NULL,
        deleted bigint NOT NULL,
        skipped bigint NOT NULL,
        failed_entities text[] NOT NULL,
        result jsonb NOT NULL
      );
      CREATE INDEX sync_run_started_at_idx ON sync_run (started_at DESC);`,
  },
  {
    version: 3,
    name: 'sync_run: indexes of the runs that succeeded and of those that did not',
    // Pruning the history keeps the newest ok run and the newest run that was not ok: each found
    // through its own index however long ago it was, instead of walking every run since (a site
    // failing for weeks, or one that never succeeded).
    sql: `CREATE INDEX sync_run_not_ok_started_at_idx ON sync_run (started_at DESC) WHERE status <> 'ok';
      CREATE INDEX sync_run_ok_started_at_idx ON sync_run (started_at DESC) WHERE status = 'ok';`,
  },
  {
    version: 4,
    name: 'meter_sync_skipped_row: the remote rows the last runs skipped for want of a parent',
    // Each entity's skipped rows by their key and reference columns, as text, with the row hash the
    // fingerprints compare (sync-sql's skippedSql): so that an orphan on the remote does not make
    // its bucket differ in every run.
    sql: `CREATE TABLE meter_sync_skipped_row (
        entity text NOT NULL,
        row text[] NOT NULL,
        hash bigint NOT NULL,
        PRIMARY KEY (entity, row)
      );`,
  },
  {
    version: 5,
    name: 'meter_sync_site: the tenant the site is bound to',
    // One row at most. A run for another tenant fails TENANT_MISMATCH before it writes (DESIGN
    // §3.11): a typo or a copied secret must not replace the site's rows with another tenant's. A
    // site synced by an older build is bound to the tenant of its newest successful run.
    sql: `CREATE TABLE meter_sync_site (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        tenant_id integer NOT NULL,
        bound_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO meter_sync_site (tenant_id, bound_at)
        SELECT tenant_id, started_at FROM sync_run WHERE status = 'ok' ORDER BY started_at DESC LIMIT 1;`,
  },
];

export const LATEST_SITE_SCHEMA_VERSION = SITE_MIGRATIONS[SITE_MIGRATIONS.length - 1]!.version;

// Serializes concurrent migrations of one site (any constant distinct from the run lock).
const MIGRATION_LOCK_KEY = '7305818813071261001';

export interface MigrationReport {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly Migration[];
}

export interface MigrateOptions {
  /** The migrations this build knows; tests give their own. */
  readonly migrations?: readonly Migration[];
  /**
   * Take the site's run lock (without waiting) before migrating, as a sync run does: a migration
   * never runs beside a sync, and a second one finds the site `locked`. Without it, a migration
   * waits for another migration of the site to end (the test harness, the demo).
   */
  readonly siteLock?: boolean;
}

export type MigrateOutcome = MigrationReport | { readonly locked: true };

const CREATE_VERSIONS = `CREATE TABLE IF NOT EXISTS meter_sync_schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now())`;

function newerThanBuild(version: number, latest: number): SiteSchemaError {
  return new SiteSchemaError(
    'SITE_SCHEMA_NEWER',
    `the site schema is at version ${version}, newer than the ${latest} this build knows (a newer meter-sync migrated it); nothing was done`,
  );
}

/**
 * Brings the site schema to the latest version in one transaction: all pending migrations or none.
 * Running it again changes nothing; a schema newer than this build is refused with
 * SITE_SCHEMA_NEWER and a migration the site refuses with MIGRATION_FAILED naming it, both rolled
 * back whole.
 */
export async function migrateSiteSchema(
  client: Client,
  options: MigrateOptions = {},
): Promise<MigrateOutcome> {
  const migrations = options.migrations ?? SITE_MIGRATIONS;
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  let current: Migration | undefined;
  try {
    await client.query('BEGIN');
    if (options.siteLock) {
      const { rows } = await client.query<{ locked: boolean }>(siteSql.tryLock, [SITE_LOCK_KEY]);
      if (rows[0]?.locked !== true) {
        await client.query('ROLLBACK');
        return { locked: true };
      }
    }
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    // Read first: a site already up to date is checked by a role that may not create tables.
    const from = await siteSchemaVersion(client);
    if (from === 0) await client.query(CREATE_VERSIONS);
    if (from > latest) throw newerThanBuild(from, latest);
    const pending = migrations.filter((m) => m.version > from);
    for (const migration of pending) {
      current = migration;
      await client.query(migration.sql);
      await client.query('INSERT INTO meter_sync_schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
    }
    current = undefined;
    await client.query('COMMIT');
    return { from, to: pending.length > 0 ? pending[pending.length - 1]!.version : from, applied: pending };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    const failure = toMeterSyncError(error);
    if (failure instanceof SiteSchemaError || failure.code === 'CONNECTION_LOST') throw failure;
    if (current) throw new MigrationFailedError(current, failure.message);
    throw toMeterSyncError(error, 'migration failed');
  }
}

/** Brings the site schema to the latest version, waiting for another migration of the site (see migrateSiteSchema). */
export async function applySiteMigrations(
  client: Client,
  migrations?: readonly Migration[],
): Promise<MigrationReport> {
  return (await migrateSiteSchema(client, migrations ? { migrations } : {})) as MigrationReport;
}

/** The site's schema version, 0 when meter-sync never migrated it. */
export async function siteSchemaVersion(client: Client): Promise<number> {
  // Two statements: a query that names a missing table fails when parsed, whatever CASE guards it.
  const { rows: exists } = await client.query<{ present: boolean }>(siteSql.tableExists, [
    'meter_sync_schema_migrations',
  ]);
  if (!exists[0]?.present) return 0;
  const { rows } = await client.query<{ version: number }>(
    'SELECT coalesce(max(version), 0) AS version FROM meter_sync_schema_migrations',
  );
  return rows[0]?.version ?? 0;
}

/**
 * Why a site at schema `version` cannot be synced by this build, or undefined when it can: behind
 * (SITE_NOT_MIGRATED) or ahead (SITE_SCHEMA_NEWER).
 */
export function schemaMismatch(
  version: number,
  latest = LATEST_SITE_SCHEMA_VERSION,
): SiteSchemaError | undefined {
  if (version > latest) return newerThanBuild(version, latest);
  if (version < latest)
    return new SiteSchemaError(
      'SITE_NOT_MIGRATED',
      version === 0
        ? 'the site database has no meter-sync schema: run `meter-sync migrate`, or let the function migrate it (SITE_MIGRATIONS=auto)'
        : `the site schema is at version ${version}, this build needs ${latest}: run \`meter-sync migrate\`, or let the function migrate it (SITE_MIGRATIONS=auto)`,
    );
  return undefined;
}
