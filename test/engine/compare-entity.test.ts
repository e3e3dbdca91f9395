/**
 * The comparison paths of DESIGN §6, each reached on purpose and checked twice: what the
 * comparison stages and proves equal, and the exact counts and rows of the sync that follows.
 */
import type { Client } from 'pg';
import { connect } from '../../lib/db/connect';
import { RemoteSnapshot } from '../../lib/db/remote-database';
import { SiteDatabase } from '../../lib/db/site-database';
import { type Comparison, compareEntity } from '../../lib/engine/compare-entity';
import { defaultRegistry, type EntityMetadata, EntityRegistry, meter, register } from '../../lib/entities';
import { expectedSlice, resetFixture, SHIPPED_TABLES, tableRows } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const TENANT = 1;
const ROWS = 20_000;

/** The first ids of tenant 1 (ids are tenant * 10^8 + n): changes there fill the first key-range buckets. */
const FIRST_IDS = (n: number) => `id <= ${TENANT * 100_000_000 + n}`;

/**
 * The comparison of one entity as a run would make it, in a transaction rolled back afterwards;
 * `asked` collects the statements the remote was sent.
 */
async function compareOn(
  fx: SyncFixture,
  meta: EntityMetadata = register,
  asked: string[] = [],
): Promise<Comparison> {
  const [site, remote] = await Promise.all([connect(fx.site.url, 'site'), connect(fx.remote.url, 'remote')]);
  try {
    await site.query('BEGIN');
    const db = new SiteDatabase(site);
    const snapshot = await RemoteSnapshot.open(remote, TENANT);
    const query = snapshot.query.bind(snapshot);
    const copyOut = snapshot.copyOut.bind(snapshot);
    jest.spyOn(snapshot, 'query').mockImplementation((sql, ...rest) => {
      asked.push(sql);
      return query(sql, ...rest);
    });
    jest.spyOn(snapshot, 'copyOut').mockImplementation((sql, ...rest) => {
      asked.push(sql);
      return copyOut(sql, ...rest);
    });
    const e = await db.resolve(meta);
    return await compareEntity(
      {
        site: db,
        remote: snapshot,
        tenantId: TENANT,
        loaded: () => false,
        metaOf: (name) => defaultRegistry.get(name),
        skipSample: 5,
        parents: (parent) => {
          throw new Error(`${parent}: these entities have no parents`);
        },
      },
      e,
    );
  } finally {
    await site.query('ROLLBACK').catch(() => {});
    await Promise.all([site.end(), remote.end()]);
  }
}

