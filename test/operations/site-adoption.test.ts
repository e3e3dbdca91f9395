/**
 * Onboarding a site database that already exists (issue 21), through the operations: the migrate
 * action and a sync that migrates first adopt the entity tables that fit, and the first sync
 * reconciles their rows like any other difference (counted, the mass-delete guard and the tenant
 * binding apply); tables that do not fit, or of several tenants, are refused before anything is
 * written, and `check` says so first; a site that is the remote itself is refused (SITE_IS_REMOTE)
 * however it is reached. Real PostgreSQL, real faults: eight first runs at once, a killed backend.
 */
import { type Client, escapeIdentifier } from 'pg';
import { LocalCredentials, UrlCredentials } from '../../lib/credentials';
import type { Row } from '../../lib/db/rows';
import { LATEST_SITE_SCHEMA_VERSION, type Migration, SITE_MIGRATIONS } from '../../lib/db/site-migrations';
import { performSync } from '../../lib/engine';
import { describeDifference } from '../../lib/errors';
import { checkSite, migrateSite, syncSite } from '../../lib/operations';
import { meterId } from '../../lib/seed/seed-remote';
import { createLoginRole } from '../functions/login-role';
import { snapshotOf } from '../harness/site-catalog';
import {
  contentsDiff,
  entityContents,
  expectedSlice,
  insertTextRows,
  reportedCounts,
} from '../harness/site-contents';
import { METER_SYNC_TABLES } from '../harness/site-schema-tables';
import { createSyncFixture, openTestClient, type SyncFixture } from '../harness/sync-fixture';
import { startTcpProxy } from '../harness/tcp-proxy';
import { terminateSleepingBackend } from '../harness/terminate-sleeping-backend';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

const SITE = 'plant-9';
const ENTITY_TABLES = ['meter', 'register', 'device_register'] as const;
const SITE_SCHEMA_TABLES = METER_SYNC_TABLES.map((t) => `table ${t}`);

/** The meter table the plants' own application made, with a column of the site's own. */
const METER_OF_ITS_OWN = `CREATE TABLE meter (
  id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, serial_number text,
  protocol text NOT NULL, ip_address text, port integer, active boolean NOT NULL, config jsonb,
  updated_at timestamptz NOT NULL, last_polled_at timestamptz)`;
const POLLED = '2024-06-01 12:00:00+00';

