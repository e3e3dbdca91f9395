/**
 * A parent's change costs what the change costs (DESIGN §3.12, issue 18): an update of a parent
 * touches no child, a removed parent costs its children on the site, an added one its children on
 * the remote, and a broad change of parents grows with the tenant, not with its square. Cost is the
 * rows the site server reads per table (pg_stat_user_tables), never a time.
 */
import { ID_SPAN, meterId, registerId } from '../../lib/seed/seed-remote';
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
import { type Reads, readsDuring, totalReads } from '../harness/table-reads';

const TABLES = ['meter', 'register', 'device_register'];
const SHAPE = { meters: 1_000, registers: 5_000, perMeter: 10 };
const ASSOCIATIONS = SHAPE.meters * SHAPE.perMeter;

describe("a parent's change costs what the change costs", () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  async function arrange(shape = SHAPE): Promise<void> {
    await resetFixture(fx);
    await fx.seed({
      tenants: [1, 2],
      metersPerTenant: shape.meters,
      registersPerTenant: shape.registers,
      registersPerMeter: shape.perMeter,
    });
    for (const table of TABLES)
      await fx.siteClient.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    expect((await fx.sync()).status).toBe('ok');
    await fx.siteClient.query('VACUUM ANALYZE');
  }

  const measured = (options = {}) => readsDuring(fx.site.url, fx.siteClient, TABLES, () => fx.sync(options));

  /** Associations of a register on the remote, as the seed made them. */
  async function associationsOf(column: 'device_id' | 'register_id', id: number): Promise<number> {
    const { rows } = await fx.remoteClient.query(
      `SELECT count(*)::int AS n FROM device_register WHERE ${column} = $1`,
      [id],
    );
    return rows[0].n;
  }

  describe('one parent row', () => {
    let nothing: Reads;
    beforeAll(async () => {
      await arrange();
      const { value, reads } = await measured();
      expect(countRows(value).map((r) => r[1] + r[2] + r[3])).toEqual([0, 0, 0]);
      nothing = reads;
    });

    it('a no-change run reads each table once, by its fingerprint scan', () => {
      expect(nothing.device_register).toEqual({ seq: ASSOCIATIONS, idx: 0 });
      // And the one row that tells a parent's table is not empty.
      expect(nothing.register!.seq).toBe(SHAPE.registers + 1);
    });

    it("an update of a register's non-key column reads no association beyond that scan", async () => {
      // Arrange
      await fx.remoteClient.query(`UPDATE register SET unit = 'V' WHERE id = $1`, [registerId(1, 7)]);

      // Act
      const { value: result, reads } = await measured();

      // Assert
      expect(countRows(result)).toEqual([
        ['meter', 0, 0, 0, 0, SHAPE.meters],
        ['register', 0, 1, 0, 0, SHAPE.registers - 1],
        ['device_register', 0, 0, 0, 0, ASSOCIATIONS],
      ]);
      // The associations' fingerprint is the one the no-change run kept (their table unwritten
      // since): not one of them is read.
      expect(reads.device_register).toEqual({ seq: 0, idx: 0 });
      // The meters' fingerprint is the one the no-change run kept: only the row that tells their
      // table is not empty is read, where that run scanned them all.
      expect(nothing.meter!.seq).toBe(SHAPE.meters + 1);
      expect(reads.meter).toEqual({ seq: 1, idx: 0 });
    });

    it('a register deleted with its associations: only those associations are read', async () => {
      // Arrange
      const id = registerId(1, 11);
      const children = await associationsOf('register_id', id);
      expect(children).toBeGreaterThan(0);
      await fx.remoteClient.query('DELETE FROM device_register WHERE register_id = $1', [id]);
      await fx.remoteClient.query('DELETE FROM register WHERE id = $1', [id]);
      const before = await siteContents(fx.siteClient);

      // Act
      const { value: result, reads } = await measured();

      // Assert
      expect(result.status).toBe('ok');
      expect(entity(result, 'register')).toMatchObject({ deleted: 1 });
      expect(entity(result, 'device_register')).toMatchObject({ deleted: children, skipped: 0 });
      expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(fx.siteClient)));
      // The kept fingerprint of the associations, not a scan.
      expect(reads.device_register!.seq).toBe(0);
      // The bucket the deleted associations lay in, and those rows again for the delete and its checks.
      expect(reads.device_register!.idx).toBeLessThan(1_000);
    });

    it('a register deleted while its associations stay on the remote: those are deleted and skipped, no other is read', async () => {
      // Arrange: an orphan on the remote is never applied; the site's copies of it go with the register.
      const id = registerId(1, 12);
      const children = await associationsOf('register_id', id);
      await fx.remoteClient.query('DELETE FROM register WHERE id = $1', [id]);
      const before = await siteContents(fx.siteClient);

      // Act
      const { value: result, reads } = await measured();

      // Assert
      expect(countRows(result)).toEqual([
        ['meter', 0, 0, 0, 0, SHAPE.meters],
        ['register', 0, 0, 1, 0, SHAPE.registers - 2],
        ['device_register', 0, 0, children, children, before.device_register!.length - children],
      ]);
      expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(fx.siteClient)));
      expect(entity(result, 'device_register').skippedReasons?.[0]).toBe(`parent missing: register id=${id}`);
      expect(reads.device_register!.seq).toBe(0);
      expect(reads.device_register!.idx).toBeLessThan(10 * children + 50);

      // The orphans stay skipped in every run, until the remote drops them.
      await fx.remoteClient.query('DELETE FROM device_register WHERE register_id = $1', [id]);
      expect(entity(await fx.sync(), 'device_register').skipped).toBe(0);
    });

    it('a meter added with 50 associations: only its bucket of associations is read', async () => {
      // Arrange
      const id = meterId(1, SHAPE.meters + 1);
      await fx.remoteClient.query(
        `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at) VALUES ($1, 1, 'new', 'mbus', true, now())`,
        [id],
      );
      await fx.remoteClient.query(
        `INSERT INTO device_register SELECT $1, $2::bigint + r, 60, true FROM generate_series(100, 149) AS r`,
        [id, ID_SPAN],
      );

      const before = await siteContents(fx.siteClient);

      // Act
      const { value: result, reads } = await measured();

      // Assert
      expect(entity(result, 'meter')).toMatchObject({ inserted: 1, updated: 0, deleted: 0 });
      expect(entity(result, 'device_register')).toMatchObject({
        inserted: 50,
        updated: 0,
        deleted: 0,
        skipped: 0,
      });
      expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(fx.siteClient)));
      expect(reads.device_register!.seq).toBe(0);
      expect(reads.device_register!.idx).toBeLessThan(1_000);
    });

    it('associations skipped for want of their register are applied by the run that brings it', async () => {
      // Arrange: the associations arrive first (an association belongs to its meter's tenant).
      const id = registerId(1, SHAPE.registers + 1);
      await fx.remoteClient.query(
        `INSERT INTO device_register SELECT $1::bigint + m, $2, 15, false FROM generate_series(1, 3) AS m`,
        [ID_SPAN, id],
      );

      // Act
      const waiting = await fx.sync();
      await fx.remoteClient.query(
        `INSERT INTO register (id, tenant_id, name, address, data_type, scale, updated_at)
         VALUES ($1, 1, 'late', 1, 'uint16', 1, now())`,
        [id],
      );
      const brought = await fx.sync();

      // Assert
      expect(entity(waiting, 'device_register')).toMatchObject({
        inserted: 0,
        skipped: 3,
        skippedKeys: [1, 2, 3].map((m) => `device_id=${meterId(1, m)}, register_id=${id}`),
        skippedReasons: [1, 2, 3].map(() => `parent missing: register id=${id}`),
      });
      expect(entity(brought, 'register')).toMatchObject({ inserted: 1 });
      expect(entity(brought, 'device_register')).toMatchObject({ inserted: 3, skipped: 0 });
      const { sync_run_count: _runs, ...site } = await siteContents(fx.siteClient);
      expect(site).toEqual(await expectedSlice(fx.remoteClient, 1));
    });

    it('a meter re-keyed with its associations: the old key and its associations go, the new come', async () => {
      // Arrange
      const from = meterId(1, 20);
      const to = meterId(1, SHAPE.meters + 20);
      const children = await associationsOf('device_id', from);
      await fx.remoteClient.query('UPDATE meter SET id = $2 WHERE id = $1', [from, to]);
      await fx.remoteClient.query('UPDATE device_register SET device_id = $2 WHERE device_id = $1', [
        from,
        to,
      ]);
      const before = await siteContents(fx.siteClient);

      // Act
      const result = await fx.sync();

      // Assert
      expect(entity(result, 'meter')).toMatchObject({ inserted: 1, deleted: 1, updated: 0 });
      expect(entity(result, 'device_register')).toMatchObject({ inserted: children, deleted: children });
      const after = await siteContents(fx.siteClient);
      expect(reportedCounts(result)).toEqual(contentsDiff(before, after));
      const { sync_run_count: _runs, ...site } = after;
      expect(site).toEqual(await expectedSlice(fx.remoteClient, 1));
    });
  });

  describe('a broad change of parents', () => {
    /**
     * A third of the registers recalibrated (no association changes), 2% of the associations gone,
     * and 20 new meters with 10 associations each, on a tenant of `scale` times the base shape.
     */
    async function broadChange(scale: number) {
      const shape = {
        meters: SHAPE.meters * scale,
        registers: SHAPE.registers * scale,
        perMeter: SHAPE.perMeter,
      };
      await arrange(shape);
      const r = fx.remoteClient;
      const updated = await r.query(
        `UPDATE register SET scale = scale + 1 WHERE tenant_id = 1 AND id % 3 = 0`,
      );
      const deleted = await r.query(
        `DELETE FROM device_register WHERE device_id / $1 = 1 AND hashint8(device_id * 31 + register_id) % 50 = 0`,
        [ID_SPAN],
      );
      await r.query(
        `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at)
         SELECT $1::bigint + $2 + i, 1, 'new ' || i, 'mbus', true, now() FROM generate_series(1, 20) AS i`,
        [ID_SPAN, shape.meters],
      );
      await r.query(
        `INSERT INTO device_register SELECT $1::bigint + $2 + i, $1::bigint + j, 60, true
         FROM generate_series(1, 20) AS i, generate_series(1, 10) AS j`,
        [ID_SPAN, shape.meters],
      );
      const before = await siteContents(fx.siteClient);
      const { value: result, reads } = await measured();
      expect(result.status).toBe('ok');
      expect(countRows(result)).toEqual([
        ['meter', 20, 0, 0, 0, shape.meters],
        ['register', 0, updated.rowCount, 0, 0, shape.registers - updated.rowCount!],
        ['device_register', 200, 0, deleted.rowCount, 0, shape.meters * shape.perMeter - deleted.rowCount!],
      ]);
      expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(fx.siteClient)));
      return reads;
    }

    it('reads rows in proportion to the tenant, not to its square', async () => {
      const small = totalReads(await broadChange(1));
      const large = totalReads(await broadChange(4));
      // Linear is 4x; a statement evaluated per staged child over the changed parents would be ~16x.
      expect(large / small).toBeLessThan(6);
    });
  });
});
