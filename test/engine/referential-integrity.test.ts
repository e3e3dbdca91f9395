/**
 * Referential integrity (DESIGN §3.5): a child row is applied only if its parents will exist on the
 * site after the run; bad remote associations are skipped, counted and sampled, never applied.
 * Entity subsets check children against the parent rows the site has.
 */
import { meterId, registerId } from '../../lib/seed/seed-remote';
import {
  contentsDiff,
  countRows,
  entity,
  expectedSlice,
  reportedCounts,
  resetFixture,
  siteContents,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 10, registersPerTenant: 10, registersPerMeter: 2 };

const key = (device: number, register: number) => `device_id=${device}, register_id=${register}`;

describe('referential integrity of associations', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SEED);
  });

  async function addAssociations(pairs: [number, number][]): Promise<void> {
    for (const [device, register] of pairs) {
      await fx.remoteClient.query('INSERT INTO device_register VALUES ($1, $2, 60, true)', [
        device,
        register,
      ]);
    }
  }

  it('skips an association to another tenant register or to a missing register, and never applies it', async () => {
    // Arrange
    await addAssociations([
      [meterId(1, 1), registerId(2, 1)], // the register belongs to tenant 2
      [meterId(1, 2), registerId(1, 77)], // the register does not exist
    ]);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(entity(result, 'device_register')).toMatchObject({
      status: 'ok',
      inserted: 20,
      skipped: 2,
      remoteRows: 22,
      skippedKeys: [key(meterId(1, 1), registerId(2, 1)), key(meterId(1, 2), registerId(1, 77))],
    });
    const site = await fx.rows('site', 'device_register', 'device_id, register_id');
    expect(site).toEqual((await expectedSlice(fx.remoteClient, 1)).device_register);
    expect(site.some((a) => a.register_id === String(registerId(2, 1)))).toBe(false);
    expect(site.some((a) => a.register_id === String(registerId(1, 77)))).toBe(false);

    // Skipped again on the next run, still nothing applied, nothing else changes.
    const again = await fx.sync();
    expect(countRows(again)).toEqual([
      ['meter', 0, 0, 0, 0, 10],
      ['register', 0, 0, 0, 0, 10],
      ['device_register', 0, 0, 0, 2, 20],
    ]);
  });

  it('counts every skipped row but samples only the first five keys', async () => {
    // Arrange: seven associations to missing registers.
    const bad = Array.from({ length: 7 }, (_, i): [number, number] => [
      meterId(1, 3),
      registerId(1, 100 + i),
    ]);
    await addAssociations(bad);

    // Act
    const result = await fx.sync();

    // Assert
    expect(entity(result, 'device_register')).toMatchObject({ skipped: 7, inserted: 20 });
    expect(entity(result, 'device_register').skippedKeys).toEqual(bad.slice(0, 5).map(([d, r]) => key(d, r)));
  });

  it('deletes a site association whose register moved to another tenant on the remote', async () => {
    // Arrange: synced, then register 1 of tenant 1 becomes tenant 2's; its associations stay on the remote.
    await fx.sync();
    await fx.remoteClient.query('UPDATE register SET tenant_id = 2 WHERE id = $1', [registerId(1, 1)]);
    const users = await fx.rows(
      'remote',
      `device_register WHERE register_id = ${registerId(1, 1)}`,
      'device_id',
    );
    expect(users.length).toBeGreaterThan(0);
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 0, 0, 10],
      ['register', 0, 0, 1, 0, 9],
      ['device_register', 0, 0, users.length, users.length, 20 - users.length],
    ]);
    expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(fx.siteClient)));
  });

  describe('entity subsets', () => {
    it('syncs device_register alone against the meters and registers the site has', async () => {
      // Arrange: a synced site; then the remote gains a meter with associations, loses a register whose
      // associations stay, changes one association and adds one between existing rows.
      await fx.sync();
      await fx.remoteClient.query(
        `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at) VALUES ($1, 1, 'new', 'mbus', true, now())`,
        [meterId(1, 11)],
      );
      await addAssociations([
        [meterId(1, 11), registerId(1, 1)],
        [meterId(1, 11), registerId(1, 2)],
        [meterId(1, 1), registerId(1, 10)],
      ]);
      await fx.remoteClient.query('DELETE FROM register WHERE id = $1', [registerId(1, 5)]);
      await fx.remoteClient.query(
        'UPDATE device_register SET poll_interval_s = 1 WHERE device_id = $1 AND register_id = $2',
        [meterId(1, 1), registerId(1, 3)],
      );
      const before = await siteContents(fx.siteClient);

      // Act
      const result = await fx.sync({ entities: ['device_register'] });

      // Assert: only device_register ran; the new meter's associations wait for their meter.
      expect(result.status).toBe('ok');
      expect(result.entities.map((e) => e.entity)).toEqual(['device_register']);
      expect(entity(result, 'device_register')).toMatchObject({
        inserted: 1,
        updated: 1,
        deleted: 0,
        skipped: 2,
        unchanged: 19,
        remoteRows: 23,
        skippedKeys: [key(meterId(1, 11), registerId(1, 1)), key(meterId(1, 11), registerId(1, 2))],
      });
      const after = await siteContents(fx.siteClient);
      expect(after.meter).toEqual(before.meter);
      expect(after.register).toEqual(before.register);
      expect(reportedCounts(result).device_register).toEqual(contentsDiff(before, after).device_register);

      // A full run then brings the meter, so its associations, and drops the register and its associations.
      const full = await fx.sync();
      expect(full.status).toBe('ok');
      const { sync_run_count: _runs, ...tables } = await siteContents(fx.siteClient);
      expect(tables).toEqual(await expectedSlice(fx.remoteClient, 1));
      expect(entity(full, 'device_register')).toMatchObject({ inserted: 2 });
    });

    it('syncs meter and register alone after a meter and a register with associations went: their deletes are skipped, counted and said why', async () => {
      // Arrange: the README's example run, {"entities": ["meter", "register"]}.
      await fx.sync();
      const r = fx.remoteClient;
      await r.query('DELETE FROM device_register WHERE device_id = $1 OR register_id = $2', [
        meterId(1, 4),
        registerId(1, 6),
      ]);
      await r.query('DELETE FROM meter WHERE id = $1', [meterId(1, 4)]);
      await r.query('DELETE FROM register WHERE id = $1', [registerId(1, 6)]);
      await r.query(`UPDATE meter SET name = 'renamed' WHERE id = $1`, [meterId(1, 5)]);
      const before = await siteContents(fx.siteClient);

      // Act
      const result = await fx.sync({ entities: ['meter', 'register'] });

      // Assert: ok, nothing deleted that an association still uses, the rename applied.
      expect(result.status).toBe('ok');
      const reason = 'referenced by device_register rows outside this run';
      expect(entity(result, 'meter')).toMatchObject({
        updated: 1,
        deleted: 0,
        skipped: 1,
        unchanged: 9,
        skippedKeys: [`id=${meterId(1, 4)}`],
        skippedReasons: [reason],
      });
      expect(entity(result, 'register')).toMatchObject({
        deleted: 0,
        skipped: 1,
        skippedKeys: [`id=${registerId(1, 6)}`],
        skippedReasons: [reason],
      });
      const after = await siteContents(fx.siteClient);
      expect(after.device_register).toEqual(before.device_register);
      expect(reportedCounts(result).meter).toEqual(contentsDiff(before, after).meter);

      // The next run with the associations applies both.
      const full = await fx.sync();
      expect(full.status).toBe('ok');
      expect(entity(full, 'meter')).toMatchObject({ deleted: 1, skipped: 0 });
      expect(entity(full, 'register')).toMatchObject({ deleted: 1, skipped: 0 });
      const { sync_run_count: _runs, ...tables } = await siteContents(fx.siteClient);
      expect(tables).toEqual(await expectedSlice(fx.remoteClient, 1));
    });

    it('syncs the parents alone and leaves the associations as they are', async () => {
      // Arrange
      await fx.sync();
      await fx.remoteClient.query(`UPDATE meter SET name = 'renamed' WHERE id = $1`, [meterId(1, 1)]);
      await fx.remoteClient.query(
        'UPDATE device_register SET poll_interval_s = 1 WHERE device_id = $1 AND register_id = $2',
        [meterId(1, 1), registerId(1, 3)],
      );
      const before = await siteContents(fx.siteClient);

      // Act: the names come in any order; the run is still parent-first.
      const result = await fx.sync({ entities: ['register', 'meter'] });

      // Assert
      expect(result.entities.map((e) => [e.entity, e.status, e.updated])).toEqual([
        ['meter', 'ok', 1],
        ['register', 'ok', 0],
      ]);
      expect((await siteContents(fx.siteClient)).device_register).toEqual(before.device_register);
    });
  });
});
