/** performSync over the three shipped entities: full cycles, idempotence, tenant isolation, FK-safe deletes, dry run. */
import { meterId, registerId } from '../../lib/seed/seed-remote';
import {
  comparable,
  contentsDiff,
  countRows,
  entity,
  expectedSlice,
  insertTextRows,
  reportedCounts,
  resetFixture,
  siteContents,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 30, registersPerTenant: 40, registersPerMeter: 3 };

describe('performSync over meter, register and device_register', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SEED);
  });

  /** A run right after a successful one writes nothing and finds every row of the slice unchanged. */
  async function expectIdempotent(skipped = 0): Promise<void> {
    const before = await siteContents(fx.siteClient);
    const versionsBefore = await rowVersions();
    const again = await fx.sync();
    expect(again.status).toBe('ok');
    const slice = await expectedSlice(fx.remoteClient, 1);
    expect(countRows(again)).toEqual([
      ['meter', 0, 0, 0, 0, slice.meter!.length],
      ['register', 0, 0, 0, 0, slice.register!.length],
      ['device_register', 0, 0, 0, skipped, slice.device_register!.length],
    ]);
    const after = await siteContents(fx.siteClient);
    expect({ ...after, sync_run_count: [] }).toEqual({ ...before, sync_run_count: [] });
    // Not a single row version was written: an unchanged row is not rewritten.
    expect(await rowVersions()).toEqual(versionsBefore);
  }

  /** The transaction that wrote each row's current version, per table. */
  async function rowVersions(): Promise<unknown> {
    const { rows } = await fx.siteClient.query(
      `SELECT (SELECT array_agg(xmin::text ORDER BY id) FROM meter) AS meter,
              (SELECT array_agg(xmin::text ORDER BY id) FROM register) AS register,
              (SELECT array_agg(xmin::text ORDER BY device_id, register_id) FROM device_register) AS device_register`,
    );
    return rows[0];
  }

  it('loads an empty site with exactly the tenant slice, then a second run changes nothing', async () => {
    // Act
    const first = await fx.sync({ siteId: 'site-a' });

    // Assert
    expect(first).toMatchObject({ ok: true, status: 'ok', siteId: 'site-a', tenantId: 1, dryRun: false });
    expect(countRows(first)).toEqual([
      ['meter', 30, 0, 0, 0, 0],
      ['register', 40, 0, 0, 0, 0],
      ['device_register', 90, 0, 0, 0, 0],
    ]);
    expect(first.entities.map((e) => [e.status, e.remoteRows])).toEqual([
      ['ok', 30],
      ['ok', 40],
      ['ok', 90],
    ]);
    const site = await siteContents(fx.siteClient);
    const { sync_run_count: _runs, ...tables } = site;
    expect(tables).toEqual(await expectedSlice(fx.remoteClient, 1));
    await expectIdempotent();
  });

  it('converges a divergent site: extra, changed, missing and other-tenant rows with colliding keys', async () => {
    // Arrange: a synced site, then diverge it behind the engine's back.
    await fx.sync();
    const s = fx.siteClient;
    await s.query(`UPDATE meter SET name = 'renamed on site' WHERE id = $1`, [meterId(1, 1)]);
    await s.query(`UPDATE meter SET config = '{"unitId": 999}' WHERE id = $1`, [meterId(1, 2)]);
    // A row of another tenant whose key collides with one of the slice's keys: it becomes the slice's row.
    await s.query(`UPDATE meter SET tenant_id = 2, name = 'tenant 2 meter' WHERE id = $1`, [meterId(1, 5)]);
    await s.query('UPDATE register SET scale = scale + 0.000001 WHERE id = $1', [registerId(1, 3)]);
    await s.query(
      'UPDATE device_register SET poll_interval_s = poll_interval_s + 1 WHERE device_id = $1 AND register_id = $2',
      [meterId(1, 1), registerId(1, 5)],
    );
    // Missing on the site: meter 4 and its three associations.
    await s.query('DELETE FROM device_register WHERE device_id = $1', [meterId(1, 4)]);
    await s.query('DELETE FROM meter WHERE id = $1', [meterId(1, 4)]);
    // Extra on the site: a tenant-1 meter and register the remote does not have, and tenant-2 rows.
    await insertTextRows(s, 'meter', [
      meterRow(meterId(1, 999), 1, 'gone from the remote'),
      meterRow(meterId(2, 1), 2, 'tenant 2'),
    ]);
    await insertTextRows(s, 'register', [
      registerRow(registerId(1, 999), 1),
      registerRow(registerId(2, 1), 2),
    ]);
    await insertTextRows(s, 'device_register', [
      {
        device_id: String(meterId(1, 999)),
        register_id: String(registerId(1, 1)),
        poll_interval_s: '5',
        enabled: 't',
      },
      {
        device_id: String(meterId(1, 999)),
        register_id: String(registerId(1, 2)),
        poll_interval_s: '5',
        enabled: 't',
      },
      {
        device_id: String(meterId(1, 6)),
        register_id: String(registerId(2, 1)),
        poll_interval_s: '5',
        enabled: 't',
      },
      {
        device_id: String(meterId(2, 1)),
        register_id: String(registerId(1, 1)),
        poll_interval_s: '5',
        enabled: 'f',
      },
    ]);
    const before = await siteContents(s);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 1, 3, 2, 0, 26],
      ['register', 0, 1, 2, 0, 39],
      ['device_register', 3, 1, 4, 0, 86],
    ]);
    const after = await siteContents(s);
    expect(reportedCounts(result)).toEqual(contentsDiff(before, after));
    const { sync_run_count: _runs, ...tables } = after;
    expect(tables).toEqual(await expectedSlice(fx.remoteClient, 1));
    await expectIdempotent();
  });

  it('deletes the site rows of other tenants, counts them, and never brings another tenant in', async () => {
    // Arrange: the tenant-1 slice plus a few tenant-2 rows copied from the remote.
    await fx.sync();
    const other = await fx.rows('remote', 'meter WHERE tenant_id = 2', 'id LIMIT 5');
    const otherRegisters = await fx.rows('remote', 'register WHERE tenant_id = 2', 'id LIMIT 5');
    await insertTextRows(fx.siteClient, 'meter', other);
    await insertTextRows(fx.siteClient, 'register', otherRegisters);
    const otherAssociations = await fx.rows(
      'remote',
      `device_register WHERE device_id <= ${meterId(2, 5)} AND device_id >= ${meterId(2, 1)}
         AND register_id <= ${registerId(2, 5)} AND register_id >= ${registerId(2, 1)}`,
      'device_id, register_id',
    );
    expect(otherAssociations.length).toBeGreaterThan(0);
    await insertTextRows(fx.siteClient, 'device_register', otherAssociations);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 5, 0, 30],
      ['register', 0, 0, 5, 0, 40],
      ['device_register', 0, 0, otherAssociations.length, 0, 90],
    ]);
    const { rows } = await fx.siteClient.query(
      `SELECT (SELECT count(*) FROM meter WHERE tenant_id <> 1) AS meters,
              (SELECT count(*) FROM register WHERE tenant_id <> 1) AS registers,
              (SELECT count(*) FROM device_register WHERE device_id >= $1) AS associations`,
      [meterId(2, 0)],
    );
    expect(rows[0]).toEqual({ meters: '0', registers: '0', associations: '0' });
  });

  it('deletes a meter and a register that have associations, with the site foreign keys in place', async () => {
    // Arrange: the remote loses meter 7 (and its associations) and register 10 (its associations stay, orphaned).
    await fx.sync();
    await fx.remoteClient.query('DELETE FROM device_register WHERE device_id = $1', [meterId(1, 7)]);
    await fx.remoteClient.query('DELETE FROM meter WHERE id = $1', [meterId(1, 7)]);
    await fx.remoteClient.query('DELETE FROM register WHERE id = $1', [registerId(1, 10)]);
    const orphans = await fx.rows(
      'remote',
      `device_register WHERE register_id = ${registerId(1, 10)}`,
      'device_id',
    );
    expect(orphans.length).toBeGreaterThan(0);
    const { rows: fks } = await fx.siteClient.query(
      `SELECT count(*)::int AS fks FROM pg_constraint WHERE conrelid = 'device_register'::regclass AND contype = 'f'`,
    );
    expect(fks[0].fks).toBe(2);

    // Act
    const result = await fx.sync();

    // Assert: the associations go first and are counted; the orphans are skipped, not applied.
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 1, 0, 29],
      ['register', 0, 0, 1, 0, 39],
      ['device_register', 0, 0, 3 + orphans.length, orphans.length, 87 - orphans.length],
    ]);
    expect(entity(result, 'device_register').skippedKeys).toEqual(
      orphans.slice(0, 5).map((o) => `device_id=${o.device_id}, register_id=${o.register_id}`),
    );
    const { sync_run_count: _runs, ...tables } = await siteContents(fx.siteClient);
    expect(tables).toEqual(await expectedSlice(fx.remoteClient, 1));
    await expectIdempotent(orphans.length);
  });

  it('counts composite-key updates of poll_interval_s and enabled', async () => {
    // Arrange
    await fx.sync();
    const [a, b, c] = await fx.rows(
      'remote',
      `device_register WHERE device_id = ${meterId(1, 3)}`,
      'register_id',
    );
    await fx.remoteClient.query(
      'UPDATE device_register SET poll_interval_s = 3600 WHERE device_id = $1 AND register_id = ANY($2::bigint[])',
      [meterId(1, 3), [a!.register_id, b!.register_id]],
    );
    await fx.remoteClient.query(
      'UPDATE device_register SET enabled = NOT enabled WHERE device_id = $1 AND register_id = $2',
      [meterId(1, 3), c!.register_id],
    );
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 0, 0, 30],
      ['register', 0, 0, 0, 0, 40],
      ['device_register', 0, 3, 0, 0, 87],
    ]);
    const after = await siteContents(fx.siteClient);
    expect(reportedCounts(result)).toEqual(contentsDiff(before, after));
    expect(after.device_register).toEqual((await expectedSlice(fx.remoteClient, 1)).device_register);
  });

  it('a dry run returns the counts of the real run that follows and writes nothing, not even sync_run', async () => {
    // Arrange: a synced site, then inserts, updates, deletes and an orphan association on the remote.
    await fx.sync();
    await fx.remoteClient.query(
      `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at)
       VALUES ($1, 1, 'new meter', 'mbus', true, '2025-01-01 00:00:00.000001+00')`,
      [meterId(1, 500)],
    );
    await fx.remoteClient.query(
      `INSERT INTO device_register VALUES ($1, $2, 60, true), ($1, $3, 60, true), ($4, $2, 60, true)`,
      [meterId(1, 500), registerId(1, 1), registerId(1, 404), meterId(1, 2)],
    );
    await fx.remoteClient.query(`UPDATE register SET unit = 'MWh' WHERE id = $1`, [registerId(1, 2)]);
    await fx.remoteClient.query('DELETE FROM meter WHERE id = $1', [meterId(1, 9)]);
    await fx.remoteClient.query('DELETE FROM register WHERE id = $1', [registerId(1, 40)]);
    const before = await siteContents(fx.siteClient);
    expect(before.sync_run_count).toEqual([{ runs: '1' }]);

    // Act
    const dry = await fx.sync({ dryRun: true });
    const untouched = await siteContents(fx.siteClient);
    const real = await fx.sync();

    // Assert
    expect(dry.dryRun).toBe(true);
    expect(real.dryRun).toBe(false);
    expect(untouched).toEqual(before);
    expect(comparable(dry)).toEqual(comparable(real));
    const after = await siteContents(fx.siteClient);
    expect(after.sync_run_count).toEqual([{ runs: '2' }]);
    expect(reportedCounts(dry)).toEqual(contentsDiff(before, after));
    expect(entity(dry, 'meter')).toMatchObject({ inserted: 1, deleted: 1 });
    expect(entity(dry, 'register')).toMatchObject({ updated: 1, deleted: 1 });
    const { rows: orphans } = await fx.remoteClient.query(
      `SELECT count(*)::int AS n FROM device_register dr JOIN meter m ON m.id = dr.device_id AND m.tenant_id = 1
       WHERE NOT EXISTS (SELECT 1 FROM register r WHERE r.id = dr.register_id AND r.tenant_id = 1)`,
    );
    expect(orphans[0].n).toBeGreaterThanOrEqual(1);
    expect(entity(dry, 'device_register')).toMatchObject({ inserted: 2, skipped: orphans[0].n });
    const { rows } = await fx.siteClient.query(
      'SELECT status, inserted, updated, deleted, skipped, failed_entities, result FROM sync_run ORDER BY id DESC LIMIT 1',
    );
    const totals = real.entities.reduce(
      (sum, e) => ({
        inserted: sum.inserted + e.inserted,
        updated: sum.updated + e.updated,
        deleted: sum.deleted + e.deleted,
        skipped: sum.skipped + e.skipped,
      }),
      { inserted: 0, updated: 0, deleted: 0, skipped: 0 },
    );
    expect(rows[0]).toMatchObject({
      status: 'ok',
      inserted: String(totals.inserted),
      updated: String(totals.updated),
      deleted: String(totals.deleted),
      skipped: String(totals.skipped),
      failed_entities: [],
    });
    expect(rows[0].result.entities).toEqual(real.entities);
  });
});

function meterRow(id: number, tenant: number, name: string) {
  return {
    id: String(id),
    tenant_id: String(tenant),
    name,
    protocol: 'mbus',
    active: 't',
    updated_at: '2024-06-01 00:00:00+00',
  };
}

function registerRow(id: number, tenant: number) {
  return {
    id: String(id),
    tenant_id: String(tenant),
    name: 'extra register',
    address: '1',
    data_type: 'uint16',
    scale: '1.000000',
    updated_at: '2024-06-01 00:00:00+00',
  };
}
