/**
 * A site is bound to its tenant (DESIGN §3.11): the first run that commits records it, a run for
 * another tenant fails TENANT_MISMATCH before it writes, and allowTenantChange re-binds on purpose.
 */
import { Client } from 'pg';
import { applySiteMigrations, SITE_MIGRATIONS } from '../../lib/db/site-migrations';
import { performSync } from '../../lib/engine';
import { resetFixture, siteContents } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { createTestDatabase } from '../harness/test-database';

const SEED = { tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 8, registersPerMeter: 2 };

describe('tenant binding', () => {
  let fx: SyncFixture;
  const syncAs = (tenantId: number, options: Parameters<SyncFixture['sync']>[0] = {}) =>
    performSync({ remote: fx.remote.url, site: fx.site.url, tenantId, ...options });
  const bound = async () =>
    (await fx.siteClient.query<{ tenant_id: number }>('SELECT tenant_id FROM meter_sync_site')).rows.map(
      (row) => row.tenant_id,
    );
  const runs = async () =>
    (await fx.siteClient.query<{ n: number }>('SELECT count(*)::int AS n FROM sync_run')).rows[0]!.n;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());
  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SEED);
  });

  it('the first run that commits binds the site to its tenant; a dry run and a plan do not', async () => {
    expect((await syncAs(1, { dryRun: true })).status).toBe('ok');
    expect((await syncAs(1, { changes: { max: 10 } })).status).toBe('ok');
    expect(await bound()).toEqual([]);

    const first = await syncAs(1);

    expect(first.status).toBe('ok');
    expect(first.tenantChange).toBeUndefined();
    expect(await bound()).toEqual([1]);
  });

  it('a run, a dry run or a plan for another tenant fails TENANT_MISMATCH before anything is written', async () => {
    // Arrange: bound to tenant 1, which then edits a meter (so a run would have work to do).
    expect((await syncAs(1)).status).toBe('ok');
    await fx.remoteClient.query(`UPDATE meter SET name = 'edited' WHERE tenant_id = 2`);
    const before = await siteContents(fx.siteClient);

    for (const options of [{}, { dryRun: true }, { changes: { max: 10 } }, { allowMassDelete: true }]) {
      // Act
      const result = await syncAs(2, options);

      // Assert: the run's failure alone, no entity ran, nothing written (not even sync_run).
      expect(result).toMatchObject({
        ok: false,
        status: 'failed',
        tenantId: 2,
        error: { code: 'TENANT_MISMATCH' },
      });
      expect(result.error!.message).toBe(
        'this site is bound to tenant 1, not 2: a run for another tenant would replace its rows; ' +
          'check the tenant id (the site secret, --tenant), or re-bind the site on purpose with allowTenantChange (--allow-tenant-change)',
      );
      expect(result.entities).toEqual([]);
      expect(await siteContents(fx.siteClient)).toEqual(before);
      expect(await bound()).toEqual([1]);
    }
  });

  it('allowTenantChange re-binds the site and says so; the mass-delete guard still stands', async () => {
    // Arrange
    expect((await syncAs(1)).status).toBe('ok');
    const before = await siteContents(fx.siteClient);

    // Act: re-binding replaces every row of tenant 1, which the guard refuses on its own.
    const guarded = await syncAs(2, { allowTenantChange: true });

    // Assert: the entities that would be emptied fail, nothing changes, the binding stays.
    expect(guarded.status).toBe('failed');
    expect(guarded.tenantChange).toBeUndefined();
    expect(guarded.entities.map((e) => e.error?.code)).toEqual([
      'MASS_DELETE_GUARD',
      'MASS_DELETE_GUARD',
      'MASS_DELETE_GUARD',
    ]);
    expect(await bound()).toEqual([1]);
    const unchanged = await siteContents(fx.siteClient);
    expect([unchanged.meter, unchanged.register, unchanged.device_register]).toEqual([
      before.meter,
      before.register,
      before.device_register,
    ]);

    // Act: both, on purpose. A dry run first says what the run will do.
    const dry = await syncAs(2, { allowTenantChange: true, allowMassDelete: true, dryRun: true });
    expect(dry.tenantChange).toEqual({ fromTenantId: 1, toTenantId: 2 });
    expect(await bound()).toEqual([1]);
    const rebound = await syncAs(2, { allowTenantChange: true, allowMassDelete: true });

    // Assert
    expect(rebound).toMatchObject({ status: 'ok', tenantChange: { fromTenantId: 1, toTenantId: 2 } });
    expect(rebound.entities.map((e) => [e.entity, e.inserted, e.deleted])).toEqual([
      ['meter', 5, 5],
      ['register', 8, 8],
      ['device_register', 10, 10],
    ]);
    expect(await bound()).toEqual([2]);
    const tenants = await fx.siteClient.query<{ tenant_id: number }>(
      'SELECT DISTINCT tenant_id FROM meter UNION SELECT DISTINCT tenant_id FROM register',
    );
    expect(tenants.rows.map((row) => row.tenant_id)).toEqual([2]);
    const recorded = await fx.siteClient.query<{ result: { tenantChange?: unknown } }>(
      'SELECT result FROM sync_run ORDER BY id DESC LIMIT 1',
    );
    expect(recorded.rows[0]!.result.tenantChange).toEqual({ fromTenantId: 1, toTenantId: 2 });
    // Bound to 2 now: tenant 1 is the mismatch.
    expect((await syncAs(1)).error?.code).toBe('TENANT_MISMATCH');
    expect((await syncAs(2)).status).toBe('ok');
  });

  it('a run whose every entity failed binds nothing', async () => {
    // Arrange: the site refuses every meter name, so nothing can be written.
    await fx.siteClient.query(`ALTER TABLE meter ADD CONSTRAINT no_meters CHECK (name = 'never')`);
    try {
      // Act
      const result = await syncAs(1, { entities: ['meter'] });

      // Assert
      expect(result.status).toBe('failed');
      expect(await bound()).toEqual([]);
      expect(await runs()).toBe(1);
    } finally {
      await fx.siteClient.query('ALTER TABLE meter DROP CONSTRAINT no_meters');
    }
  });

  it('a site synced before bindings existed is bound to the tenant of its newest successful run', async () => {
    // Arrange: a site at schema version 4 with a history: ok for tenant 3, then a failed run of 4.
    const old = await createTestDatabase('old_site');
    const client = new Client({ connectionString: old.url });
    await client.connect();
    try {
      await applySiteMigrations(
        client,
        SITE_MIGRATIONS.filter((m) => m.version <= 4),
      );
      for (const [tenant, status, at] of [
        [7, 'ok', '2026-01-01'],
        [3, 'ok', '2026-02-01'],
        [4, 'failed', '2026-03-01'],
      ] as const)
        await client.query(
          `INSERT INTO sync_run (tenant_id, status, started_at, duration_ms, inserted, updated, deleted, skipped, failed_entities, result)
           VALUES ($1, $2, $3, 1, 0, 0, 0, 0, '{}', '{}')`,
          [tenant, status, at],
        );

      // Act
      await applySiteMigrations(client);

      // Assert
      const { rows } = await client.query<{ tenant_id: number }>('SELECT tenant_id FROM meter_sync_site');
      expect(rows).toEqual([{ tenant_id: 3 }]);
      const run = await performSync({ remote: fx.remote.url, site: old.url, tenantId: 4 });
      expect(run.error?.code).toBe('TENANT_MISMATCH');
    } finally {
      await client.end();
      await old.drop();
    }
  });
});
