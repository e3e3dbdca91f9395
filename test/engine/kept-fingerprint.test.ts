/**
 * A run that found or made a table equal to the remote keeps its fingerprint (migration 6): the
 * next run compares the remote's with it instead of scanning the table again, unless a transaction
 * that run did not see has written the table since. Cost is the rows the site server reads
 * (pg_stat_user_tables); correctness is the site's rows against the remote's slice.
 */
import { type Client, escapeIdentifier } from 'pg';
import { registerId } from '../../lib/seed/seed-remote';
import { createLoginRole } from '../functions/login-role';
import { countRows, entityContents, expectedSlice, resetFixture } from '../harness/site-contents';
import { createSyncFixture, openTestClient, type SyncFixture } from '../harness/sync-fixture';
import { readsDuring } from '../harness/table-reads';

const TABLES = ['meter', 'register', 'device_register'];
const SHAPE = { tenants: [1, 2], metersPerTenant: 200, registersPerTenant: 1_000, registersPerMeter: 5 };
const ASSOCIATIONS = SHAPE.metersPerTenant * SHAPE.registersPerMeter;
/** A table whose kept fingerprint is trusted: only its first and last key, through its index. */
const KEPT_READS = { seq: 0, idx: 2 };
const NO_CHANGE = [
  ['meter', 0, 0, 0, 0, SHAPE.metersPerTenant],
  ['register', 0, 0, 0, 0, SHAPE.registersPerTenant],
  ['device_register', 0, 0, 0, 0, ASSOCIATIONS],
];