describe('comparing an entity', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(TENANT);
  });
  afterAll(() => fx.close());

  const load = async (registers = ROWS) => {
    await resetFixture(fx);
    await fx.seed({
      tenants: [TENANT, 2],
      metersPerTenant: 20,
      registersPerTenant: registers,
      registersPerMeter: 5,
    });
    const first = await fx.sync();
    expect(first.status).toBe('ok');
  };

  const compare = (meta: EntityMetadata = register, asked?: string[]) => compareOn(fx, meta, asked);

  const updateRegisters = (where: string) =>
    fx.remoteClient.query(`UPDATE register SET scale = scale + 1 WHERE tenant_id = ${TENANT} AND ${where}`);

  /** Syncs and checks the counts against the changes made and the rows against the slice. */
  const syncAndCheck = async (
    expected: { inserted: number; updated: number; deleted: number },
    rows: number,
  ) => {
    const result = await fx.sync();
    expect(result.status).toBe('ok');
    const e = result.entities.find((x) => x.entity === 'register')!;
    expect({ inserted: e.inserted, updated: e.updated, deleted: e.deleted, unchanged: e.unchanged }).toEqual({
      ...expected,
      unchanged: rows - expected.updated - expected.deleted,
    });
    expect(await tableRows(fx.siteClient, SHIPPED_TABLES.register!)).toEqual(
      (await expectedSlice(fx.remoteClient, TENANT)).register,
    );
  };

  it('proves an unchanged slice equal without staging anything', async () => {
    await load();

    // With the fingerprint a run may keep: the remote's, which is the site's.
    expect(await compare()).toEqual({
      mode: 'equal',
      rows: ROWS,
      skipped: 0,
      skips: [],
      memo: expect.objectContaining({ remembered: false, packed: expect.any(String) }),
    });
  });

  it('cuts a uuid key at bounds sampled from the site: a few changes are staged by their key ranges, found through the index', async () => {
    // Arrange: an entity keyed by uuid, defined as metadata here.
    const reading: EntityMetadata = {
      name: 'reading',
      table: 'reading',
      keyColumns: ['id'],
      columns: ['id', 'tenant_id', 'value'],
      tenantColumn: 'tenant_id',
    };
    const table =
      'CREATE TABLE IF NOT EXISTS reading (id uuid PRIMARY KEY, tenant_id integer NOT NULL, value numeric)';
    await Promise.all([fx.remoteClient.query(table), fx.siteClient.query(table)]);
    await Promise.all([fx.remoteClient.query('TRUNCATE reading'), fx.siteClient.query('TRUNCATE reading')]);
    await fx.remoteClient.query(
      `INSERT INTO reading SELECT md5(i::text)::uuid, ${TENANT} + i % 2, i / 7.0 FROM generate_series(1, ${2 * ROWS}) AS i`,
    );
    const registry = new EntityRegistry([reading]);
    expect((await fx.sync({ registry })).status).toBe('ok');
    const { rowCount: changed } = await fx.remoteClient.query(
      `UPDATE reading SET value = value + 1 WHERE tenant_id = ${TENANT} AND value::int % 2000 = 3`,
    );
    const asked: string[] = [];

    // Act
    const comparison = await compare(reading, asked);

    // Assert
    // 128 buckets of about 160 rows: the key hashes of the few that differ, read by key range on
    // both sides, then the changed rows alone.
    expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: changed });
    expect(asked[0]).toContain('width_bucket');
    expect(asked[1]).toContain(`current_setting('meter_sync.ranges_lo')::uuid[]`);
    const synced = await fx.sync({ registry });
    expect(synced.entities[0]).toMatchObject({
      status: 'ok',
      inserted: 0,
      deleted: 0,
      updated: changed,
      unchanged: ROWS - (changed ?? 0),
    });
    const rows = (client: typeof fx.siteClient) =>
      client.query(`SELECT id::text, value::text FROM reading WHERE tenant_id = ${TENANT} ORDER BY id`);
    expect((await rows(fx.siteClient)).rows).toEqual((await rows(fx.remoteClient)).rows);
  });

  it('stages whole the few buckets holding a handful of changes, and compares only their site rows', async () => {
    await load();
    await updateRegisters(`id % 5000 = 7`);
    await fx.remoteClient.query(`DELETE FROM register WHERE tenant_id = ${TENANT} AND id % 9000 = 11`);

    const comparison = await compare();

    // Key ranges of the integer id: the site finds their rows through its index.
    expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'ranges' } });
    if (comparison.mode !== 'staged') throw new Error('not staged');
    // 128 buckets of about 160 rows, six of them differ: a thousand rows at most, never the slice.
    expect(comparison.staged).toBeLessThan(1_000);
    expect(comparison.knownEqual).toBeGreaterThan(ROWS - 1_000);
    await syncAndCheck({ inserted: 0, updated: 4, deleted: 2 }, ROWS);
  });

  it('compares key hashes by slot when changes are everywhere, and fetches only the changed rows', async () => {
    await load();
    await updateRegisters(`id % 10 = 3`);
    await fx.remoteClient.query(`DELETE FROM register WHERE tenant_id = ${TENANT} AND id % 20 = 4`);
    await fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
       SELECT 190000000 + i, ${TENANT}, 'new', 1, 'uint16', NULL, 1.5, NULL, now() FROM generate_series(1, 700) AS i`,
    );

    const asked: string[] = [];
    const comparison = await compare(register, asked);

    // Dense ids: both sides stream their key hashes as they lie, neither sorts.
    const keyHashes = asked.filter((sql) => sql.includes('FORMAT binary'));
    expect(keyHashes).toHaveLength(1);
    expect(keyHashes[0]).not.toContain('ORDER BY');
    // Staged: the 2,000 updated and the 700 new rows, nothing else; 1,000 deleted are only on the site.
    expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: 2_700 });
    if (comparison.mode !== 'staged') throw new Error('not staged');
    expect(comparison.knownEqual).toBe(ROWS - 2_000 - 1_000);
    await syncAndCheck({ inserted: 700, updated: 2_000, deleted: 1_000 }, ROWS);
  });

  it('merges only the differing buckets when changes fill some of them', async () => {
    await load(60_000);
    // A quarter of the rows of the first 15% of the key range: too many to stage its buckets whole.
    const changed = (await updateRegisters(`${FIRST_IDS(9_000)} AND id % 4 = 0`)).rowCount ?? 0;
    expect(changed).toBeGreaterThan(0);

    const comparison = await compare();

    expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: changed });
    await syncAndCheck({ inserted: 0, updated: changed, deleted: 0 }, 60_000);
  });

  it('streams every key once when changes fill most buckets but not all, not the differing ones range by range', async () => {
    await load(60_000);
    // One row in 50 of the first three quarters of the key range: 192 of its 256 buckets differ.
    const changed = (await updateRegisters(`${FIRST_IDS(45_000)} AND id % 50 = 0`)).rowCount ?? 0;
    expect(changed).toBeGreaterThan(0);

    const asked: string[] = [];
    const comparison = await compare(register, asked);

    const keyHashes = asked.filter((sql) => sql.includes('FORMAT binary'));
    expect(keyHashes).toHaveLength(1);
    expect(keyHashes[0]).not.toContain('ranges_lo');
    expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: changed });
    if (comparison.mode !== 'staged') throw new Error('not staged');
    expect(comparison.knownEqual).toBe(60_000 - changed);
    await syncAndCheck({ inserted: 0, updated: changed, deleted: 0 }, 60_000);
  });

  it('reaches rows beyond both ends of the site keys through the outer ranges', async () => {
    await load(60_000);
    // New rows above the site's last key (other tenants' keys lie further up), the first rows gone,
    // and enough changes between that the buckets are compared key by key.
    await fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
       SELECT ${TENANT * 100_000_000 + 5_000_000} + i, ${TENANT}, 'new', 1, 'uint16', NULL, 1.5, NULL, now()
       FROM generate_series(1, 5) AS i`,
    );
    await fx.remoteClient.query(`DELETE FROM register WHERE tenant_id = ${TENANT} AND ${FIRST_IDS(3)}`);
    await updateRegisters(`id % 2000 = 17`);

    const comparison = await compare();

    expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: 5 + 30 });
    await syncAndCheck({ inserted: 5, updated: 30, deleted: 3 }, 60_000);
  });

  it('stages the whole slice when most rows changed, since fetching by key would cost more', async () => {
    await load();
    await updateRegisters(`id % 10 <> 0`);

    const comparison = await compare();

    expect(comparison).toMatchObject({
      mode: 'staged',
      region: { kind: 'all' },
      staged: ROWS,
      knownEqual: 0,
    });
    await syncAndCheck({ inserted: 0, updated: 18_000, deleted: 0 }, ROWS);
  });

  it('merges composite integer keys in their column order', async () => {
    await load(2_000);
    // Associations of tenant 1: 20 meters × 5 registers. Change most of them, drop some, add some.
    await fx.remoteClient.query(
      `UPDATE device_register SET poll_interval_s = poll_interval_s + 1 WHERE device_id / 100000000 = ${TENANT} AND register_id % 3 <> 0`,
    );
    await fx.remoteClient.query(
      `DELETE FROM device_register WHERE device_id / 100000000 = ${TENANT} AND register_id % 7 = 0`,
    );
    const before = await fx.siteClient.query('SELECT count(*)::int AS n FROM device_register');

    const result = await fx.sync();

    expect(result.status).toBe('ok');
    const e = result.entities.find((x) => x.entity === 'device_register')!;
    const slice = (await expectedSlice(fx.remoteClient, TENANT)).device_register!;
    expect(await tableRows(fx.siteClient, SHIPPED_TABLES.device_register!)).toEqual(slice);
    expect(e.inserted).toBe(0);
    expect(e.deleted).toBe(before.rows[0].n - slice.length);
    expect(e.updated + e.unchanged).toBe(slice.length);
    expect(e.updated).toBeGreaterThan(slice.length / 2);
  });

  describe('a table large enough to be sampled first', () => {
    // About 20 MB on the site: over the size from which a key range is sampled before fingerprinting.
    const LARGE = 150_000;
    const fingerprinted = (asked: string[]) => asked.some((sql) => sql.includes('bit_xor'));

    it('compares every key at once when the sample finds changes throughout, without fingerprinting', async () => {
      await load(LARGE);
      // 2% churn spread evenly: 1% updated, 0.5% deleted, 0.5% new.
      await updateRegisters(`id % 100 = 3`);
      await fx.remoteClient.query(`DELETE FROM register WHERE tenant_id = ${TENANT} AND id % 200 = 4`);
      await fx.remoteClient.query(
        `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
         SELECT 190000000 + i, ${TENANT}, 'new', 1, 'uint16', NULL, 1.5, NULL, now() FROM generate_series(1, 750) AS i`,
      );
      const asked: string[] = [];

      const comparison = await compare(register, asked);

      expect(fingerprinted(asked)).toBe(false);
      expect(comparison).toMatchObject({
        mode: 'staged',
        region: { kind: 'keys' },
        staged: 1_500 + 750,
        knownEqual: LARGE - 1_500 - 750,
        siteRows: LARGE,
      });
      await syncAndCheck({ inserted: 750, updated: 1_500, deleted: 750 }, LARGE);
    });

    it('fingerprints buckets when the sample finds no change, and moves only the changed keys', async () => {
      await load(LARGE);
      await updateRegisters(`id % 7500 = 7`);
      const asked: string[] = [];

      const comparison = await compare(register, asked);

      expect(fingerprinted(asked)).toBe(true);
      // Twenty buckets of about 150 rows: compared key by key, and only the changed rows fetched.
      expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: 20 });
      await syncAndCheck({ inserted: 0, updated: 20, deleted: 0 }, LARGE);
    });
  });

  describe('a uuid-keyed table large enough to be sampled first', () => {
    const reading: EntityMetadata = {
      name: 'big_reading',
      table: 'big_reading',
      keyColumns: ['id'],
      columns: ['id', 'tenant_id', 'body'],
      tenantColumn: 'tenant_id',
    };
    const registry = new EntityRegistry([reading]);
    const TABLE =
      'CREATE TABLE IF NOT EXISTS big_reading (id uuid PRIMARY KEY, tenant_id integer NOT NULL, body text)';
    const LARGE = 150_000;

    /** About 20 MB on the site, in sync with the remote. */
    async function arrangeLarge(): Promise<void> {
      await Promise.all([fx.remoteClient.query(TABLE), fx.siteClient.query(TABLE)]);
      await Promise.all([
        fx.remoteClient.query('TRUNCATE big_reading'),
        fx.siteClient.query('TRUNCATE big_reading'),
      ]);
      await fx.remoteClient.query(
        `INSERT INTO big_reading SELECT md5('r' || i)::uuid, ${TENANT}, repeat('reading ' || i || ' ', 8)
         FROM generate_series(1, ${LARGE}) AS i`,
      );
      expect((await fx.sync({ registry })).status).toBe('ok');
      await fx.siteClient.query('ANALYZE big_reading');
    }

    it('compares every key at once when a sampled key range finds changes throughout, without fingerprinting', async () => {
      // Arrange
      await arrangeLarge();
      const { rowCount: changed } = await fx.remoteClient.query(
        `UPDATE big_reading SET body = body || '!' WHERE abs(hashtext(id::text)) % 50 = 7`,
      );
      const asked: string[] = [];

      // Act
      const comparison = await compare(reading, asked);

      // Assert
      expect(asked.some((sql) => sql.includes('bit_xor'))).toBe(false);
      expect(comparison).toMatchObject({
        mode: 'staged',
        region: { kind: 'keys' },
        staged: changed,
        knownEqual: LARGE - (changed ?? 0),
        siteRows: LARGE,
      });
      const synced = await fx.sync({ registry });
      expect(synced.entities[0]).toMatchObject({
        status: 'ok',
        updated: changed,
        unchanged: LARGE - (changed ?? 0),
      });
    });

    it('fingerprints when the sampled key range holds a single change: a uuid sample is smaller, for the same rate', async () => {
      // Arrange: one row changed; whichever range is sampled holds one change at most.
      await arrangeLarge();
      const { rows } = await fx.remoteClient.query<{ id: string }>(
        `UPDATE big_reading SET body = body || '#' WHERE id = (SELECT id FROM big_reading ORDER BY id OFFSET 7000 LIMIT 1) RETURNING id::text`,
      );
      const asked: string[] = [];

      // Act
      const comparison = await compare(reading, asked);

      // Assert
      expect(rows).toHaveLength(1);
      expect(asked.some((sql) => sql.includes('bit_xor'))).toBe(true);
      // The one differing bucket is staged whole, a few hundred rows, and one of them is applied.
      expect(comparison).toMatchObject({ mode: 'staged', siteRows: LARGE });
      expect(comparison.mode === 'staged' && comparison.staged).toBeLessThan(2_000);
      const synced = await fx.sync({ registry });
      expect(synced.entities[0]).toMatchObject({ status: 'ok', inserted: 0, updated: 1, deleted: 0 });
    });

    it('counts the site rows from the diff when keys come and go: rows new on the remote, rows gone from it', async () => {
      // Arrange: rows changed, deleted and added on the remote.
      await arrangeLarge();
      const { rowCount: changed } = await fx.remoteClient.query(
        `UPDATE big_reading SET body = body || '?' WHERE abs(hashtext(id::text)) % 50 = 11`,
      );
      const { rowCount: deleted } = await fx.remoteClient.query(
        `DELETE FROM big_reading WHERE abs(hashtext(id::text)) % 50 = 12`,
      );
      const { rowCount: added } = await fx.remoteClient.query(
        `INSERT INTO big_reading SELECT md5('new' || i)::uuid, ${TENANT}, 'new ' || i FROM generate_series(1, 2000) AS i`,
      );

      // Act
      const comparison = await compare(reading, []);

      // Assert: the site's rows as the table holds them, counted without a scan of their own.
      expect(comparison).toMatchObject({
        mode: 'staged',
        region: { kind: 'keys' },
        staged: (changed ?? 0) + (added ?? 0),
        knownEqual: LARGE - (changed ?? 0) - (deleted ?? 0),
        siteRows: LARGE,
      });
      const synced = await fx.sync({ registry });
      expect(synced.entities[0]).toMatchObject({
        status: 'ok',
        inserted: added,
        updated: changed,
        deleted,
        unchanged: LARGE - (changed ?? 0) - (deleted ?? 0),
      });
    });
  });

  describe('an entity whose integer keys are too sparse for slots', () => {
    const item: EntityMetadata = {
      name: 'sparse_item',
      table: 'sparse_item',
      keyColumns: ['id'],
      columns: ['id', 'tenant_id', 'body'],
      tenantColumn: 'tenant_id',
    };
    const registry = new EntityRegistry([meter, register, item]);
    const TABLE =
      'CREATE TABLE IF NOT EXISTS sparse_item (id bigint PRIMARY KEY, tenant_id integer NOT NULL, body text)';

    beforeAll(async () => {
      await Promise.all([fx.remoteClient.query(TABLE), fx.siteClient.query(TABLE)]);
    });

    it('compares the key hashes of both sides in a table, in any order: neither server sorts', async () => {
      await Promise.all([
        fx.remoteClient.query('TRUNCATE sparse_item'),
        fx.siteClient.query('TRUNCATE sparse_item'),
      ]);
      // 3,000 ids a billion apart, some negative: far more keys between them than rows.
      await fx.remoteClient.query(
        `INSERT INTO sparse_item SELECT (i - 1000)::bigint * 1000000007, 1, 'b' || i FROM generate_series(1, 3000) AS i
         UNION ALL SELECT i, 2, 'other' FROM generate_series(1, 50) AS i`,
      );
      expect((await fx.sync({ registry, entities: ['sparse_item'] })).status).toBe('ok');
      const [{ updated, deleted }] = (
        await fx.remoteClient.query(
          `SELECT count(*) FILTER (WHERE id % 3 = 0 AND id % 10 <> 1)::int AS updated,
                  count(*) FILTER (WHERE id % 10 = 1)::int AS deleted FROM sparse_item WHERE tenant_id = 1`,
        )
      ).rows;
      await fx.remoteClient.query(
        `UPDATE sparse_item SET body = body || '!' WHERE tenant_id = 1 AND id % 3 = 0`,
      );
      await fx.remoteClient.query(`DELETE FROM sparse_item WHERE tenant_id = 1 AND id % 10 = 1`);
      await fx.remoteClient.query(`INSERT INTO sparse_item VALUES (9000000000000000000, 1, 'last')`);
      const asked: string[] = [];

      const comparison = await compare(item, asked);
      const result = await fx.sync({ registry, entities: ['sparse_item'] });

      const binary = asked.filter((sql) => sql.includes('FORMAT binary'));
      expect(binary).toHaveLength(1);
      expect(binary[0]).not.toContain('ORDER BY');
      expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' } });
      expect(result.entities[0]).toMatchObject({ status: 'ok', inserted: 1, updated, deleted });
      const rows = async (client: Client) =>
        (await client.query('SELECT id::text, body FROM sparse_item WHERE tenant_id = 1 ORDER BY id')).rows;
      expect(await rows(fx.siteClient)).toEqual(await rows(fx.remoteClient));
    });
  });

  describe('an entity keyed by three integer columns, more than a table holds', () => {
    const slot: EntityMetadata = {
      name: 'triple_item',
      table: 'triple_item',
      keyColumns: ['a', 'b', 'c'],
      columns: ['a', 'b', 'c', 'tenant_id', 'body'],
      tenantColumn: 'tenant_id',
    };
    const registry = new EntityRegistry([meter, register, slot]);
    const TABLE = `CREATE TABLE IF NOT EXISTS triple_item (a bigint, b integer, c smallint, tenant_id integer NOT NULL,
      body text, PRIMARY KEY (a, b, c))`;

    beforeAll(async () => {
      await Promise.all([fx.remoteClient.query(TABLE), fx.siteClient.query(TABLE)]);
    });

    it('merges the key hashes of both sides in key order', async () => {
      await fx.remoteClient.query(
        `INSERT INTO triple_item SELECT i % 7 - 3, i / 7 - 100, (i % 5)::smallint, 1, 'b' || i FROM generate_series(1, 3000) AS i
         UNION ALL SELECT i, 1000000, 0, 2, 'other' FROM generate_series(1, 50) AS i`,
      );
      expect((await fx.sync({ registry, entities: ['triple_item'] })).status).toBe('ok');
      await fx.remoteClient.query(
        `UPDATE triple_item SET body = body || '!' WHERE tenant_id = 1 AND b % 3 = 0`,
      );
      await fx.remoteClient.query(`DELETE FROM triple_item WHERE tenant_id = 1 AND b % 10 = 1`);
      await fx.remoteClient.query(
        `INSERT INTO triple_item VALUES (-9000000000000000000, -5, -1, 1, 'first')`,
      );
      const asked: string[] = [];

      const comparison = await compare(slot, asked);
      const result = await fx.sync({ registry, entities: ['triple_item'] });

      const binary = asked.filter((sql) => sql.includes('FORMAT binary'));
      expect(binary).toHaveLength(1);
      expect(binary[0]).toContain('ORDER BY 1, 2, 3');
      expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' } });
      expect(result.entities[0]).toMatchObject({ status: 'ok', inserted: 1 });
      const rows = async (client: Client) =>
        (
          await client.query(
            'SELECT a::text, b, c, body FROM triple_item WHERE tenant_id = 1 ORDER BY a, b, c',
          )
        ).rows;
      expect(await rows(fx.siteClient)).toEqual(await rows(fx.remoteClient));
    });
  });

  describe('an entity keyed by text', () => {
    const label: EntityMetadata = {
      name: 'meter_label',
      table: 'meter_label',
      keyColumns: ['code'],
      columns: ['code', 'tenant_id', 'body'],
      tenantColumn: 'tenant_id',
    };
    const registry = new EntityRegistry([meter, register, label]);
    const TABLE =
      'CREATE TABLE IF NOT EXISTS meter_label (code text PRIMARY KEY, tenant_id integer NOT NULL, body text)';

    beforeAll(async () => {
      await Promise.all([fx.remoteClient.query(TABLE), fx.siteClient.query(TABLE)]);
    });

    const labels = async (client: Client) =>
      (await client.query('SELECT code, body FROM meter_label ORDER BY code COLLATE "C"')).rows;

    it('is diffed from the remote hashes by the site, since its order depends on collations', async () => {
      await Promise.all([
        fx.remoteClient.query('TRUNCATE meter_label'),
        fx.siteClient.query('TRUNCATE meter_label'),
      ]);
      await fx.remoteClient.query(
        `INSERT INTO meter_label SELECT 'Ä-' || i, 1, 'b' || i FROM generate_series(1, 5000) AS i
         UNION ALL SELECT 'other-' || i, 2, 'x' FROM generate_series(1, 50) AS i`,
      );
      expect((await fx.sync({ registry, entities: ['meter_label'] })).status).toBe('ok');
      await fx.remoteClient.query(
        `UPDATE meter_label SET body = body || '!' WHERE right(code, 1) IN ('1', '2')`,
      );
      await fx.remoteClient.query(`DELETE FROM meter_label WHERE right(code, 1) = '3'`);

      const comparison = await compare(label);
      const result = await fx.sync({ registry, entities: ['meter_label'] });

      expect(comparison).toMatchObject({ mode: 'staged', region: { kind: 'keys' }, staged: 1_000 });
      expect(result.entities[0]).toMatchObject({
        status: 'ok',
        inserted: 0,
        updated: 1_000,
        deleted: 500,
        unchanged: 3_500,
      });
      expect(await labels(fx.siteClient)).toEqual(
        (
          await fx.remoteClient.query(
            `SELECT code, body FROM meter_label WHERE tenant_id = 1 ORDER BY code COLLATE "C"`,
          )
        ).rows,
      );

      // Two changes now: only their key-hash buckets (of 64, about 55 rows each) are staged.
      await fx.remoteClient.query(`UPDATE meter_label SET body = 'changed' WHERE code IN ('Ä-10', 'Ä-4000')`);
      const narrowed = await compare(label);
      expect(narrowed).toMatchObject({ mode: 'staged', region: { kind: 'buckets', mask: 63 } });
      expect(narrowed.mode === 'staged' && narrowed.staged).toBeLessThan(200);
      const again = await fx.sync({ registry, entities: ['meter_label'] });
      expect(again.entities[0]).toMatchObject({ status: 'ok', updated: 2, deleted: 0, inserted: 0 });
    });
  });
});

