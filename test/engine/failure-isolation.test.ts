/**
 * Failure isolation (DESIGN §3.6): an entity the site rejects is rolled back alone and reported,
 * the others commit, and its children run against the rows the site really has.
 */
import { meterId, registerId } from '../../lib/seed/seed-remote';
import {
  contentsDiff,
  countRows,
  entity,
  reportedCounts,
  resetFixture,
  siteContents,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 10, registersPerTenant: 12, registersPerMeter: 2 };

describe('failure isolation: one entity rejected by the site', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await fx.siteClient.query('ALTER TABLE meter DROP CONSTRAINT IF EXISTS site_only_check');
    await fx.siteClient.query('ALTER TABLE register DROP CONSTRAINT IF EXISTS site_only_check');
    await fx.siteClient.query('ALTER TABLE device_register DROP CONSTRAINT IF EXISTS site_only_check');
    await resetFixture(fx);
    await fx.seed(SEED);
    expect((await fx.sync()).status).toBe('ok');
  });

  /** Associations of `register` on the remote, as `[device_id, register_id]`. */
  async function associationsOf(register: number): Promise<string[][]> {
    const rows = await fx.rows('remote', `device_register WHERE register_id = ${register}`, 'device_id');
    return rows.map((r) => [r.device_id!, r.register_id!]);
  }

  it('rolls back a rejected register alone; meter and device_register commit against the site registers', async () => {
    // Arrange: a CHECK only the site has, which one remote register breaks.
    await fx.siteClient.query('ALTER TABLE register ADD CONSTRAINT site_only_check CHECK (address < 40000)');
    const r = fx.remoteClient;
    await r.query('UPDATE register SET address = 45000 WHERE id = $1', [registerId(1, 1)]);
    await r.query(`UPDATE register SET unit = 'MWh' WHERE id = $1`, [registerId(1, 2)]);
    // A new register with an association: the register is rolled back, so the association has no parent.
    await r.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, scale, updated_at)
       VALUES ($1, 1, 'new', 30500, 'uint16', 1, now())`,
      [registerId(1, 13)],
    );
    await r.query('INSERT INTO device_register VALUES ($1, $2, 15, true)', [
      meterId(1, 1),
      registerId(1, 13),
    ]);
    // A register gone from the remote while its associations stay there: the site keeps the register,
    // so its associations are still applicable, and one of them changes.
    const orphaned = await associationsOf(registerId(1, 3));
    expect(orphaned.length).toBeGreaterThan(0);
    await r.query('DELETE FROM register WHERE id = $1', [registerId(1, 3)]);
    await r.query(
      'UPDATE device_register SET poll_interval_s = 1 WHERE device_id = $1 AND register_id = $2',
      [orphaned[0]![0], orphaned[0]![1]],
    );
    await r.query(`UPDATE meter SET name = 'renamed' WHERE id = $1`, [meterId(1, 1)]);
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result).toMatchObject({ ok: false, status: 'partial' });
    expect(entity(result, 'register')).toMatchObject({
      status: 'failed',
      inserted: 0,
      updated: 0,
      deleted: 0,
      error: { code: 'SITE_REJECTED_ROW' },
    });
    expect(entity(result, 'register').error!.message).toContain('site_only_check');
    expect(countRows(result)).toEqual([
      ['meter', 0, 1, 0, 0, 9],
      ['register', 0, 0, 0, 0, 0],
      ['device_register', 0, 1, 0, 1, 19],
    ]);
    expect(entity(result, 'device_register').skippedKeys).toEqual([
      `device_id=${meterId(1, 1)}, register_id=${registerId(1, 13)}`,
    ]);
    const after = await siteContents(fx.siteClient);
    expect(after.register).toEqual(before.register);
    expect(reportedCounts(result)).toEqual({
      ...contentsDiff(before, after),
      register: { inserted: 0, updated: 0, deleted: 0, unchanged: 0 },
    });
    expect(after.meter).toEqual(await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id'));
    const { rows } = await fx.siteClient.query(
      'SELECT status, failed_entities FROM sync_run ORDER BY id DESC LIMIT 1',
    );
    expect(rows[0]).toEqual({ status: 'partial', failed_entities: ['register'] });

    // Once the site accepts the row, the next run catches up: the register and its orphans go.
    await fx.siteClient.query('ALTER TABLE register DROP CONSTRAINT site_only_check');
    const next = await fx.sync();
    expect(next.status).toBe('ok');
    expect(countRows(next)).toEqual([
      ['meter', 0, 0, 0, 0, 10],
      ['register', 1, 2, 1, 0, 9],
      ['device_register', 1, 0, orphaned.length, orphaned.length, 20 - orphaned.length],
    ]);
  });

  it('rolls back a rejected meter alone; associations of its new meter are skipped, the others commit', async () => {
    // Arrange
    await fx.siteClient.query(
      `ALTER TABLE meter ADD CONSTRAINT site_only_check CHECK (protocol <> 'opc-ua')`,
    );
    const r = fx.remoteClient;
    await r.query(`UPDATE meter SET protocol = 'opc-ua' WHERE id = $1`, [meterId(1, 2)]);
    await r.query(
      `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at) VALUES ($1, 1, 'new', 'mbus', true, now())`,
      [meterId(1, 11)],
    );
    await r.query('INSERT INTO device_register VALUES ($1, $2, 15, true), ($1, $3, 15, true)', [
      meterId(1, 11),
      registerId(1, 1),
      registerId(1, 2),
    ]);
    await r.query(`UPDATE register SET description = 'changed' WHERE id = $1`, [registerId(1, 4)]);
    await r.query('UPDATE device_register SET enabled = NOT enabled WHERE device_id = $1', [meterId(1, 3)]);
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('partial');
    expect(entity(result, 'meter')).toMatchObject({ status: 'failed', error: { code: 'SITE_REJECTED_ROW' } });
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 0, 0, 0],
      ['register', 0, 1, 0, 0, 11],
      ['device_register', 0, 2, 0, 2, 18],
    ]);
    const after = await siteContents(fx.siteClient);
    expect(after.meter).toEqual(before.meter);
    expect(reportedCounts(result)).toEqual({
      ...contentsDiff(before, after),
      meter: { inserted: 0, updated: 0, deleted: 0, unchanged: 0 },
    });
  });

  it('rolls back a rejected device_register alone; its parents commit', async () => {
    // Arrange
    await fx.siteClient.query(
      'ALTER TABLE device_register ADD CONSTRAINT site_only_check CHECK (poll_interval_s >= 5)',
    );
    const r = fx.remoteClient;
    await r.query('UPDATE device_register SET poll_interval_s = 1 WHERE device_id = $1', [meterId(1, 4)]);
    await r.query(`UPDATE meter SET port = 503 WHERE id = $1`, [meterId(1, 4)]);
    await r.query(`UPDATE register SET name = 'renamed' WHERE id = $1`, [registerId(1, 12)]);
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('partial');
    expect(entity(result, 'device_register')).toMatchObject({
      status: 'failed',
      error: { code: 'SITE_REJECTED_ROW' },
    });
    expect(countRows(result)).toEqual([
      ['meter', 0, 1, 0, 0, 9],
      ['register', 0, 1, 0, 0, 11],
      ['device_register', 0, 0, 0, 0, 0],
    ]);
    const after = await siteContents(fx.siteClient);
    expect(after.device_register).toEqual(before.device_register);
    expect(after.meter).toEqual(await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id'));
    expect(after.register).toEqual(await fx.rows('remote', 'register WHERE tenant_id = 1', 'id'));
  });

  it('keeps a parent row that the rolled-back rows of a failed child still reference, and commits the rest of the parent', async () => {
    // Arrange: the associations are rejected, and register 12, which some of them use, leaves the remote.
    // The register cannot go while those site rows stay: its delete is skipped and counted (DESIGN
    // §3.13), exactly as in a run without device_register, and the register's other changes commit.
    await fx.siteClient.query(
      'ALTER TABLE device_register ADD CONSTRAINT site_only_check CHECK (poll_interval_s >= 5)',
    );
    const r = fx.remoteClient;
    await r.query('UPDATE device_register SET poll_interval_s = 1 WHERE device_id = $1', [meterId(1, 4)]);
    await r.query('DELETE FROM register WHERE id = $1', [registerId(1, 12)]);
    await r.query(`UPDATE register SET name = 'renamed' WHERE id = $1`, [registerId(1, 3)]);
    await r.query(`UPDATE meter SET port = 503 WHERE id = $1`, [meterId(1, 4)]);
    const before = await siteContents(fx.siteClient);
    expect(before.device_register!.some((a) => a.register_id === String(registerId(1, 12)))).toBe(true);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.entities.map((e) => [e.entity, e.status, e.error?.code])).toEqual([
      ['meter', 'ok', undefined],
      ['register', 'ok', undefined],
      ['device_register', 'failed', 'SITE_REJECTED_ROW'],
    ]);
    expect(entity(result, 'register')).toMatchObject({
      updated: 1,
      deleted: 0,
      skipped: 1,
      unchanged: 11,
      skippedKeys: [`id=${registerId(1, 12)}`],
      skippedReasons: ['referenced by device_register rows kept because device_register failed'],
    });
    const after = await siteContents(fx.siteClient);
    expect(after.register!.map((row) => row.id)).toEqual(before.register!.map((row) => row.id));
    expect(after.register!.find((row) => row.id === String(registerId(1, 3)))!.name).toBe('renamed');
    expect(after.device_register).toEqual(before.device_register);
    expect(reportedCounts(result).meter).toEqual(contentsDiff(before, after).meter);
    expect(reportedCounts(result).register).toEqual(contentsDiff(before, after).register);
  });
});
