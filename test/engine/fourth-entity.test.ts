/**
 * A fourth entity defined only as metadata, here in the test: a quoted, mixed-case table with a
 * composite key and a parent meter syncs with no engine change (DESIGN §1).
 */
import { deviceRegister, type EntityMetadata, EntityRegistry, meter, register } from '../../lib/entities';
import { meterId } from '../../lib/seed/seed-remote';
import {
  contentsDiff,
  countRows,
  entity,
  reportedCounts,
  resetFixture,
  SHIPPED_TABLES,
  siteContents,
  type TableKey,
  tableRows,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const note: EntityMetadata = {
  name: 'meter_note',
  table: 'Meter Note',
  keyColumns: ['Meter Id', 'Seq'],
  columns: ['Meter Id', 'Seq', 'Tenant', 'Body "text"', 'Weight', 'Tags'],
  tenantColumn: 'Tenant',
  parents: [{ entity: 'meter', columns: { 'Meter Id': 'id' } }],
};

const registry = new EntityRegistry([meter, register, deviceRegister, note]);
const TABLES: Record<string, TableKey> = { ...SHIPPED_TABLES, meter_note: note };

// The same table on both sides; only the site has the foreign key, NOT DEFERRABLE like the shipped ones.
const NOTE_TABLE = `CREATE TABLE "Meter Note" (
  "Meter Id" bigint NOT NULL,
  "Seq" integer NOT NULL,
  "Tenant" integer NOT NULL,
  "Body ""text""" text,
  "Weight" numeric,
  "Tags" jsonb,
  PRIMARY KEY ("Meter Id", "Seq"))`;

describe('a fourth entity defined only as metadata', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.remoteClient.query(NOTE_TABLE);
    await fx.siteClient.query(NOTE_TABLE);
    await fx.siteClient.query(
      `ALTER TABLE "Meter Note" ADD FOREIGN KEY ("Meter Id") REFERENCES meter (id) NOT DEFERRABLE`,
    );
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx, [note.table]);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 5, registersPerMeter: 1 });
    // Two notes per meter of both tenants, and one note of tenant 1 on a meter of tenant 2.
    await fx.remoteClient.query(
      `INSERT INTO "Meter Note"
       SELECT m.id, s, m.tenant_id, 'note ' || s || E' \\\\ "q" 🔌', (s || '.50')::numeric, jsonb_build_object('s', s)
       FROM meter m, generate_series(1, 2) s`,
    );
    await fx.remoteClient.query(`INSERT INTO "Meter Note" VALUES ($1, 1, 1, 'on a foreign meter', 1, NULL)`, [
      meterId(2, 99),
    ]);
  });

  const sync = (options = {}) => fx.sync({ registry, ...options });

  it('runs after its parent, is applied and is idempotent', async () => {
    // Act
    const first = await sync();
    const second = await sync();

    // Assert
    expect(registry.names).toEqual(['meter', 'register', 'device_register', 'meter_note']);
    expect(first.status).toBe('ok');
    expect(countRows(first)).toEqual([
      ['meter', 5, 0, 0, 0, 0],
      ['register', 5, 0, 0, 0, 0],
      ['device_register', 5, 0, 0, 0, 0],
      ['meter_note', 10, 0, 0, 1, 0],
    ]);
    expect(entity(first, 'meter_note').skippedKeys).toEqual([`Meter Id=${meterId(2, 99)}, Seq=1`]);
    expect(await tableRows(fx.siteClient, note)).toEqual(
      await tableRows(fx.remoteClient, note).then((rows) =>
        rows.filter((r) => r.Tenant === '1' && r['Meter Id'] !== String(meterId(2, 99))),
      ),
    );
    expect(countRows(second)).toEqual([
      ['meter', 0, 0, 0, 0, 5],
      ['register', 0, 0, 0, 0, 5],
      ['device_register', 0, 0, 0, 0, 5],
      ['meter_note', 0, 0, 0, 1, 10],
    ]);
  });

  it('counts inserts, updates and deletes exactly, and deletes notes before their meter', async () => {
    // Arrange
    await sync();
    const r = fx.remoteClient;
    // numeric without a scale keeps what it was given: 1.50 and 1.5 are different text.
    await r.query(`UPDATE "Meter Note" SET "Weight" = 1.5 WHERE "Meter Id" = $1 AND "Seq" = 1`, [
      meterId(1, 1),
    ]);
    await r.query(`UPDATE "Meter Note" SET "Body ""text""" = NULL WHERE "Meter Id" = $1 AND "Seq" = 2`, [
      meterId(1, 1),
    ]);
    await r.query(`UPDATE "Meter Note" SET "Tags" = '{"s": 1.0}' WHERE "Meter Id" = $1 AND "Seq" = 1`, [
      meterId(1, 2),
    ]);
    await r.query(`INSERT INTO "Meter Note" VALUES ($1, 3, 1, 'third', 0, '[]')`, [meterId(1, 3)]);
    // Meter 5 goes, with its association; its notes stay on the remote, now without a parent.
    await r.query('DELETE FROM device_register WHERE device_id = $1', [meterId(1, 5)]);
    await r.query('DELETE FROM meter WHERE id = $1', [meterId(1, 5)]);
    const before = await siteContents(fx.siteClient, TABLES);

    // Act
    const result = await sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 1, 0, 4],
      ['register', 0, 0, 0, 0, 5],
      ['device_register', 0, 0, 1, 0, 4],
      ['meter_note', 1, 3, 2, 3, 5],
    ]);
    const after = await siteContents(fx.siteClient, TABLES);
    expect(reportedCounts(result)).toEqual(contentsDiff(before, after, TABLES));
    expect(
      after.meter_note!.find((n) => n['Meter Id'] === String(meterId(1, 1)) && n.Seq === '1'),
    ).toMatchObject({ Weight: '1.5' });
  });

  it('syncs the new entity alone against the meters the site has', async () => {
    // Arrange: the site has no meters yet.
    // Act
    const result = await sync({ entities: ['meter_note'] });

    // Assert: every note waits for its meter.
    expect(result.entities.map((e) => [e.entity, e.status, e.inserted, e.skipped])).toEqual([
      ['meter_note', 'ok', 0, 11],
    ]);
    expect(await tableRows(fx.siteClient, note)).toEqual([]);
  });
});