/**
 * The fingerprints are computed by two servers: they must agree when those run different
 * PostgreSQL versions. `SECOND_TEST_DATABASE_URL` (set by .ci/run when the machine's PostgreSQL 15
 * answers) puts the remote there, the site on the run's server.
 */
const secondServer = process.env.SECOND_TEST_DATABASE_URL;
(secondServer ? describe : describe.skip)('comparing across server versions', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(TENANT, secondServer);
  });
  afterAll(() => fx.close());

  const versions = async () =>
    Promise.all(
      [fx.remoteClient, fx.siteClient].map(
        async (c) => (await c.query('SHOW server_version_num')).rows[0].server_version_num,
      ),
    );

  it('finds no change where there is none, and only the changed buckets where there are a few', async () => {
    const [remoteVersion, siteVersion] = await versions();
    await fx.seed({
      tenants: [TENANT, 2],
      metersPerTenant: 20,
      registersPerTenant: 5_000,
      registersPerMeter: 5,
    });
    expect((await fx.sync()).status).toBe('ok');

    const unchanged = await compareOn(fx);
    await fx.remoteClient.query(
      `UPDATE register SET name = name || '·' WHERE tenant_id = ${TENANT} AND id % 2000 = 5`,
    );
    const narrowed = await compareOn(fx);
    const changed = await fx.sync();

    expect({ remoteVersion, siteVersion, unchanged }).toMatchObject({
      unchanged: { mode: 'equal', rows: 5_000 },
    });
    // Row hashes agree one by one: only the buckets of the 3 changed rows (of 64) are staged.
    expect(narrowed).toMatchObject({ mode: 'staged', region: { kind: 'ranges' } });
    expect(narrowed.mode === 'staged' && narrowed.staged).toBeLessThan(300);
    expect(changed.entities[1]).toMatchObject({ status: 'ok', updated: 3, unchanged: 4_997 });
    expect(await tableRows(fx.siteClient, SHIPPED_TABLES.register!)).toEqual(
      (await expectedSlice(fx.remoteClient, TENANT)).register,
    );
  });
});
