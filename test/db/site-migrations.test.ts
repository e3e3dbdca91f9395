/** Site schema migrations: versioned, idempotent, and foreign keys that are NOT DEFERRABLE and never cascade. */
import { Client } from 'pg';
import {
  applySiteMigrations,
  LATEST_SITE_SCHEMA_VERSION,
  SITE_MIGRATIONS,
  siteSchemaVersion,
} from '../../lib/db/site-migrations';
import { catalogOf } from '../harness/site-catalog';
import { ALL_SITE_TABLES } from '../harness/site-schema-tables';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

describe('site migrations', () => {
  let db: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase('migrations');
    client = new Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  beforeEach(async () => {
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  });

  it('migrates a new site to the latest version, and a second run changes nothing', async () => {
    expect(await siteSchemaVersion(client)).toBe(0);

    const first = await applySiteMigrations(client);
    expect(first).toMatchObject({
      from: 0,
      to: LATEST_SITE_SCHEMA_VERSION,
      applied: SITE_MIGRATIONS,
      adopted: [],
    });
    expect(await siteSchemaVersion(client)).toBe(LATEST_SITE_SCHEMA_VERSION);

    const second = await applySiteMigrations(client);
    expect(second).toEqual({
      from: LATEST_SITE_SCHEMA_VERSION,
      to: LATEST_SITE_SCHEMA_VERSION,
      applied: [],
      adopted: [],
      added: [],
      kept: [],
    });
    const { rows } = await client.query(
      'SELECT version, name FROM meter_sync_schema_migrations ORDER BY version',
    );
    expect(rows).toEqual(SITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    const { rows: tables } = await client.query(
      `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname`,
    );
    expect(tables.map((t) => t.relname)).toEqual(ALL_SITE_TABLES);
  });

  it('upgrades a site from an older version, applying only the newer migrations', async () => {
    // Arrange: a site at version 1.
    await client.query(`CREATE TABLE meter_sync_schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    await client.query(SITE_MIGRATIONS[0]!.sql);
    await client.query('INSERT INTO meter_sync_schema_migrations (version, name) VALUES (1, $1)', [
      SITE_MIGRATIONS[0]!.name,
    ]);
    expect(await siteSchemaVersion(client)).toBe(1);

    // Act
    const report = await applySiteMigrations(client);

    // Assert
    expect(report.from).toBe(1);
    expect(report.to).toBe(LATEST_SITE_SCHEMA_VERSION);
    expect(report.applied.map((m) => m.version)).toEqual(SITE_MIGRATIONS.slice(1).map((m) => m.version));
    expect(await siteSchemaVersion(client)).toBe(LATEST_SITE_SCHEMA_VERSION);
  });

  it('runs concurrent migrations of one site one after the other', async () => {
    const other = new Client({ connectionString: db.url });
    await other.connect();
    try {
      const reports = await Promise.all([applySiteMigrations(client), applySiteMigrations(other)]);
      expect(reports.map((r) => r.applied.length).sort()).toEqual([0, SITE_MIGRATIONS.length]);
    } finally {
      await other.end();
    }
  });

  it('rolls back a failed migration entirely', async () => {
    // Arrange: a table of the site's own in the way of migration 2 (an entity table would be adopted).
    await client.query('CREATE TABLE sync_run (id bigint)');

    // Act + assert
    await expect(applySiteMigrations(client)).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringMatching(
        /^migration 2 \(sync_run audit table\) failed, nothing applied: relation "sync_run" already exists/,
      ),
    });
    expect(await siteSchemaVersion(client)).toBe(0);
    // Migration 1 ran before it, in the same transaction: rolled back with it.
    const { rows } = await client.query(`SELECT to_regclass('register') IS NULL AS absent`);
    expect(rows[0].absent).toBe(true);
  });

  it('creates the entity tables exactly as migration 1 did before its tables were written as data', async () => {
    // Arrange: migration 1's SQL as it was written by hand (before issue 21), in a database of its own.
    const handWritten = await createTestDatabase('migration_1');
    const other = new Client({ connectionString: handWritten.url });
    await other.connect();
    try {
      await other.query(`
        CREATE TABLE meter (
          id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, serial_number text,
          protocol text NOT NULL, ip_address text, port integer, active boolean NOT NULL, config jsonb,
          updated_at timestamptz NOT NULL);
        CREATE TABLE register (
          id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, address integer NOT NULL,
          data_type text NOT NULL, unit text, scale numeric(18,6) NOT NULL, description text,
          updated_at timestamptz NOT NULL);
        CREATE TABLE device_register (
          device_id bigint NOT NULL REFERENCES meter (id) ON DELETE NO ACTION NOT DEFERRABLE,
          register_id bigint NOT NULL REFERENCES register (id) ON DELETE NO ACTION NOT DEFERRABLE,
          poll_interval_s integer NOT NULL, enabled boolean NOT NULL, PRIMARY KEY (device_id, register_id));
        CREATE INDEX device_register_register_id_idx ON device_register (register_id);`);

      // Act
      await client.query(SITE_MIGRATIONS[0]!.sql);

      // Assert
      expect(await catalogOf(client)).toEqual(await catalogOf(other));
    } finally {
      await other.end();
      await handWritten.drop();
    }
  });

  it('creates foreign keys that are NOT DEFERRABLE and do not cascade', async () => {
    await applySiteMigrations(client);
    const { rows } = await client.query(
      `SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent,
              condeferrable, condeferred, confdeltype, confupdtype
       FROM pg_constraint WHERE contype = 'f' ORDER BY child, parent`,
    );
    // confdeltype / confupdtype 'a' is NO ACTION: a delete of a referenced row fails instead of cascading.
    expect(rows).toEqual([
      {
        child: 'device_register',
        parent: 'meter',
        condeferrable: false,
        condeferred: false,
        confdeltype: 'a',
        confupdtype: 'a',
      },
      {
        child: 'device_register',
        parent: 'register',
        condeferrable: false,
        condeferred: false,
        confdeltype: 'a',
        confupdtype: 'a',
      },
    ]);
    // The key columns of the references are the ones the entity metadata declares.
    const { rows: columns } = await client.query(
      `SELECT confrelid::regclass::text AS parent,
              (SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute WHERE attrelid = conrelid AND attnum = ANY (conkey)) AS columns
       FROM pg_constraint WHERE contype = 'f' ORDER BY parent`,
    );
    expect(columns).toEqual([
      { parent: 'meter', columns: ['device_id'] },
      { parent: 'register', columns: ['register_id'] },
    ]);
  });

  it('creates the sync_run audit table that accepts the statuses a run records', async () => {
    await applySiteMigrations(client);
    for (const status of ['ok', 'partial', 'failed']) {
      await client.query(
        `INSERT INTO sync_run (tenant_id, status, started_at, duration_ms, inserted, updated, deleted, skipped, failed_entities, result)
         VALUES (1, $1, now(), 0, 0, 0, 0, 0, '{}', '{}')`,
        [status],
      );
    }
    await expect(
      client.query(
        `INSERT INTO sync_run (tenant_id, status, started_at, duration_ms, inserted, updated, deleted, skipped, failed_entities, result)
         VALUES (1, 'locked', now(), 0, 0, 0, 0, 0, '{}', '{}')`,
      ),
    ).rejects.toMatchObject({ code: '23514' });
  });
});
