/**
 * Site schema migrations by the operations (issue 13 §1): a sync brings an out-of-date site up to
 * date first (SITE_MIGRATIONS=auto), under the site lock and in a transaction of its own; the
 * migrate action does it alone. Real PostgreSQL, real faults: concurrent runs, a killed backend, a
 * statement timeout, an object in the way, a schema newer than the build.
 */
import { Client } from 'pg';
import { LocalCredentials } from '../../lib/credentials';
import { SITE_LOCK_KEY } from '../../lib/db/site-database';
import {
  LATEST_SITE_SCHEMA_VERSION,
  type Migration,
  SITE_MIGRATIONS,
  siteSchemaVersion,
} from '../../lib/db/site-migrations';
import { migrateSite, syncSite } from '../../lib/operations';
import { holdLock } from '../harness/hold-lock';
import { expectedSlice, siteContents } from '../harness/site-contents';
import { ADDED_TO_AN_EMPTY_SITE } from '../harness/site-schema-tables';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { terminateSleepingBackend } from '../harness/terminate-sleeping-backend';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

const SITE = 'plant-7';

describe('site schema migrations by the operations', () => {
  let fx: SyncFixture;
  let site: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 5, registersPerMeter: 2 });
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    site = await createTestDatabase('site_new');
    client = new Client({ connectionString: site.url });
    await client.connect();
  });
  afterEach(async () => {
    await client.end();
    await site.drop();
  });

  const source = () =>
    new LocalCredentials({ remote: fx.remote.url, sites: { [SITE]: { url: site.url, tenantId: 1 } } });
  const sync = (options = {}) => syncSite(source(), { siteId: SITE }, options);
  const tables = async () =>
    (
      await client.query<{ name: string }>(
        `SELECT relname AS name FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
  const appliedVersions = async () =>
    (
      await client.query<{ version: number }>(
        'SELECT version FROM meter_sync_schema_migrations ORDER BY version',
      )
    ).rows.map((r) => r.version);

  it('onboards a brand-new empty site by its first run: migrated, then fully loaded', async () => {
    // Act
    const first = await sync();
    const second = await sync();

    // Assert
    expect(first).toMatchObject({
      ok: true,
      status: 'ok',
      siteId: SITE,
      migration: { fromVersion: 0, toVersion: LATEST_SITE_SCHEMA_VERSION },
    });
    expect(first.entities.map((e) => [e.entity, e.inserted])).toEqual([
      ['meter', 5],
      ['register', 5],
      ['device_register', 10],
    ]);
    const { sync_run_count: _runs, ...contents } = await siteContents(client);
    expect(contents).toEqual(await expectedSlice(fx.remoteClient, 1));
    expect(second.migration).toBeUndefined();
    expect(second.entities.map((e) => e.inserted + e.updated + e.deleted)).toEqual([0, 0, 0]);
  });

  it('upgrades a site one version behind, and says so', async () => {
    // Arrange: a site synced by the build before (one schema version behind).
    const previous = SITE_MIGRATIONS.slice(0, -1);
    const before = LATEST_SITE_SCHEMA_VERSION - 1;
    expect((await migrateSite(source(), { siteId: SITE }, { migrations: previous })).toVersion).toBe(before);
    expect((await sync({ siteMigrations: 'manual' })).error?.code).toBe('SITE_NOT_MIGRATED');

    // Act
    const result = await sync();

    // Assert
    expect(result).toMatchObject({
      ok: true,
      migration: { fromVersion: before, toVersion: LATEST_SITE_SCHEMA_VERSION },
    });
    expect(await appliedVersions()).toEqual(SITE_MIGRATIONS.map((m) => m.version));
  });

  it('with SITE_MIGRATIONS=manual, fails SITE_NOT_MIGRATED and creates nothing; the migrate action then does it', async () => {
    // Act
    const refused = await sync({ siteMigrations: 'manual' });
    const before = await tables();
    const migrated = await migrateSite(source(), { siteId: SITE });
    const again = await migrateSite(source(), { siteId: SITE });
    const synced = await sync({ siteMigrations: 'manual' });

    // Assert
    expect(refused).toMatchObject({ ok: false, status: 'failed', error: { code: 'SITE_NOT_MIGRATED' } });
    expect(refused.migration).toBeUndefined();
    expect(before).toEqual([]);
    expect(migrated).toEqual({
      ok: true,
      status: 'ok',
      siteId: SITE,
      action: 'migrate',
      fromVersion: 0,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: SITE_MIGRATIONS.map((m) => `${m.version} ${m.name}`),
      adopted: [],
      added: ADDED_TO_AN_EMPTY_SITE,
      kept: [],
      durationMs: expect.any(Number),
    });
    expect(again).toMatchObject({
      ok: true,
      fromVersion: LATEST_SITE_SCHEMA_VERSION,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: [],
    });
    expect(synced.ok).toBe(true);
  });

  it('a dry run migrates nothing: it writes nothing', async () => {
    // Act
    const dry = await syncSite(source(), { siteId: SITE, dryRun: true });

    // Assert
    expect(dry).toMatchObject({ ok: false, error: { code: 'SITE_NOT_MIGRATED' } });
    expect(dry.migration).toBeUndefined();
    expect(await tables()).toEqual([]);
  });

  it('refuses a site whose schema is newer than the build (a rollback deploy), touching nothing', async () => {
    // Arrange: a newer build migrated the site one version further.
    const future = LATEST_SITE_SCHEMA_VERSION + 1;
    const newer: Migration[] = [
      ...SITE_MIGRATIONS,
      { version: future, name: 'from the future', sql: 'CREATE TABLE future (x int)' },
    ];
    await migrateSite(source(), { siteId: SITE }, { migrations: newer });
    const before = await siteContents(client);

    // Act
    const synced = await sync();
    const migrated = await migrateSite(source(), { siteId: SITE });

    // Assert
    expect(synced).toMatchObject({ ok: false, status: 'failed', error: { code: 'SITE_SCHEMA_NEWER' } });
    expect(synced.error!.message).toContain(
      `version ${future}, newer than the ${LATEST_SITE_SCHEMA_VERSION} this build knows`,
    );
    expect(migrated).toMatchObject({
      ok: false,
      status: 'failed',
      fromVersion: future,
      toVersion: future,
      error: { code: 'SITE_SCHEMA_NEWER' },
    });
    expect(await siteContents(client)).toEqual(before);
  });

  it('eight concurrent runs on one empty site: one migrates, nothing is applied twice, every run ends ok or locked', async () => {
    // Act
    const results = await Promise.all(Array.from({ length: 8 }, () => sync()));

    // Assert
    expect(results.map((r) => r.status).filter((s) => s !== 'ok' && s !== 'locked')).toEqual([]);
    expect(results.filter((r) => r.migration !== undefined)).toHaveLength(1);
    expect(results.some((r) => r.status === 'ok')).toBe(true);
    expect(await appliedVersions()).toEqual(SITE_MIGRATIONS.map((m) => m.version));
    const { sync_run_count: _runs, ...contents } = await siteContents(client);
    expect(contents).toEqual(await expectedSlice(fx.remoteClient, 1));
  });

  describe('a migration stopped half way leaves the schema at its old version; the next run completes it', () => {
    // The upgrade to the latest version, made slow: its real statements, then a wait to be stopped in.
    const latest = SITE_MIGRATIONS[SITE_MIGRATIONS.length - 1]!;
    const slow = (seconds: number): Migration[] => [
      ...SITE_MIGRATIONS.slice(0, -1),
      { ...latest, sql: `${latest.sql}; SELECT pg_sleep(${seconds});` },
    ];

    beforeEach(async () => {
      const previous = SITE_MIGRATIONS.slice(0, -1);
      expect((await migrateSite(source(), { siteId: SITE }, { migrations: previous })).toVersion).toBe(
        latest.version - 1,
      );
    });

    async function expectAtPreviousVersion(): Promise<void> {
      expect(await siteSchemaVersion(client)).toBe(latest.version - 1);
      expect(await appliedVersions()).toEqual(SITE_MIGRATIONS.slice(0, -1).map((m) => m.version));
      const { rows } = await client.query(
        // The column the latest migration adds.
        `SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('meter_sync_fingerprint') AND attname = 'remote_horizon'`,
      );
      expect(rows).toEqual([]);
    }

    async function expectCompletedByNextRun(): Promise<void> {
      const next = await sync();
      expect(next).toMatchObject({
        ok: true,
        migration: { fromVersion: latest.version - 1, toVersion: latest.version },
      });
      expect(await appliedVersions()).toEqual(SITE_MIGRATIONS.map((m) => m.version));
    }

    it('when its backend is terminated', async () => {
      // Arrange: kill the migrating backend once it waits.
      const killer = await terminateSleepingBackend(site.url);

      // Act
      const result = await sync({ migrations: slow(30) });
      expect(await killer.killed).toBe(true);
      await killer.close();

      // Assert
      expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'CONNECTION_LOST' } });
      expect(result.migration).toBeUndefined();
      await expectAtPreviousVersion();
      await expectCompletedByNextRun();
    });

    it('when it runs past the statement timeout', async () => {
      // Act
      const result = await sync({ migrations: slow(5), connectOptions: { statementTimeoutMs: 300 } });

      // Assert
      expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'MIGRATION_FAILED' } });
      expect(result.error!.message).toMatch(
        new RegExp(
          `^migration ${latest.version} \\(${latest.name}\\) failed, nothing applied: canceling statement due to statement timeout`,
        ),
      );
      expect(result.entities.every((e) => e.error?.code === 'MIGRATION_FAILED')).toBe(true);
      await expectAtPreviousVersion();
      await expectCompletedByNextRun();
    });
  });

  it('a migration the site refuses (an object in the way) fails the run with MIGRATION_FAILED naming it, rolled back', async () => {
    // Arrange: the site already has a `sync_run` table of its own (an entity table would be adopted).
    await client.query('CREATE TABLE sync_run (code text PRIMARY KEY)');

    // Act
    const result = await sync();

    // Assert
    expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'MIGRATION_FAILED' } });
    expect(result.error!.message).toMatch(
      /^migration 2 \(sync_run audit table\) failed, nothing applied: relation "sync_run" already exists/,
    );
    expect(result.migration).toBeUndefined();
    expect(await tables()).toEqual(['sync_run']);
  });

  it('an entity table of its own that does not fit fails the run with SITE_SCHEMA_CONFLICT, nothing created', async () => {
    // Arrange: the site already has a `register` table of its own, keyed on another column.
    await client.query('CREATE TABLE register (code text PRIMARY KEY)');

    // Act
    const result = await sync();

    // Assert
    expect(result).toMatchObject({
      ok: false,
      status: 'failed',
      entities: [],
      error: { code: 'SITE_SCHEMA_CONFLICT' },
    });
    expect(result.error!.message).toContain('register.id: missing (the site schema has bigint NOT NULL)');
    expect(result.migration).toBeUndefined();
    expect(await tables()).toEqual(['register']);
  });

  it('the migrate action finds the site locked while a run holds it', async () => {
    const lock = await holdLock(site.url, `SELECT pg_advisory_lock(${SITE_LOCK_KEY})`);
    try {
      const result = await migrateSite(source(), { siteId: SITE });
      expect(result).toMatchObject({
        ok: false,
        status: 'locked',
        fromVersion: 0,
        toVersion: 0,
        applied: [],
        error: { code: 'SITE_LOCKED' },
      });
      const synced = await sync();
      expect(synced).toMatchObject({ status: 'locked', error: { code: 'SITE_LOCKED' } });
    } finally {
      await lock.release();
    }
    expect(await tables()).toEqual([]);
  });
});
