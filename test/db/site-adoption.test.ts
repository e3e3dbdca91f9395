/**
 * Adoption by the site schema migration (issue 21 §1-2): entity tables a site database already has
 * are adopted when they fit (their rows and own columns kept, what they lack added in the same
 * transaction) and refused with every difference when they do not, the database left exactly as
 * it was. Real PostgreSQL: each case builds the site's tables, migrates, and reads the catalog and
 * the rows afterwards.
 */
import { Client } from 'pg';
import {
  LATEST_SITE_SCHEMA_VERSION,
  type MigrateOptions,
  type Migration,
  type MigrationReport,
  migrateSiteSchema,
  SITE_MIGRATIONS,
  siteSchemaVersion,
} from '../../lib/db/site-migrations';
import { createTablesSql } from '../../lib/db/site-schema-sql';
import type { SiteTableSpec } from '../../lib/db/site-tables';
import type { SchemaDifference } from '../../lib/errors';
import { catalogOf, rowsOf, snapshotOf } from '../harness/site-catalog';
import { ADDED_TO_AN_EMPTY_SITE, METER_SYNC_TABLES } from '../harness/site-schema-tables';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

/** The meter table an older process made, with a column of the site's own. */
const METER_OF_ITS_OWN = `CREATE TABLE meter (
  id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, serial_number text,
  protocol text NOT NULL, ip_address text, port integer, active boolean NOT NULL, config jsonb,
  updated_at timestamptz NOT NULL, last_polled_at timestamptz)`;
const METERS = `INSERT INTO meter (id, tenant_id, name, protocol, active, config, updated_at) VALUES
  (1, 7, 'Main feeder', 'modbus-tcp', true, '{"unitId": 1}', '2024-01-01 00:00:00+00'),
  (2, 7, 'Chiller', 'bacnet', false, NULL, '2024-01-02 00:00:00+00')`;
const REGISTER = `CREATE TABLE register (
  id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, address integer NOT NULL,
  data_type text NOT NULL, unit text, scale numeric(18,6) NOT NULL, description text, updated_at timestamptz NOT NULL)`;
const REGISTERS = `INSERT INTO register (id, tenant_id, name, address, data_type, scale, updated_at) VALUES
  (10, 7, 'Energy', 1, 'uint32', 0.001, '2024-01-01 00:00:00+00'),
  (11, 7, 'Power', 2, 'int16', 1, '2024-01-01 00:00:00+00')`;
/** device_register without its foreign keys or the index on register_id. */
const DEVICE_REGISTER_BARE = `CREATE TABLE device_register (
  device_id bigint NOT NULL, register_id bigint NOT NULL, poll_interval_s integer NOT NULL,
  enabled boolean NOT NULL, PRIMARY KEY (device_id, register_id))`;

const SITE_SCHEMA_TABLES = METER_SYNC_TABLES;

