/** Site schema migrations: versioned, idempotent, and foreign keys that are NOT DEFERRABLE and never cascade. */
import { Client } from 'pg';
import {
  applySiteMigrations,
  LATEST_SITE_SCHEMA_VERSION,
  SITE_MIGRATIONS,
  siteSchemaVersion,
} from '../../lib/db/site-migrations';
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
    expect(first).toEqual({ from: 0, to: LATEST_SITE_SCHEMA_VERSION, applied: SITE_MIGRATIONS });
    expect(await siteSchemaVersion(client)).toBe(LATEST_SITE_SCHEMA_VERSION);

    const second = await applySiteMigrations(client);
    expect(second).toEqual({ from: LATEST_SITE_SCHEMA_VERSION, to: LATEST_SITE_SCHEMA_VERSION, applied: [] });
    const { rows } = await client.query(
      'SELECT version, name FROM meter_sync_schema_migrations ORDER BY version',
    );
    expect(rows).toEqual(SITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    const { rows: tables } = await client.query(
      `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname`,
    );
    expect(tables.map((t) => t.relname)).toEqual([
      'device_register',
      'meter',
      'meter_sync_schema_migrations',
      'meter_sync_site',
      'meter_sync_skipped_row',
      'register',
      'sync_run',
    ]);
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
    // Arrange: a table in the way of migration 1.
    await client.query('CREATE TABLE meter (id bigint)');

    // Act + assert
    await expect(applySiteMigrations(client)).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringMatching(
        /^migration 1 \(meter, register, device_register\) failed, nothing applied: relation "meter" already exists/,
      ),
    });
    expect(await siteSchemaVersion(client)).toBe(0);
    const { rows } = await client.query(`SELECT to_regclass('register') IS NULL AS absent`);
    expect(rows[0].absent).toBe(true);
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
