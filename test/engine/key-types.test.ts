/**
 * Every key type an entity may declare (issue 15): an entity defined as metadata in the test, keyed
 * by each type (and by composite keys of mixed types), through the same sequence of runs: a first
 * load into a site holding other tenants' rows, no change, a few changes, broad changes with
 * deletes. Sizes take it through the fingerprint buckets and staging; integer keys also through
 * the key-hash comparison (the paths a non-integer key has not).
 */
import { escapeIdentifier as q } from 'pg';
import { type EntityMetadata, EntityRegistry } from '../../lib/entities';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

interface KeyShape {
  name: string;
  /** Key column → its SQL type. */
  keys: Record<string, string>;
  /** Each key column's value for row number `i` (an SQL expression over the integer `i`). */
  values: Record<string, string>;
}

const SHAPES: KeyShape[] = [
  { name: 'text', keys: { k: 'text' }, values: { k: `'kéy-' || lpad(i::text, 6, '0') || ' ⚡'` } },
  { name: 'varchar', keys: { k: 'varchar(40)' }, values: { k: `'v' || i` } },
  { name: 'smallint', keys: { k: 'smallint' }, values: { k: `(i - 10000)::smallint` } },
  { name: 'numeric', keys: { k: 'numeric(12,3)' }, values: { k: `i * 1.5 - 100.125` } },
  { name: 'date', keys: { k: 'date' }, values: { k: `date '1990-01-01' + i` } },
  {
    name: 'timestamptz',
    keys: { k: 'timestamptz' },
    values: { k: `timestamptz '2000-01-01 00:00:00+00' + i * interval '90 seconds'` },
  },
  { name: 'text_integer', keys: { g: 'text', n: 'integer' }, values: { g: `'grp' || i % 7`, n: 'i' } },
  { name: 'uuid', keys: { id: 'uuid' }, values: { id: 'md5(i::text)::uuid' } },
  {
    name: 'uuid_date',
    keys: { id: 'uuid', day: 'date' },
    values: { id: 'md5((i % 97)::text)::uuid', day: `date '2020-01-01' + i` },
  },
  {
    name: 'date_text_numeric',
    keys: { day: 'date', code: 'text', n: 'numeric' },
    values: { day: `date '2020-01-01' + i % 11`, code: `'c' || i % 13`, n: 'i / 4.0' },
  },
];

const ROWS = 3_000;

function entityOf(shape: KeyShape): EntityMetadata {
  const keys = Object.keys(shape.keys);
  return {
    name: `keyed_${shape.name}`,
    table: `keyed_${shape.name}`,
    keyColumns: keys,
    columns: [...keys, 'tenant_id', 'label', 'amount'],
    tenantColumn: 'tenant_id',
  };
}

function createTable(shape: KeyShape, meta: EntityMetadata): string {
  const keys = Object.entries(shape.keys).map(([k, type]) => `${q(k)} ${type} NOT NULL`);
  return `CREATE TABLE ${q(meta.table)} (${keys.join(', ')}, tenant_id integer NOT NULL, label text, amount numeric,
    PRIMARY KEY (${Object.keys(shape.keys)
      .map((k) => q(k))
      .join(', ')}))`;
}

/** Rows `from`..`to` of a tenant: the key from `i`, the tenant's rows apart by an offset of `i`. */
function insertRows(shape: KeyShape, meta: EntityMetadata, tenant: number, from: number, to: number): string {
  const keyValues = Object.keys(shape.keys).map((k) =>
    shape.values[k]!.replace(/\bi\b/g, `(i + ${tenant * 20_000})`),
  );
  return `INSERT INTO ${q(meta.table)} SELECT ${keyValues.join(', ')}, ${tenant}, 'row ' || i, i * 0.25
    FROM generate_series(${from}, ${to}) AS i`;
}

describe.each(SHAPES)('an entity keyed by $name', (shape) => {
  const meta = entityOf(shape);
  const registry = new EntityRegistry([meta]);
  const table = q(meta.table);
  const order = Object.keys(shape.keys)
    .map((k) => q(k))
    .join(', ');
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.remoteClient.query(createTable(shape, meta));
    await fx.siteClient.query(createTable(shape, meta));
  });
  afterAll(() => fx.close());

  const sync = () => fx.sync({ registry, allowMassDelete: true });
  const text = async (client: SyncFixture['siteClient'], where: string) =>
    (
      await client.query({
        text: `SELECT * FROM ${table} WHERE ${where} ORDER BY ${order}`,
        rowMode: 'array',
        types: { getTypeParser: () => (v: string) => v },
      })
    ).rows;
  async function expectEqualToSlice(): Promise<void> {
    expect(await text(fx.siteClient, 'true')).toEqual(await text(fx.remoteClient, 'tenant_id = 1'));
  }

  it('syncs a first load, no change, a few changes and broad changes with deletes', async () => {
    // Arrange: the remote holds two tenants; the site holds rows of tenant 2 (a site restored from another).
    await fx.remoteClient.query(insertRows(shape, meta, 1, 1, ROWS));
    await fx.remoteClient.query(insertRows(shape, meta, 2, 1, ROWS / 3));
    await fx.siteClient.query(insertRows(shape, meta, 2, 1, 50));

    // Act and assert: the first load replaces the other tenant's rows.
    const first = await sync();
    expect(first.status).toBe('ok');
    expect(first.entities[0]).toMatchObject({ inserted: ROWS, deleted: 50, updated: 0 });
    await expectEqualToSlice();

    const none = await sync();
    expect(none.entities[0]).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: ROWS });

    // A few changes.
    await fx.remoteClient.query(
      `UPDATE ${table} SET label = label || ' ✎' WHERE tenant_id = 1 AND amount IN (10, 20.5, 300)`,
    );
    await fx.remoteClient.query(`DELETE FROM ${table} WHERE tenant_id = 1 AND amount IN (1, 500)`);
    await fx.remoteClient.query(insertRows(shape, meta, 1, ROWS + 1, ROWS + 2));
    const few = await sync();
    expect(few.entities[0]).toMatchObject({ inserted: 2, updated: 3, deleted: 2, unchanged: ROWS - 5 });
    await expectEqualToSlice();

    // Broad changes: 40% updated, 10% deleted, 10% new; another tenant's rows change too.
    await fx.remoteClient.query(
      `UPDATE ${table} SET amount = amount + 1 WHERE tenant_id = 1 AND (amount * 4)::int % 5 < 2`,
    );
    await fx.remoteClient.query(`DELETE FROM ${table} WHERE tenant_id = 1 AND (amount * 4)::int % 10 = 2`);
    await fx.remoteClient.query(insertRows(shape, meta, 1, ROWS + 3, ROWS + 2 + ROWS / 10));
    await fx.remoteClient.query(`UPDATE ${table} SET label = 'other' WHERE tenant_id = 2`);
    const { rows } = await fx.remoteClient.query(
      `SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = 1`,
    );
    const broad = await sync();
    expect(broad.status).toBe('ok');
    expect(broad.entities[0]!.remoteRows).toBe(rows[0].n);
    expect(broad.entities[0]!.deleted).toBeGreaterThan(ROWS / 20);
    expect(broad.entities[0]!.updated).toBeGreaterThan(ROWS / 4);
    await expectEqualToSlice();
    expect((await sync()).entities[0]).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
  });
});