describe('site migrations: adopting the entity tables a site already has', () => {
  let db: TestDatabase;
  let client: Client;
  /** The catalog of a site migrated from nothing: what adopted and added tables are compared with. */
  let fresh: Awaited<ReturnType<typeof catalogOf>>;

  beforeAll(async () => {
    db = await createTestDatabase('adoption');
    client = new Client({ connectionString: db.url, options: '-c TimeZone=UTC -c DateStyle=ISO' });
    await client.connect();
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await migrateSiteSchema(client);
    fresh = await catalogOf(client);
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  beforeEach(async () => {
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  });

  const migrate = async (options: MigrateOptions = {}) =>
    (await migrateSiteSchema(client, options)) as MigrationReport;
  const given = async (...statements: string[]) => {
    for (const statement of statements) await client.query(statement);
  };

  /** Refused with `code`, the database exactly as before; returns the error. */
  async function expectRefused(code: string, options: MigrateOptions = {}) {
    const before = await snapshotOf(client);
    const error = await migrate(options).catch((e: unknown) => e);
    expect(error).toMatchObject({ code });
    expect(await snapshotOf(client)).toEqual(before);
    expect(await siteSchemaVersion(client)).toBe(0);
    return error as { message: string; differences?: SchemaDifference[] };
  }

  it('creates every table of an empty site, and says so', async () => {
    const report = await migrate();

    expect(report).toEqual({
      from: 0,
      to: LATEST_SITE_SCHEMA_VERSION,
      applied: SITE_MIGRATIONS,
      adopted: [],
      added: ADDED_TO_AN_EMPTY_SITE,
      kept: [],
    });
  });

  it('adopts a meter table of its own with its rows and its own column, and adds what the site lacks', async () => {
    // Arrange
    await given(
      METER_OF_ITS_OWN,
      METERS,
      `UPDATE meter SET last_polled_at = '2024-06-01 12:00:00+00' WHERE id = 1`,
    );
    const meterBefore = (await catalogOf(client)).meter;
    const rowsBefore = (await rowsOf(client)).meter;

    // Act
    const report = await migrate();

    // Assert
    expect(report.adopted).toEqual(['meter']);
    expect(report.kept).toEqual([
      "meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync",
      'meter: its 2 rows, reconciled by the first sync',
    ]);
    expect(report.added).toEqual(
      ['device_register', 'register', ...SITE_SCHEMA_TABLES].sort().map((t) => `table ${t}`),
    );
    const after = await catalogOf(client);
    expect(after.meter).toEqual(meterBefore);
    expect(after.register).toEqual(fresh.register);
    expect(after.device_register).toEqual(fresh.device_register);
    expect((await rowsOf(client)).meter).toEqual(rowsBefore);
    expect(await siteSchemaVersion(client)).toBe(LATEST_SITE_SCHEMA_VERSION);
  });

  it('adopts tables identical to its own with their rows: only the tables of the site schema are added', async () => {
    // Arrange: the entity tables exactly as migration 1 makes them.
    await given(SITE_MIGRATIONS[0]!.sql, METERS, REGISTERS);
    await given('INSERT INTO device_register VALUES (1, 10, 60, true), (2, 11, 15, false)');
    const before = await snapshotOf(client);

    // Act
    const report = await migrate();

    // Assert
    expect(report.adopted).toEqual(['meter', 'register', 'device_register']);
    expect(report.added).toEqual(SITE_SCHEMA_TABLES.map((t) => `table ${t}`));
    expect(report.kept).toEqual([
      'meter: its 2 rows, reconciled by the first sync',
      'register: its 2 rows, reconciled by the first sync',
      'device_register: its 2 rows, reconciled by the first sync',
    ]);
    expect(await catalogOf(client)).toMatchObject(fresh);
    const rows = await rowsOf(client);
    const entityRows = (snapshot: { rows: unknown }) => {
      const { meter, register, device_register } = snapshot.rows as Record<string, unknown>;
      return { meter, register, device_register };
    };
    expect(entityRows({ rows })).toEqual(entityRows(before));
  });

  it('adds the foreign keys between entity tables whose rows satisfy them, validated, and the index the engine needs', async () => {
    // Arrange
    await given(METER_OF_ITS_OWN, METERS, REGISTER, REGISTERS, DEVICE_REGISTER_BARE);
    await given(
      'INSERT INTO device_register VALUES (1, 10, 60, true), (1, 11, 60, true), (2, 11, 15, false)',
    );

    // Act
    const report = await migrate();

    // Assert
    expect(report.adopted).toEqual(['meter', 'register', 'device_register']);
    expect(report.added).toEqual([
      ...SITE_SCHEMA_TABLES.map((t) => `table ${t}`),
      'foreign key device_register_device_id_fkey on device_register (device_id) to meter (id)',
      'foreign key device_register_register_id_fkey on device_register (register_id) to register (id)',
      'index device_register_register_id_idx on device_register (register_id)',
    ]);
    // As a new site has them: validated (no NOT VALID), NOT DEFERRABLE, no action on delete.
    expect((await catalogOf(client)).device_register).toEqual(fresh.device_register);
  });

  it('refuses a foreign key the rows break, naming the rows, and changes nothing', async () => {
    // Arrange: an association of meter 3, which the site does not have; and of register 12.
    await given(METER_OF_ITS_OWN, METERS, REGISTER, REGISTERS, DEVICE_REGISTER_BARE);
    await given('INSERT INTO device_register VALUES (1, 10, 60, true), (3, 10, 60, true), (3, 12, 60, true)');

    // Act + assert
    const error = await expectRefused('SITE_SCHEMA_CONFLICT');
    expect(error.differences).toEqual([
      {
        table: 'device_register',
        column: 'device_id',
        site: '2 rows referencing no meter',
        expected: 'FOREIGN KEY (device_id) REFERENCES meter (id)',
        problem:
          '2 rows reference no meter (id), e.g. device_id=3, register_id=10: the foreign key device_register_device_id_fkey of the site schema would refuse them (delete or mend them)',
      },
      {
        table: 'device_register',
        column: 'register_id',
        site: '1 row referencing no register',
        expected: 'FOREIGN KEY (register_id) REFERENCES register (id)',
        problem:
          '1 row references no register (id), e.g. device_id=3, register_id=12: the foreign key device_register_register_id_fkey of the site schema would refuse them (delete or mend them)',
      },
    ]);
  });

  it('refuses associations whose parent table the site does not have: it would be created empty', async () => {
    await given(DEVICE_REGISTER_BARE, 'INSERT INTO device_register VALUES (1, 10, 60, true)');
    const error = await expectRefused('SITE_SCHEMA_CONFLICT');
    expect(error.differences!.map((d) => d.problem)).toEqual([
      '1 row references no meter (id) (the site has no meter table), e.g. device_id=1, register_id=10: the foreign key device_register_device_id_fkey of the site schema would refuse them (delete or mend them)',
      '1 row references no register (id) (the site has no register table), e.g. device_id=1, register_id=10: the foreign key device_register_register_id_fkey of the site schema would refuse them (delete or mend them)',
    ]);
  });

  it('refuses an extra NOT NULL column without a default, and keeps one with a default or nullable', async () => {
    // Arrange
    await given(METER_OF_ITS_OWN, METERS, "ALTER TABLE meter ADD COLUMN site_code text NOT NULL DEFAULT 'x'");
    await given(
      "ALTER TABLE meter ADD COLUMN building text NOT NULL DEFAULT 'main'",
      'ALTER TABLE meter ALTER COLUMN site_code DROP DEFAULT',
    );

    // Act + assert
    const error = await expectRefused('SITE_SCHEMA_CONFLICT');
    expect(error.differences).toEqual([
      {
        table: 'meter',
        column: 'site_code',
        site: 'text NOT NULL',
        expected: null,
        problem:
          "a column of the site's own, NOT NULL without a default: the sync's inserts would be refused (give it a default, or drop NOT NULL)",
      },
    ]);
    expect(error.message).toMatch(
      /^the site's tables do not fit the site schema, so nothing was changed: meter\.site_code: a column/,
    );

    // The default mends it; the columns of its own are kept.
    await given("ALTER TABLE meter ALTER COLUMN site_code SET DEFAULT 'x'");
    const report = await migrate();
    expect(report.kept).toEqual([
      "meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync",
      "meter.site_code: a column of the site's own (text), left alone by every sync",
      "meter.building: a column of the site's own (text), left alone by every sync",
      'meter: its 2 rows, reconciled by the first sync',
    ]);
  });

  it('adopts varchar columns for text, a wider numeric and integer, and says what a varchar refuses', async () => {
    // Arrange
    await given(
      METER_OF_ITS_OWN.replace('name text NOT NULL', 'name varchar(64) NOT NULL').replace(
        'ip_address text',
        'ip_address character varying',
      ),
      REGISTER.replace('scale numeric(18,6)', 'scale numeric(24,6)').replace(
        'address integer',
        'address bigint',
      ),
    );

    // Act
    const report = await migrate();

    // Assert
    expect(report.adopted).toEqual(['meter', 'register']);
    expect(report.kept).toEqual([
      'meter.name: character varying(64) for text (a value longer than 64 characters is refused)',
      'meter.ip_address: character varying for text (character varying takes every text)',
      "meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync",
      'register.address: bigint for integer (bigint holds every integer value)',
      'register.scale: numeric(24,6) for numeric(18,6) (numeric(24,6) holds every numeric(18,6) value as it is written)',
    ]);
    expect((await catalogOf(client)).meter!.columns).toContain('name character varying(64) NOT NULL');
  });

  it('refuses a missing column, another type, a stricter NOT NULL, a narrower or rescaled numeric: every difference at once', async () => {
    // Arrange
    await given(
      METER_OF_ITS_OWN.replace('config jsonb,', '')
        .replace('port integer', 'port text')
        .replace('serial_number text', 'serial_number text NOT NULL'),
      REGISTER.replace('scale numeric(18,6)', 'scale numeric(20,8)').replace(
        'address integer',
        'address smallint',
      ),
    );

    // Act + assert
    const error = await expectRefused('SITE_SCHEMA_CONFLICT');
    expect(error.differences!.map((d) => [d.table, d.column, d.site, d.expected])).toEqual([
      ['meter', 'serial_number', 'text NOT NULL', 'text'],
      ['meter', 'port', 'text', 'integer'],
      ['meter', 'config', null, 'jsonb'],
      ['register', 'address', 'smallint', 'integer'],
      ['register', 'scale', 'numeric(20,8)', 'numeric(18,6)'],
    ]);
    expect(error.message).toContain('meter.port: the site has text, the site schema integer');
    expect(error.message).toContain('meter.config: missing (the site schema has jsonb)');
    expect(error.message).toContain(
      'meter.serial_number: NOT NULL on the site, nullable in the site schema: a NULL from the remote would be refused',
    );
    expect(error.message).toContain(
      'register.scale: the site has numeric(20,8), the site schema numeric(18,6)',
    );
    expect(error.message).not.toMatch(/[\r\n]/);
  });

  it('refuses a table keyed on other columns, and adopts one whose key is a unique index', async () => {
    // Arrange
    await given(
      METER_OF_ITS_OWN.replace('id bigint PRIMARY KEY', 'id bigint NOT NULL').replace(
        'last_polled_at timestamptz)',
        'last_polled_at timestamptz, PRIMARY KEY (tenant_id, id))',
      ),
    );

    // Act + assert
    const error = await expectRefused('SITE_SCHEMA_CONFLICT');
    expect(error.differences).toEqual([
      {
        table: 'meter',
        site: 'PRIMARY KEY (tenant_id, id)',
        expected: 'PRIMARY KEY (id)',
        problem:
          "its primary key is (tenant_id, id), the site schema's key (id), and no unique index is over (id) alone",
      },
    ]);

    await given('CREATE UNIQUE INDEX meter_id_key ON meter (id)');
    const report = await migrate();
    expect(report.adopted).toEqual(['meter']);
    expect(report.kept).toContain('meter: its key (id) as the unique index meter_id_key, not a primary key');
  });

  it('refuses a view where a table should be', async () => {
    await given('CREATE VIEW register AS SELECT 1 AS id');
    const error = await expectRefused('SITE_SCHEMA_CONFLICT');
    expect(error.differences).toEqual([
      {
        table: 'register',
        site: 'a view',
        expected: 'a table',
        problem: 'a view of this name is there, not a table',
      },
    ]);
  });

  it('refuses tables of several tenants unless the binding or allowTenantChange says which to keep', async () => {
    // Arrange: meters of tenants 7 and 8.
    await given(
      METER_OF_ITS_OWN,
      METERS,
      `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at)
      VALUES (3, 8, 'Other', 'bacnet', true, now())`,
    );

    // Act + assert: refused without a tenant, and with one but without allowTenantChange.
    const error = await expectRefused('SITE_MIXED_TENANTS');
    expect(error.message).toMatch(
      /^the site's tables hold rows of more than one tenant \(meter: tenants 7, 8\)/,
    );
    await expectRefused('SITE_MIXED_TENANTS', { tenantId: 7 });

    // With both, adopted and bound to the tenant it keeps.
    const report = await migrate({ tenantId: 7, allowTenantChange: true });
    expect(report.adopted).toEqual(['meter']);
    const { rows } = await client.query('SELECT tenant_id FROM meter_sync_site');
    expect(rows).toEqual([{ tenant_id: 7 }]);
    expect((await rowsOf(client)).meter).toHaveLength(3);
  });

  it("adopts a later migration's table of several tenants on a bound site: the binding says which it keeps", async () => {
    // Arrange: a site at the latest version, bound to tenant 7, that made a gateway table of its own.
    const gateway: SiteTableSpec = {
      name: 'gateway',
      columns: [
        { name: 'id', type: 'bigint', notNull: true },
        { name: 'tenant_id', type: 'integer', notNull: true },
        { name: 'name', type: 'text', notNull: false },
      ],
      key: ['id'],
      tenantColumn: 'tenant_id',
      foreignKeys: [],
      indexes: [],
    };
    const withGateway: Migration[] = [
      ...SITE_MIGRATIONS,
      {
        version: LATEST_SITE_SCHEMA_VERSION + 1,
        name: 'gateway',
        sql: createTablesSql([gateway]),
        tables: [gateway],
      },
    ];
    await migrate();
    await given(
      'CREATE TABLE gateway (id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text)',
      `INSERT INTO gateway VALUES (1, 7, 'north'), (2, 8, 'south')`,
    );

    // Act + assert: refused while the site is not bound; adopted once it is, the binding as it was.
    await expect(migrate({ migrations: withGateway })).rejects.toMatchObject({ code: 'SITE_MIXED_TENANTS' });
    await given('INSERT INTO meter_sync_site (tenant_id) VALUES (7)');
    const report = await migrate({ migrations: withGateway, tenantId: 8, allowTenantChange: true });
    expect(report).toMatchObject({
      adopted: ['gateway'],
      added: [],
      kept: ['gateway: its 2 rows, reconciled by the first sync'],
    });
    const { rows } = await client.query('SELECT tenant_id FROM meter_sync_site');
    expect(rows).toEqual([{ tenant_id: 7 }]);
  });

  it('adopts tables of one tenant without binding the site: the first sync that commits does', async () => {
    await given(METER_OF_ITS_OWN, METERS);
    await migrate({ tenantId: 1 });
    const { rows } = await client.query('SELECT tenant_id FROM meter_sync_site');
    expect(rows).toEqual([]);
  });

  it('still fails a migration the site refuses for a table of the site schema in the way, naming it', async () => {
    // Arrange: a table of the site's own where meter-sync keeps its runs.
    await given(METER_OF_ITS_OWN, 'CREATE TABLE sync_run (x int)');
    const before = await snapshotOf(client);

    // Act + assert
    await expect(migrate()).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringMatching(
        /^migration 2 \(sync_run audit table\) failed, nothing applied: relation "sync_run" already exists/,
      ),
    });
    expect(await snapshotOf(client)).toEqual(before);
  });
});