describe('onboarding a site database that already exists', () => {
  let fx: SyncFixture;
  let site: TestDatabase;
  let client: Client;
  let slice: Record<string, Row[]>;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 5, registersPerMeter: 2 });
    slice = await expectedSlice(fx.remoteClient, 1);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    site = await createTestDatabase('site_existing');
    client = await openTestClient(site.url);
  });
  afterEach(async () => {
    await client.end();
    await site.drop();
  });

  const source = (siteUrl = site.url, tenantId = 1) =>
    new LocalCredentials({ remote: fx.remote.url, sites: { [SITE]: { url: siteUrl, tenantId } } });
  const sync = (request: { allowMassDelete?: boolean; allowTenantChange?: boolean } = {}, options = {}) =>
    syncSite(source(), { siteId: SITE, ...request }, options);
  const migrate = (request: { allowTenantChange?: boolean } = {}, options = {}) =>
    migrateSite(source(), { siteId: SITE, ...request }, options);
  const given = async (...statements: string[]) => {
    for (const statement of statements) await client.query(statement);
  };

  /** The entity tables exactly as migration 1 makes them, holding the tenant's slice. */
  async function givenIdenticalTables(): Promise<void> {
    await given(SITE_MIGRATIONS[0]!.sql);
    for (const table of ENTITY_TABLES) await insertTextRows(client, table, slice[table]!);
  }

  /** A meter table of the site's own holding `rows` (the tenant's meters by default), each polled once. */
  async function givenMeterOfItsOwn(rows: readonly Row[] = slice.meter!): Promise<void> {
    await given(METER_OF_ITS_OWN);
    await insertTextRows(client, 'meter', rows);
    await given(`UPDATE meter SET last_polled_at = '${POLLED}'`);
  }

  /** The site's meters without the column of its own: what the slice is compared with. */
  const entityColumnsOf = (rows: Row[]) => rows.map(({ last_polled_at: _polled, ...row }) => row);

  it('adopts identical tables holding the tenant slice: the first sync changes nothing', async () => {
    // Arrange
    await givenIdenticalTables();

    // Act
    const result = await sync();

    // Assert
    expect(result).toMatchObject({
      ok: true,
      status: 'ok',
      migration: {
        fromVersion: 0,
        toVersion: LATEST_SITE_SCHEMA_VERSION,
        adopted: ['meter', 'register', 'device_register'],
        added: SITE_SCHEMA_TABLES,
        kept: [
          'meter: its 5 rows, reconciled by the first sync',
          'register: its 5 rows, reconciled by the first sync',
          'device_register: its 10 rows, reconciled by the first sync',
        ],
      },
    });
    expect(
      result.entities.map((e) => [e.entity, e.inserted, e.updated, e.deleted, e.skipped, e.unchanged]),
    ).toEqual([
      ['meter', 0, 0, 0, 0, 5],
      ['register', 0, 0, 0, 0, 5],
      ['device_register', 0, 0, 0, 0, 10],
    ]);
    expect(await entityContents(client)).toEqual(slice);
  });

  it('adopts identical tables with stale rows: the first sync reconciles them, counted exactly', async () => {
    // Arrange: a meter renamed, an association gone, a meter the remote does not have.
    await givenIdenticalTables();
    const [first] = slice.meter!;
    const [association] = slice.device_register!;
    await given(`UPDATE meter SET name = 'Renamed on site' WHERE id = ${first!.id}`);
    await given(
      `DELETE FROM device_register WHERE device_id = ${association!.device_id} AND register_id = ${association!.register_id}`,
    );
    await given(`INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at)
      VALUES (${meterId(1, 900)}, 1, 'Gone from the remote', 'bacnet', true, now())`);
    // The migration is the operation's; the rows are read after it, as the sync will find them.
    expect(await migrate()).toMatchObject({ ok: true, adopted: ['meter', 'register', 'device_register'] });
    const before = await entityContents(client);

    // Act
    const result = await sync();
    const again = await sync();

    // Assert
    const after = await entityContents(client);
    expect(after).toEqual(slice);
    expect(reportedCounts(result)).toEqual(contentsDiff(before, after));
    expect(reportedCounts(result)).toMatchObject({
      meter: { inserted: 0, updated: 1, deleted: 1 },
      device_register: { inserted: 1, updated: 0, deleted: 0 },
    });
    expect(again.entities.map((e) => e.inserted + e.updated + e.deleted)).toEqual([0, 0, 0]);
  });

  it("adopts a meter table of its own: the other tables added and loaded, the site's column kept through updates", async () => {
    // Arrange: the plant's meters as an older process synced them; one renamed since.
    await givenMeterOfItsOwn();
    await given(`UPDATE meter SET name = 'Old name' WHERE id = ${slice.meter![0]!.id}`);

    // Act
    const migrated = await migrate();
    const synced = await sync();

    // Assert
    expect(migrated).toEqual({
      ok: true,
      status: 'ok',
      siteId: SITE,
      action: 'migrate',
      fromVersion: 0,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: SITE_MIGRATIONS.map((m) => `${m.version} ${m.name}`),
      adopted: ['meter'],
      added: [
        'table device_register',
        'table meter_sync_fingerprint',
        'table meter_sync_schema_migrations',
        'table meter_sync_site',
        'table meter_sync_skipped_row',
        'table meter_sync_table_write',
        'table register',
        'table sync_run',
      ],
      kept: [
        "meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync",
        'meter: its 5 rows, reconciled by the first sync',
      ],
      durationMs: expect.any(Number),
    });
    expect(synced.ok).toBe(true);
    expect(synced.entities.map((e) => [e.entity, e.inserted, e.updated, e.deleted, e.unchanged])).toEqual([
      ['meter', 0, 1, 0, 4],
      ['register', 5, 0, 0, 0],
      ['device_register', 10, 0, 0, 0],
    ]);
    const contents = await entityContents(client);
    expect({ ...contents, meter: entityColumnsOf(contents.meter!) }).toEqual(slice);
    expect(contents.meter!.map((m) => m.last_polled_at)).toEqual(slice.meter!.map(() => POLLED));
  });

  it('refuses tables that do not fit before writing anything, listing every difference; check lists them first', async () => {
    // Arrange: a column the sync cannot fill, and a port of another type.
    await given(
      METER_OF_ITS_OWN.replace('port integer', 'port text').replace(
        'last_polled_at timestamptz',
        'last_polled_at timestamptz, site_code text NOT NULL',
      ),
    );
    const before = await snapshotOf(client);

    // Act
    const report = await checkSite(source(), { siteId: SITE });
    const synced = await sync();
    const migrated = await migrate();

    // Assert: the migration's list, in the run's error and the check's line alike.
    const expected = [
      {
        table: 'meter',
        column: 'port',
        site: 'text',
        expected: 'integer',
        problem: 'the site has text, the site schema integer',
      },
      {
        table: 'meter',
        column: 'site_code',
        site: 'text NOT NULL',
        expected: null,
        problem:
          "a column of the site's own, NOT NULL without a default: the sync's inserts would be refused (give it a default, or drop NOT NULL)",
      },
    ];
    expect(migrated).toMatchObject({
      ok: false,
      status: 'failed',
      fromVersion: 0,
      toVersion: 0,
      applied: [],
      adopted: [],
      added: [],
      kept: [],
      conflicts: expected,
      error: { code: 'SITE_SCHEMA_CONFLICT' },
    });
    expect(synced).toMatchObject({
      ok: false,
      status: 'failed',
      entities: [],
      error: { code: 'SITE_SCHEMA_CONFLICT', message: migrated.error!.message },
    });
    expect(synced.migration).toBeUndefined();
    const tables = report.checks.find((c) => c.name === 'site tables')!;
    expect(tables.status).toBe('fail');
    for (const difference of expected) expect(tables.message).toContain(describeDifference(difference));
    expect(tables.message).toContain('[SITE_SCHEMA_CONFLICT]');
    expect(report.ok).toBe(false);
    expect(await snapshotOf(client)).toEqual(before);
  });

  it('check says what a migration would adopt, keep and create, warns of a narrower type, and changes nothing', async () => {
    // Arrange
    await givenMeterOfItsOwn();
    await given('ALTER TABLE meter ALTER COLUMN name TYPE varchar(64)');
    const before = await snapshotOf(client);

    // Act
    const report = await checkSite(source(), { siteId: SITE });

    // Assert
    expect(report.checks.find((c) => c.name === 'site tables')).toEqual({
      name: 'site tables',
      status: 'warn',
      message:
        "adopts meter; keeps meter.name: character varying(64) for text (a value longer than 64 characters is refused); keeps meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync; keeps meter: its 5 rows, reconciled by the first sync; creates register, device_register",
      hint: 'a site column of a narrower type refuses the rows that do not fit it (SITE_REJECTED_ROW): widen it to take every value',
    });
    expect(await snapshotOf(client)).toEqual(before);
  });

  it('applies the mass-delete guard in the first sync: adopted rows the remote lacks are not all deleted unless allowed', async () => {
    // Arrange: three meters of the tenant that the remote does not have (a decommissioned plant's?).
    const strangers = [901, 902, 903].map((n) => ({ ...slice.meter![0]!, id: String(meterId(1, n)) }));
    await givenMeterOfItsOwn(strangers);

    // Act
    const guarded = await sync();
    const meters = (await entityContents(client)).meter!.length;
    const allowed = await sync({ allowMassDelete: true });

    // Assert
    expect(guarded.migration).toMatchObject({ adopted: ['meter'] });
    expect(guarded.status).toBe('partial');
    expect(guarded.entities[0]).toMatchObject({
      entity: 'meter',
      status: 'failed',
      error: { code: 'MASS_DELETE_GUARD' },
    });
    expect(meters).toBe(3);
    expect(allowed).toMatchObject({ ok: true });
    expect(allowed.entities[0]).toMatchObject({ entity: 'meter', inserted: 5, deleted: 3 });
    const contents = await entityContents(client);
    expect({ ...contents, meter: entityColumnsOf(contents.meter!) }).toEqual(slice);
  });

  it("refuses tables of several tenants unless allowTenantChange keeps the run's tenant, and binds the site to it", async () => {
    // Arrange: the meters of tenants 1 and 2 (a copy of the remote?).
    const tenant2 = (await expectedSlice(fx.remoteClient, 2)).meter!;
    await givenMeterOfItsOwn([...slice.meter!, ...tenant2]);
    const before = await snapshotOf(client);

    // Act
    const report = await checkSite(source(), { siteId: SITE });
    const refused = await sync();
    const unchanged = await snapshotOf(client);
    const kept = await sync({ allowTenantChange: true });

    // Assert
    expect(report.checks.find((c) => c.name === 'site tables')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('(meter: tenants 1, 2) [SITE_MIXED_TENANTS]'),
    });
    expect(refused).toMatchObject({ ok: false, entities: [], error: { code: 'SITE_MIXED_TENANTS' } });
    expect(refused.error!.message).toMatch(
      /^the site's tables hold rows of more than one tenant \(meter: tenants 1, 2\)/,
    );
    expect(unchanged).toEqual(before);
    expect(kept).toMatchObject({ ok: true, migration: { adopted: ['meter'] } });
    expect(kept.entities[0]).toMatchObject({ entity: 'meter', deleted: 5, unchanged: 5 });
    const contents = await entityContents(client);
    expect({ ...contents, meter: entityColumnsOf(contents.meter!) }).toEqual(slice);
    expect((await client.query('SELECT tenant_id FROM meter_sync_site')).rows).toEqual([{ tenant_id: 1 }]);
  });

  it('adopts an existing database once when eight first runs start at once', async () => {
    // Arrange
    await givenMeterOfItsOwn();

    // Act
    const results = await Promise.all(Array.from({ length: 8 }, () => sync()));

    // Assert
    expect(results.map((r) => r.status).filter((s) => s !== 'ok' && s !== 'locked')).toEqual([]);
    const migrations = results.filter((r) => r.migration !== undefined);
    expect(migrations).toHaveLength(1);
    expect(migrations[0]!.migration!.adopted).toEqual(['meter']);
    const { rows: versions } = await client.query(
      'SELECT version FROM meter_sync_schema_migrations ORDER BY 1',
    );
    expect(versions.map((v) => v.version)).toEqual(SITE_MIGRATIONS.map((m) => m.version));
    const contents = await entityContents(client);
    expect({ ...contents, meter: entityColumnsOf(contents.meter!) }).toEqual(slice);
    expect(contents.meter!.map((m) => m.last_polled_at)).toEqual(slice.meter!.map(() => POLLED));
  });

  it('a migration killed mid-adoption leaves the database as it was; the next run adopts it', async () => {
    // Arrange: the adoption done, then a wait in the last migration to be killed in.
    await givenMeterOfItsOwn();
    const latest = SITE_MIGRATIONS[SITE_MIGRATIONS.length - 1]!;
    const slow: Migration[] = [
      ...SITE_MIGRATIONS.slice(0, -1),
      { ...latest, sql: `${latest.sql}; SELECT pg_sleep(30);` },
    ];
    const before = await snapshotOf(client);
    const killer = await terminateSleepingBackend(site.url);

    // Act
    const killed = await sync({}, { migrations: slow });
    expect(await killer.killed).toBe(true);
    await killer.close();
    const after = await snapshotOf(client);
    const next = await sync();

    // Assert
    expect(killed).toMatchObject({ ok: false, status: 'failed', error: { code: 'CONNECTION_LOST' } });
    expect(after).toEqual(before);
    expect(next).toMatchObject({ ok: true, migration: { adopted: ['meter'] } });
  });

  describe('a site that is the remote database', () => {
    const urlOf = (url: string, change: (u: URL) => void) => {
      const parsed = new URL(url);
      change(parsed);
      return parsed.toString();
    };

    it('is refused by migrate and sync, by its own URL, another host name and through a TCP proxy, the remote unchanged', async () => {
      // Arrange
      const remote = new URL(fx.remote.url);
      const proxy = await startTcpProxy(remote.hostname, Number(remote.port));
      const ways = {
        direct: fx.remote.url,
        'another host name': urlOf(fx.remote.url, (u) => {
          u.hostname = u.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
        }),
        'a TCP proxy': proxy.via(fx.remote.url),
      };
      const before = await snapshotOf(fx.remoteClient);
      try {
        for (const [way, url] of Object.entries(ways)) {
          // Act
          const migrated = await migrateSite(
            new UrlCredentials({ site: url, remote: fx.remote.url, tenantId: 1 }),
            {
              allowTenantChange: true,
            },
          );
          const synced = await syncSite(source(url), {
            siteId: SITE,
            allowTenantChange: true,
            allowMassDelete: true,
          });

          // Assert
          expect([way, migrated]).toEqual([
            way,
            expect.objectContaining({
              ok: false,
              status: 'failed',
              error: expect.objectContaining({ code: 'SITE_IS_REMOTE' }),
            }),
          ]);
          expect(migrated.error!.message).toMatch(
            new RegExp(
              `^the site database is the remote database \\(database "${fx.remote.name}", the same database oid \\d+ of a server of system identifier \\d+\\), so nothing was done`,
            ),
          );
          expect([way, synced]).toEqual([
            way,
            expect.objectContaining({
              ok: false,
              entities: [],
              error: expect.objectContaining({ code: 'SITE_IS_REMOTE' }),
            }),
          ]);
        }
        expect(proxy.accepted).toBeGreaterThan(0);
        expect(await snapshotOf(fx.remoteClient)).toEqual(before);
      } finally {
        await proxy.close();
      }
    });

    it('is refused by a sync of a migrated site both secrets point at, before it writes', async () => {
      // Arrange: the fixture's migrated site, named as the remote too.
      const before = await snapshotOf(fx.siteClient);
      const same = new LocalCredentials({
        remote: fx.site.url,
        sites: { [SITE]: { url: fx.site.url, tenantId: 1 } },
      });

      // Act
      const direct = await performSync({ remote: fx.site.url, site: fx.site.url, tenantId: 1 });
      const synced = await syncSite(same, { siteId: SITE });

      // Assert
      for (const result of [direct, synced])
        expect(result).toMatchObject({
          ok: false,
          status: 'failed',
          entities: [],
          error: { code: 'SITE_IS_REMOTE' },
        });
      expect(await snapshotOf(fx.siteClient)).toEqual(before);
    });

    it('is told by the server start time where the roles may not read the system identifier', async () => {
      // Arrange: pg_control_system() out of reach of a role that is not a superuser, in the remote's database.
      const role = await createLoginRole([fx.remote.name]);
      await fx.remoteClient.query('REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC');
      try {
        const asRole = urlOf(fx.remote.url, (u) => {
          u.username = role.name;
          u.password = role.password;
        });

        // Act
        const migrated = await migrateSite(new UrlCredentials({ site: asRole, remote: asRole }), {});

        // Assert
        expect(migrated.error).toMatchObject({
          code: 'SITE_IS_REMOTE',
          message: expect.stringContaining('of a server started at the same instant'),
        });
      } finally {
        await fx.remoteClient.query('GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC');
        await fx.remoteClient.query(`DROP OWNED BY ${escapeIdentifier(role.name)}`);
        await role.drop();
      }
    });

    it('is not another database of the same server: check says which it is', async () => {
      const report = await checkSite(source(), { siteId: SITE });
      expect(report.checks.find((c) => c.name === 'site identity')).toEqual({
        name: 'site identity',
        status: 'ok',
        message: `the site is database ${site.name} of the remote's server, not the remote's database ${fx.remote.name}`,
      });
      const remoteAsSite = await checkSite(source(fx.remote.url), { siteId: SITE });
      expect(remoteAsSite.checks.find((c) => c.name === 'site identity')).toMatchObject({
        status: 'fail',
        message: expect.stringMatching(
          /^the site database is the remote database \(database .*\) \[SITE_IS_REMOTE\]/,
        ),
      });
    });
  });
});
