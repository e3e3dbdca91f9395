/**
 * A first load into an empty site (DESIGN §6): every entity, parents and children, is piped
 * straight from the remote into its table. The children's foreign keys are set aside for the COPY
 * and checked once after it; rows whose parents the load left out are skipped, counted and named;
 * and where the keys cannot be set aside (a role that does not own the tables, a site reader holding
 * a parent table) the load keeps them and checks each row.
 */
import { Client, escapeIdentifier } from 'pg';
import { SiteDatabase } from '../../lib/db/site-database';
import { remoteSql } from '../../lib/db/sync-sql';
import { defaultRegistry } from '../../lib/entities';
import { meterId, registerId } from '../../lib/seed/seed-remote';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import { entity, entityContents, expectedSlice, resetFixture } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 30, registersPerTenant: 40, registersPerMeter: 4 };
const key = (device: number, register: number) => `device_id=${device}, register_id=${register}`;

/** The site's foreign keys, as the migration made them: name, definition, validated. */
async function foreignKeys(site: Client): Promise<string[]> {
  const { rows } = await site.query<{ key: string }>(
    `SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated AS key
     FROM pg_constraint WHERE contype = 'f' ORDER BY 1`,
  );
  return rows.map((row) => row.key);
}

describe('a first load into an empty site', () => {
  let fx: SyncFixture;
  let keysAsMigrated: string[];

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    keysAsMigrated = await foreignKeys(fx.siteClient);
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SEED);
    // Orphans: an association to another tenant's register, one to a register that does not exist.
    await fx.remoteClient.query('INSERT INTO device_register VALUES ($1, $2, 60, true), ($3, $4, 5, false)', [
      meterId(1, 3),
      registerId(2, 1),
      meterId(1, 1),
      registerId(1, 999),
    ]);
  });

  it('loads every entity straight into its table, skips and names the orphans, and leaves the foreign keys as they were', async () => {
    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(entity(result, 'meter')).toMatchObject({ inserted: 30, skipped: 0, remoteRows: 30 });
    expect(entity(result, 'register')).toMatchObject({ inserted: 40, skipped: 0, remoteRows: 40 });
    expect(entity(result, 'device_register')).toMatchObject({
      status: 'ok',
      inserted: 120,
      updated: 0,
      deleted: 0,
      unchanged: 0,
      skipped: 2,
      remoteRows: 122,
      // In the byte order of the keys' text.
      skippedKeys: [key(meterId(1, 1), registerId(1, 999)), key(meterId(1, 3), registerId(2, 1))],
      skippedReasons: [
        `parent missing: register id=${registerId(1, 999)}`,
        `parent missing: register id=${registerId(2, 1)}`,
      ],
    });
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
    expect(await foreignKeys(fx.siteClient)).toEqual(keysAsMigrated);
    // The next run finds nothing to do but the orphans, skipped again.
    const second = await fx.sync();
    expect(entity(second, 'device_register')).toMatchObject({ inserted: 0, unchanged: 120, skipped: 2 });
  });

  it('a dry run and a plan of a first load count the same and leave the site empty, foreign keys and all', async () => {
    // Act
    const dry = await fx.sync({ dryRun: true });
    const plan = await fx.sync({ changes: { max: 200 } });

    // Assert
    for (const run of [dry, plan]) {
      expect(entity(run, 'device_register')).toMatchObject({ inserted: 120, skipped: 2, remoteRows: 122 });
    }
    const changes = entity(plan, 'device_register').changes ?? [];
    expect(changes.filter((c) => c.op === 'insert')).toHaveLength(120);
    expect(changes.filter((c) => c.op === 'skip')).toEqual([
      {
        op: 'skip',
        key: { device_id: String(meterId(1, 1)), register_id: String(registerId(1, 999)) },
        reason: `parent missing: register id=${registerId(1, 999)}`,
      },
      {
        op: 'skip',
        key: { device_id: String(meterId(1, 3)), register_id: String(registerId(2, 1)) },
        reason: `parent missing: register id=${registerId(2, 1)}`,
      },
    ]);
    const { rows } = await fx.siteClient.query('SELECT count(*)::int AS n FROM device_register');
    expect(rows[0].n).toBe(0);
    expect(await foreignKeys(fx.siteClient)).toEqual(keysAsMigrated);
  });

  it('a child whose parent is not loaded in the run (it had rows) goes through the stage, with the same counts', async () => {
    // Arrange: the site already holds the tenant's meters.
    await fx.sync({ entities: ['meter'] });

    // Act
    const result = await fx.sync();

    // Assert
    expect(entity(result, 'meter')).toMatchObject({ inserted: 0, unchanged: 30 });
    expect(entity(result, 'device_register')).toMatchObject({ inserted: 120, skipped: 2, remoteRows: 122 });
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
  });

  it('a load the site refuses (a check the remote does not have) fails only that entity, and its foreign keys stay', async () => {
    // Arrange
    await fx.siteClient.query(
      'ALTER TABLE device_register ADD CONSTRAINT short_polls CHECK (poll_interval_s < 100)',
    );
    try {
      // Act
      const result = await fx.sync();

      // Assert
      expect(result.status).toBe('partial');
      expect(entity(result, 'meter')).toMatchObject({ status: 'ok', inserted: 30 });
      expect(entity(result, 'device_register')).toMatchObject({
        status: 'failed',
        error: { code: 'SITE_REJECTED_ROW' },
      });
      const { rows } = await fx.siteClient.query('SELECT count(*)::int AS n FROM device_register');
      expect(rows[0].n).toBe(0);
    } finally {
      await fx.siteClient.query('ALTER TABLE device_register DROP CONSTRAINT short_polls');
    }
    expect(await foreignKeys(fx.siteClient)).toEqual(keysAsMigrated);
  });

  describe('where the foreign keys cannot be set aside', () => {
    let role: LoginRole;
    beforeAll(async () => {
      role = await createLoginRole([fx.site.name]);
    });
    afterAll(() => role.drop());

    it('a role that does not own the tables loads with the keys in place, row by row, with the same result', async () => {
      // Arrange
      const site = new URL(fx.site.url);
      site.username = role.name;
      site.password = role.password;

      // Act
      const result = await fx.sync({ site: site.toString() });

      // Assert
      expect(result.status).toBe('ok');
      expect(entity(result, 'device_register')).toMatchObject({ inserted: 120, skipped: 2, remoteRows: 122 });
      expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
      expect(await foreignKeys(fx.siteClient)).toEqual(keysAsMigrated);
    });
  });

  it('a site reader holding a parent table does not stall the load: after a short wait it keeps the keys and loads', async () => {
    // Arrange: a site session in the middle of a read of `register`.
    const reader = new Client({ connectionString: fx.site.url });
    await reader.connect();
    await reader.query('BEGIN');
    await reader.query(`SELECT count(*) FROM ${escapeIdentifier('register')}`);
    try {
      // Act
      const result = await fx.sync();

      // Assert
      expect(result.status).toBe('ok');
      expect(entity(result, 'device_register')).toMatchObject({ inserted: 120, skipped: 2 });
    } finally {
      await reader.query('ROLLBACK');
      await reader.end();
    }
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
    expect(await foreignKeys(fx.siteClient)).toEqual(keysAsMigrated);
  });

  it('the remote finds the rows a load kept back by joining each parent once, never by a probe per row', async () => {
    // Arrange: the query as the load sends it, typed as the site has the table.
    const e = await new SiteDatabase(fx.siteClient).resolve(defaultRegistry.get('device_register'));
    const sql = remoteSql.unloadable(e, (name) => defaultRegistry.get(name));

    // Act
    const { rows: plan } = await fx.remoteClient.query<{ 'QUERY PLAN': unknown }>(
      `EXPLAIN (FORMAT JSON) ${sql}`,
      [1, 100],
    );
    const { rows } = await fx.remoteClient.query(sql, [1, 100]);

    // Assert: a subplan under OR may run once for each of a million rows (310-370 ms for 100,000).
    expect(JSON.stringify(plan).match(/"Subplan Name":"[^"]*"/g) ?? []).toEqual([]);
    expect(rows.map((row) => [row.device_id, row.register_id, row.m0, row.m1, row.skipped])).toEqual([
      [String(meterId(1, 1)), String(registerId(1, 999)), false, true, '2'],
      [String(meterId(1, 3)), String(registerId(2, 1)), false, true, '2'],
    ]);
  });
});