describe('a fingerprint kept from the run before', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());
  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SHAPE);
    // The first load fills the tables straight from the remote: it keeps no fingerprint.
    expect((await fx.sync()).status).toBe('ok');
  });

  const measured = () => readsDuring(fx.site.url, fx.siteClient, TABLES, () => fx.sync());
  const kept = async () =>
    (
      await fx.siteClient.query<{ entity: string }>(
        'SELECT entity FROM meter_sync_fingerprint ORDER BY entity',
      )
    ).rows.map((r) => r.entity);
  const expectSlice = async () =>
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
  const renameOnSite = (client: Client, name: string) =>
    client.query(`UPDATE register SET name = $1 WHERE id = $2`, [name, registerId(1, 3)]);

  it('a no-change run keeps the fingerprints it computed; the next scans neither table', async () => {
    expect(await kept()).toEqual([]);

    // Act: the first no-change run scans both tables; the second reads the one row that tells each is not empty.
    const first = await measured();
    const second = await measured();

    // Assert
    expect(countRows(first.value)).toEqual(NO_CHANGE);
    expect(countRows(second.value)).toEqual(NO_CHANGE);
    expect(await kept()).toEqual(['device_register', 'meter', 'register']);
    expect(first.reads.register!.seq).toBe(SHAPE.registersPerTenant + 1);
    expect(first.reads.meter!.seq).toBe(SHAPE.metersPerTenant + 1);
    expect(first.reads.device_register!.seq).toBe(ASSOCIATIONS);
    expect(second.reads.register!.seq).toBe(1);
    expect(second.reads.meter!.seq).toBe(1);
    expect(second.reads.device_register).toEqual(KEPT_READS);
  });

  it("an entity with parents keeps its table's fingerprint without its skips, which every run reads again: a parent that comes brings the rows it held back", async () => {
    // Arrange: two associations on the remote whose register is not there yet (skipped, remembered).
    const late = registerId(1, SHAPE.registersPerTenant + 1);
    const { rows: meters } = await fx.remoteClient.query<{ id: string }>(
      'SELECT id FROM meter WHERE tenant_id = 1 ORDER BY id LIMIT 2',
    );
    for (const { id } of meters)
      await fx.remoteClient.query('INSERT INTO device_register VALUES ($1, $2, 30, true)', [id, late]);
    const skipping = await measured();
    const steady = await measured();

    // Act: the register arrives; the associations' table has not been written since it was kept.
    await fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, scale, updated_at)
       VALUES ($1, 1, 'late', 1, 'uint16', 1, now())`,
      [late],
    );
    const brought = await measured();
    const after = await measured();

    // Assert: the skips counted in every run, the table never scanned once kept, the rows applied.
    expect(countRows(skipping.value)[2]).toEqual(['device_register', 0, 0, 0, 2, ASSOCIATIONS]);
    expect(countRows(steady.value)[2]).toEqual(['device_register', 0, 0, 0, 2, ASSOCIATIONS]);
    expect(steady.reads.device_register).toEqual(KEPT_READS);
    expect(countRows(brought.value)[2]).toEqual(['device_register', 2, 0, 0, 0, ASSOCIATIONS]);
    expect(brought.reads.device_register!.seq).toBe(0);
    expect(countRows(after.value)[2]).toEqual(['device_register', 0, 0, 0, 0, ASSOCIATIONS + 2]);
    expect(after.reads.device_register).toEqual(KEPT_READS);
    await expectSlice();
  });

  it("a kept fingerprint of an entity with parents ends with a write to its table, not to its parents'", async () => {
    // Arrange: kept; then an association removed on the site, and a meter renamed there.
    await measured();
    const { rows } = await fx.siteClient.query<{ device_id: string; register_id: string }>(
      'SELECT device_id, register_id FROM device_register ORDER BY 1, 2 LIMIT 1',
    );
    await fx.siteClient.query('DELETE FROM device_register WHERE device_id = $1 AND register_id = $2', [
      rows[0]!.device_id,
      rows[0]!.register_id,
    ]);

    // Act
    const repaired = await measured();
    const after = await measured();

    // Assert: the table scanned once and the row put back, then kept again.
    expect(countRows(repaired.value)[2]).toEqual(['device_register', 1, 0, 0, 0, ASSOCIATIONS - 1]);
    expect(repaired.reads.device_register!.seq).toBeGreaterThanOrEqual(ASSOCIATIONS - 1);
    expect(after.reads.device_register).toEqual(KEPT_READS);
    await expectSlice();
  });

  it('a change of the remote is found against the kept fingerprint and applied; the run keeps the result', async () => {
    // Arrange: kept; then two registers renamed and one added on the remote.
    await measured();
    await fx.remoteClient.query(`UPDATE register SET name = 'renamed' WHERE id IN ($1, $2)`, [
      registerId(1, 5),
      registerId(1, 700),
    ]);
    await fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
       SELECT $1, tenant_id, 'new', address, data_type, unit, scale, description, updated_at FROM register WHERE id = $2`,
      [registerId(1, SHAPE.registersPerTenant + 1), registerId(1, 5)],
    );

    // Act
    const changed = await measured();
    const after = await measured();

    // Assert: the change, found without the fingerprint's scan of the site's registers (the planner
    // still scans a table this small once for the rows of the region), then nothing.
    expect(countRows(changed.value)[1]).toEqual(['register', 1, 2, 0, 0, SHAPE.registersPerTenant - 2]);
    expect(changed.reads.register!.seq).toBeLessThanOrEqual(SHAPE.registersPerTenant + 1);
    await expectSlice();
    expect(countRows(after.value)[1]).toEqual(['register', 0, 0, 0, 0, SHAPE.registersPerTenant + 1]);
    expect(after.reads.register!.seq).toBe(1);
  });

  it("a row below the kept buckets' first key is still compared: the outer ranges reach the site's keys as they are now", async () => {
    // Arrange: kept with the site's first key at registerId(1, 1); a register below it added on the
    // remote and applied against the kept buckets (which stay those of the first run).
    await measured();
    const below = registerId(1, 0);
    await fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
       SELECT $1, tenant_id, 'below', address, data_type, unit, scale, description, updated_at FROM register WHERE id = $2`,
      [below, registerId(1, 1)],
    );
    expect(countRows(await fx.sync())[1]).toEqual(['register', 1, 0, 0, 0, SHAPE.registersPerTenant]);
    await fx.remoteClient.query('DELETE FROM register WHERE id = $1', [below]);

    // Act
    const result = await fx.sync();

    // Assert: the row gone from the remote is deleted from the site.
    expect(countRows(result)[1]).toEqual(['register', 0, 0, 1, 0, SHAPE.registersPerTenant]);
    await expectSlice();
  });

  it("a write to the site's table ends the kept fingerprint: the next run scans the table and repairs it", async () => {
    await measured();
    await renameOnSite(fx.siteClient, 'edited on the site');

    const repaired = await measured();

    expect(countRows(repaired.value)[1]).toEqual(['register', 0, 1, 0, 0, SHAPE.registersPerTenant - 1]);
    expect(repaired.reads.register!.seq).toBeGreaterThan(SHAPE.registersPerTenant);
    await expectSlice();
  });

  it('so do a delete by a session replicating with triggers off, and a TRUNCATE', async () => {
    await measured();
    const replica = await openTestClient(fx.site.url);
    try {
      await replica.query(`SET session_replication_role = replica`);
      await replica.query(`DELETE FROM device_register WHERE register_id = $1`, [registerId(1, 9)]);
      await replica.query(`DELETE FROM register WHERE id = $1`, [registerId(1, 9)]);
    } finally {
      await replica.end();
    }
    const afterDelete = await fx.sync();
    expect(countRows(afterDelete)[1]).toEqual(['register', 1, 0, 0, 0, SHAPE.registersPerTenant - 1]);
    await expectSlice();

    await fx.sync();
    await fx.siteClient.query('TRUNCATE device_register, register CASCADE');
    const afterTruncate = await fx.sync();
    expect(countRows(afterTruncate)[1]).toEqual(['register', SHAPE.registersPerTenant, 0, 0, 0, 0]);
    await expectSlice();
  });

  it('a transaction that wrote the table unseen by the run that kept the fingerprint, and committed after it, ends it', async () => {
    // Arrange: a site session's rename, not yet committed, while a run computes and keeps the fingerprints.
    const other = await openTestClient(fx.site.url);
    try {
      await other.query('BEGIN');
      await renameOnSite(other, 'committed after the run');
      const meanwhile = await fx.sync();
      expect(countRows(meanwhile)).toEqual(NO_CHANGE);
      expect(await kept()).toEqual(['device_register', 'meter', 'register']);
      await other.query('COMMIT');
    } finally {
      await other.end();
    }

    // Act
    const next = await fx.sync();

    // Assert: the rename is not trusted away.
    expect(countRows(next)[1]).toEqual(['register', 0, 1, 0, 0, SHAPE.registersPerTenant - 1]);
    await expectSlice();
  });

  it('a fingerprint kept by a release that hashed rows another way is not trusted: the table is scanned', async () => {
    await measured();
    // The signature as releases before the row hash was part of it wrote it: key and column types only.
    const { rows } = await fx.siteClient.query<{ signature: string }>(
      `SELECT signature FROM meter_sync_fingerprint WHERE entity = 'register'`,
    );
    const signature = rows[0]!.signature;
    const at = signature.lastIndexOf('@');
    const [key, columns, rowHash] = JSON.parse(signature.slice(0, at)) as [unknown, unknown, string];
    expect(rowHash).toContain('hashint8extended');
    const older = `${JSON.stringify([key, columns])}${signature.slice(at)}`;
    await fx.siteClient.query(`UPDATE meter_sync_fingerprint SET signature = $1 WHERE entity = 'register'`, [
      older,
    ]);

    const next = await measured();

    expect(countRows(next.value)).toEqual(NO_CHANGE);
    expect(next.reads.register!.seq).toBe(SHAPE.registersPerTenant + 1);
    expect(next.reads.meter!.seq).toBe(1);
    await expectSlice();
  });

  it('with the trigger disabled, the table is scanned on every run', async () => {
    await measured();
    await fx.siteClient.query('ALTER TABLE register DISABLE TRIGGER meter_sync_note_write');
    try {
      const first = await measured();
      const second = await measured();

      expect(first.reads.register!.seq).toBe(SHAPE.registersPerTenant + 1);
      expect(second.reads.register!.seq).toBe(SHAPE.registersPerTenant + 1);
      expect(second.reads.meter!.seq).toBe(1);
    } finally {
      await fx.siteClient.query('ALTER TABLE register ENABLE ALWAYS TRIGGER meter_sync_note_write');
    }
  });

  it('a dry run and a plan keep nothing, and a run that fails an entity keeps nothing of it', async () => {
    expect((await fx.sync({ dryRun: true })).status).toBe('ok');
    expect((await fx.sync({ changes: { max: 10 } })).status).toBe('ok');
    expect(await kept()).toEqual([]);

    // Every register gone from the remote: the mass-delete guard fails the entity.
    await fx.remoteClient.query('DELETE FROM device_register');
    await fx.remoteClient.query('DELETE FROM register WHERE tenant_id = 1');
    const guarded = await fx.sync();
    expect(guarded.entities.find((e) => e.entity === 'register')?.error?.code).toBe('MASS_DELETE_GUARD');
    expect(await kept()).toEqual(['meter']);
  });

  it('a role granted only what older builds needed still syncs, scanning every table, and keeps nothing', async () => {
    // Arrange: a login role that may not keep fingerprints; a kept one it could otherwise use.
    await measured();
    const role = await createLoginRole([fx.site.name]);
    try {
      await fx.siteClient.query(`REVOKE ALL ON meter_sync_fingerprint FROM ${escapeIdentifier(role.name)}`);
      const site = new URL(fx.site.url);
      site.username = role.name;
      site.password = role.password;
      await renameOnSite(fx.siteClient, 'edited on the site');
      const keptRows = async () =>
        (
          await fx.siteClient.query(
            'SELECT entity, writer::text, recorded_at::text FROM meter_sync_fingerprint ORDER BY entity',
          )
        ).rows;
      const before = await keptRows();

      // Act
      const result = await fx.sync({ site: site.toString() });

      // Assert: the edit found by a scan and repaired; nothing kept by this run.
      expect(result.status).toBe('ok');
      expect(countRows(result)[1]).toEqual(['register', 0, 1, 0, 0, SHAPE.registersPerTenant - 1]);
      await expectSlice();
      expect(await keptRows()).toEqual(before);
    } finally {
      await role.drop();
    }
  });

  it('the writes noted stay few: each run forgets those no kept fingerprint needs', async () => {
    for (let i = 0; i < 5; i++) {
      await renameOnSite(fx.siteClient, `edit ${i}`);
      expect(countRows(await fx.sync())[1]![2]).toBe(1);
    }
    const { rows } = await fx.siteClient.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM meter_sync_table_write',
    );
    // The last run's own writes, at most one per table it wrote.
    expect(rows[0]!.n).toBeLessThanOrEqual(TABLES.length);
  });
});
