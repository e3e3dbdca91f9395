/**
 * The skips a site remembers (sync-sql's skippedSql): a remote row skipped for want of a parent
 * counts as the site's in the next run's fingerprints while its parent is still missing, so that a
 * few orphans do not make their buckets differ in every run. The memory is only ever a claim the
 * fingerprints check: a parent that arrives, an orphan that changes or goes, and an entry that is
 * simply wrong each end with the exact counts a run without it would give.
 */
import type { Client } from 'pg';
import { meterId, registerId } from '../../lib/seed/seed-remote';
import { entity, entityContents, expectedSlice, resetFixture } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 30, registersPerTenant: 40, registersPerMeter: 4 };
const MISSING = registerId(1, 999);
const FOREIGN = registerId(2, 1);

async function remembered(site: Client): Promise<string[]> {
  const { rows } = await site.query<{ entry: string }>(
    `SELECT entity || ' ' || array_to_string(row, ',') AS entry FROM meter_sync_skipped_row ORDER BY 1`,
  );
  return rows.map((row) => row.entry);
}

describe('the skips a site remembers', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SEED);
    await fx.remoteClient.query('INSERT INTO device_register VALUES ($1, $2, 60, true), ($3, $4, 5, false)', [
      meterId(1, 3),
      FOREIGN,
      meterId(1, 1),
      MISSING,
    ]);
    await fx.sync();
  });

  /** The register one orphan lacks appears on the remote. */
  const missingParentArrives = () =>
    fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, scale, updated_at)
       VALUES ($1, 1, 'late', 1, 'uint16', 1, now())`,
      [MISSING],
    );

  const orphans = [
    `device_register ${meterId(1, 1)},${MISSING}`,
    `device_register ${meterId(1, 3)},${FOREIGN}`,
  ];

  it('a first load remembers its orphans, and the next run counts and names them again without a difference', async () => {
    expect(await remembered(fx.siteClient)).toEqual(orphans);

    // Act
    const second = await fx.sync();

    // Assert
    expect(entity(second, 'device_register')).toMatchObject({
      inserted: 0,
      updated: 0,
      deleted: 0,
      unchanged: 120,
      skipped: 2,
      remoteRows: 122,
      skippedReasons: [`parent missing: register id=${MISSING}`, `parent missing: register id=${FOREIGN}`],
    });
    expect(await remembered(fx.siteClient)).toEqual(orphans);
  });

  it('the missing parent arrives: the orphan is applied, and forgotten', async () => {
    // Arrange
    await missingParentArrives();

    // Act
    const result = await fx.sync();

    // Assert
    expect(entity(result, 'register')).toMatchObject({ inserted: 1 });
    expect(entity(result, 'device_register')).toMatchObject({ inserted: 1, unchanged: 120, skipped: 1 });
    expect(await remembered(fx.siteClient)).toEqual([orphans[1]]);
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
  });

  it('an orphan that changes stays skipped and remembered; one that goes is forgotten', async () => {
    // Arrange
    await fx.remoteClient.query('UPDATE device_register SET poll_interval_s = 300 WHERE register_id = $1', [
      MISSING,
    ]);
    await fx.remoteClient.query('DELETE FROM device_register WHERE register_id = $1', [FOREIGN]);

    // Act
    const result = await fx.sync();
    const next = await fx.sync();

    // Assert
    expect(entity(result, 'device_register')).toMatchObject({
      inserted: 0,
      updated: 0,
      skipped: 1,
      remoteRows: 121,
    });
    expect(await remembered(fx.siteClient)).toEqual([orphans[0]]);
    expect(entity(next, 'device_register')).toMatchObject({ inserted: 0, unchanged: 120, skipped: 1 });
  });

  it('an entry that is wrong (a row the remote does not have, a hash that does not match) is corrected, the counts exact', async () => {
    // Arrange
    await fx.siteClient.query(
      `INSERT INTO meter_sync_skipped_row VALUES ('device_register', ARRAY[$1::text, $2::text], 42)`,
      [String(meterId(1, 5)), String(registerId(1, 998))],
    );
    await fx.siteClient.query(`UPDATE meter_sync_skipped_row SET hash = hash + 1 WHERE row[2] = $1`, [
      String(FOREIGN),
    ]);

    // Act
    const result = await fx.sync();

    // Assert
    expect(entity(result, 'device_register')).toMatchObject({
      inserted: 0,
      updated: 0,
      deleted: 0,
      unchanged: 120,
      skipped: 2,
      remoteRows: 122,
    });
    expect(await remembered(fx.siteClient)).toEqual(orphans);
  });

  it('a run that fails or a dry run leaves the memory as it was', async () => {
    // Arrange: the missing parent arrives, but the run is a dry run.
    await missingParentArrives();

    // Act
    const dry = await fx.sync({ dryRun: true });

    // Assert
    expect(entity(dry, 'device_register')).toMatchObject({ inserted: 1, skipped: 1 });
    expect(await remembered(fx.siteClient)).toEqual(orphans);
  });
});
