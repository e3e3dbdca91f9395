/**
 * The site schema, owned by meter-sync: versioned migrations applied in order, each once.
 * Foreign keys are real, NOT DEFERRABLE and NOT cascading: the engine orders its work so they never fire.
 */
import type { Client } from 'pg';
import { MigrationFailedError, SiteSchemaConflictError, SiteSchemaError, toMeterSyncError } from '../errors';
import { type AdoptionInspection, applyAdoption, inspectTables, tenantToKeep } from './site-adoption';
import { SITE_LOCK_KEY, SiteDatabase } from './site-database';
import { createTablesSql, siteSchemaSql, writeNotesSql } from './site-schema-sql';
import { ENTITY_TABLES_V1, type SiteTableSpec } from './site-tables';
import { siteSql } from './sync-sql';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** What it runs; for a migration of `tables`, what it runs on a site that has none of them. */
  readonly sql: string;
  /**
   * The entity tables it creates. A table the site already has is adopted instead when it fits, and
   * refused with SITE_SCHEMA_CONFLICT when it does not (site-adoption.ts).
   */
  readonly tables?: readonly SiteTableSpec[];
}

export const SITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'meter, register, device_register',
    // Its tables as data (site-tables.ts): a site that already has one of them adopts it.
    sql: createTablesSql(ENTITY_TABLES_V1),
    tables: ENTITY_TABLES_V1,
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
  {
    version: 6,
    name: 'meter_sync_fingerprint: fingerprints a run may trust, and the writes that end them',
    // A run that found a table equal to the remote, or made it so, keeps its fingerprint; the next
    // run compares the remote's with it instead of scanning the site's table again, unless a
    // transaction it did not see has written the table since (site-schema-sql's writeNotesSql).
    // An entity table added by a later migration gets its trigger there too.
    sql: [
      writeNotesSql.createTables,
      writeNotesSql.createFunction,
      ...ENTITY_TABLES_V1.map((t) => writeNotesSql.noteWrites(t.name)),
    ].join('\n'),
  },
  {
    version: 7,
    name: "meter_sync_fingerprint.remote_horizon: the remote's snapshot a kept fingerprint was the remote's at",
    // The next run's remote hashes only the rows written since that snapshot (compare-entity.ts).
    sql: 'ALTER TABLE meter_sync_fingerprint ADD COLUMN remote_horizon text;',
  },
];

export const LATEST_SITE_SCHEMA_VERSION = SITE_MIGRATIONS[SITE_MIGRATIONS.length - 1]!.version;

// Serializes concurrent migrations of one site (any constant distinct from the run lock).
const MIGRATION_LOCK_KEY = '7305818813071261001';

export interface MigrationReport {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly Migration[];
  /** The entity tables the site already had and kept, with their rows. */
  readonly adopted: readonly string[];
  /** What the migration created: each table, and each foreign key and index added to an adopted table. */
  readonly added: readonly string[];
  /** What an adopted table has that the site schema would not, left as it is: its rows, its own columns, compatible types. */
  readonly kept: readonly string[];
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
  /** The site's tenant, when known: the one whose rows an adopted site of several tenants keeps, with `allowTenantChange`. */
  readonly tenantId?: number;
  /** Adopt tables holding rows of several tenants, keeping `tenantId`'s (DESIGN §3.11: the site is bound to it). */
  readonly allowTenantChange?: boolean;
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

async function tablesOfSchema(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(siteSchemaSql.tablesOfSchema);
  return rows.map((r) => r.name);
}

/** Whether the site has the table of its binding (migration 5 creates it). */
async function hasBindingTable(client: Client): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(siteSql.tableExists, ['meter_sync_site']);
  return rows[0]?.present === true;
}

/**
 * Looks at the entity tables the pending migrations create before anything is changed: every table
 * that does not fit is listed at once (SITE_SCHEMA_CONFLICT), and tables of several tenants need
 * the site's binding or allowTenantChange. Returns each migration's inspection, and the tenant to
 * bind the site to.
 */
async function inspectPending(
  client: Client,
  pending: readonly Migration[],
  options: MigrateOptions,
): Promise<{ inspections: Map<number, AdoptionInspection>; bind?: number }> {
  const inspections = new Map<number, AdoptionInspection>();
  for (const migration of pending) {
    if (migration.tables) inspections.set(migration.version, await inspectTables(client, migration.tables));
  }
  const all = [...inspections.values()];
  const conflicts = all.flatMap((i) => i.conflicts);
  if (conflicts.length > 0) throw new SiteSchemaConflictError(conflicts);
  if (!all.some((i) => i.mixedTenants)) return { inspections };
  const choice = {
    boundTenant: (await hasBindingTable(client)) ? await new SiteDatabase(client).boundTenant() : undefined,
    ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
    ...(options.allowTenantChange ? { allowTenantChange: true } : {}),
  };
  let bind: number | undefined;
  for (const inspection of all) bind ??= tenantToKeep(inspection, choice);
  return { inspections, ...(bind !== undefined ? { bind } : {}) };
}

/**
 * Brings the site schema to the latest version in one transaction: all pending migrations or none.
 * Running it again changes nothing; a schema newer than this build is refused with
 * SITE_SCHEMA_NEWER, an entity table that is there and does not fit with SITE_SCHEMA_CONFLICT,
 * tables of several tenants with SITE_MIXED_TENANTS (all before any change), and a migration the
 * site refuses with MIGRATION_FAILED naming it, rolled back whole.
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
    if (from > latest) throw newerThanBuild(from, latest);
    const pending = migrations.filter((m) => m.version > from);
    const before = pending.length > 0 ? await tablesOfSchema(client) : [];
    // 1. Look, and refuse what does not fit, before touching anything.
    const { inspections, bind } = await inspectPending(client, pending, options);
    // 2. Migrate.
    if (from === 0) await client.query(CREATE_VERSIONS);
    const addedToAdopted: string[] = [];
    for (const migration of pending) {
      current = migration;
      const inspection = inspections.get(migration.version);
      if (inspection) addedToAdopted.push(...(await applyAdoption(client, inspection)));
      else await client.query(migration.sql);
      await client.query('INSERT INTO meter_sync_schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
    }
    current = undefined;
    // 3. Tables of several tenants adopted on purpose: the site keeps the rows of the tenant it is bound to.
    if (bind !== undefined && (await hasBindingTable(client)))
      await new SiteDatabase(client).bindTenant(bind);
    const created =
      pending.length > 0 ? (await tablesOfSchema(client)).filter((t) => !before.includes(t)) : [];
    await client.query('COMMIT');
    const adoptions = [...inspections.values()];
    return {
      from,
      to: pending.length > 0 ? pending[pending.length - 1]!.version : from,
      applied: pending,
      adopted: adoptions.flatMap((i) => i.adopted),
      added: [...created.map((t) => `table ${t}`), ...addedToAdopted],
      kept: adoptions.flatMap((i) => i.kept),
    };
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
