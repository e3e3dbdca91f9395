/**
 * The site side as the engine sees it: the schema it requires (migrated, every entity's columns)
 * and the generic row functions (get, upsert, delete by key) of the SyncDatabase interface.
 */
import { Client } from 'pg';
import { getRemoteRows } from '../../lib/db/remote-database';
import type { Row } from '../../lib/db/rows';
import { SiteDatabase } from '../../lib/db/site-database';
import { LATEST_SITE_SCHEMA_VERSION, siteSchemaVersion } from '../../lib/db/site-migrations';
import { performSync } from '../../lib/engine';
import { deviceRegister, meter, register } from '../../lib/entities';
import { meterId, registerId } from '../../lib/seed/seed-remote';
import { countRows, entity, expectedSlice, resetFixture } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { createTestDatabase } from '../harness/test-database';

const SEED = { tenants: [1, 2], metersPerTenant: 4, registersPerTenant: 4, registersPerMeter: 2 };

describe('site database', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SEED);
  });

  describe('schema the engine requires', () => {
    it('fails a run on a site that was never migrated, creating nothing there', async () => {
      // Arrange
      const bare = await createTestDatabase('bare_site');
      try {
        // Act
        const result = await performSync({ remote: fx.remote.url, site: bare.url, tenantId: 1 });

        // Assert
        expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'SITE_NOT_MIGRATED' } });
        // The run failed as a whole before any entity ran: none is reported.
        expect(result.entities).toEqual([]);
        expect(result.error!.message).toContain('meter-sync migrate');
        expect(await siteSchemaVersion(fx.siteClient)).toBe(LATEST_SITE_SCHEMA_VERSION);
        const client = new Client({ connectionString: bare.url });
        await client.connect();
        const { rows } = await client.query(
          `SELECT count(*)::int AS tables FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`,
        );
        await client.end();
        expect(rows[0].tables).toBe(0);
      } finally {
        await bare.drop();
      }
    });

    it('fails only the entity whose site table lacks a column; its children run against the site', async () => {
      // Arrange
      await fx.sync();
      await fx.siteClient.query('ALTER TABLE register RENAME COLUMN description TO notes');
      await fx.remoteClient.query(`UPDATE meter SET name = 'renamed' WHERE id = $1`, [meterId(1, 1)]);
      await fx.remoteClient.query(`UPDATE register SET name = 'renamed' WHERE id = $1`, [registerId(1, 1)]);
      try {
        // Act
        const result = await fx.sync();

        // Assert
        expect(result.status).toBe('partial');
        expect(entity(result, 'register')).toMatchObject({
          status: 'failed',
          error: { code: 'SITE_SCHEMA_MISMATCH' },
        });
        expect(entity(result, 'register').error!.message).toContain('description');
        expect(countRows(result)).toEqual([
          ['meter', 0, 1, 0, 0, 3],
          ['register', 0, 0, 0, 0, 0],
          ['device_register', 0, 0, 0, 0, 8],
        ]);
      } finally {
        await fx.siteClient.query('ALTER TABLE register RENAME COLUMN notes TO description');
      }
    });
  });

  describe('generic row functions', () => {
    it('reads the remote slice of an entity in key order', async () => {
      const slice = await expectedSlice(fx.remoteClient, 1);
      expect(await getRemoteRows(fx.remoteClient, meter, 1)).toEqual(slice.meter);
      expect(await getRemoteRows(fx.remoteClient, register, 1)).toEqual(slice.register);
      expect(await getRemoteRows(fx.remoteClient, deviceRegister, 1)).toEqual(slice.device_register);
      expect(await getRemoteRows(fx.remoteClient, meter, 3)).toEqual([]);
    });

    it('upserts by composite key, writing only what changed, and deletes by key', async () => {
      // Arrange: the parents, written through the same functions.
      const db = new SiteDatabase(fx.siteClient);
      // One after another: a pg client runs one query at a time (queuing is deprecated in pg 8).
      const m = await db.resolve(meter);
      const r = await db.resolve(register);
      const dr = await db.resolve(deviceRegister);
      const slice = await expectedSlice(fx.remoteClient, 1);
      expect(await db.upsertRows(m, slice.meter!)).toEqual({ inserted: 4, updated: 0 });
      expect(await db.upsertRows(r, slice.register!)).toEqual({ inserted: 4, updated: 0 });

      // Act + assert: insert, then the same rows again (no write), then one changed value.
      expect(await db.upsertRows(dr, slice.device_register!)).toEqual({ inserted: 8, updated: 0 });
      expect(await db.upsertRows(dr, slice.device_register!)).toEqual({ inserted: 0, updated: 0 });
      const changed: Row[] = slice.device_register!.map((row, i) =>
        i === 0 ? { ...row, poll_interval_s: '7' } : row,
      );
      expect(await db.upsertRows(dr, changed)).toEqual({ inserted: 0, updated: 1 });
      expect(await db.getRows(dr)).toEqual(changed);

      // Values stay server text: jsonb 1.0, NULLs, microseconds.
      const exact = {
        ...slice.meter![0]!,
        config: '{"k": 1.0}',
        serial_number: null,
        updated_at: '2024-01-01 00:00:00.000001+00',
      };
      expect(await db.upsertRows(m, [exact])).toEqual({ inserted: 0, updated: 1 });
      expect((await db.getRows(m))[0]).toEqual(exact);

      // Deleting by key counts only the rows that existed.
      const keys = [changed[0]!, changed[1]!, { device_id: '1', register_id: '1' }];
      expect(await db.deleteRows(dr, keys)).toBe(2);
      expect(await db.getRows(dr)).toEqual(changed.slice(2));
    });
  });
});
