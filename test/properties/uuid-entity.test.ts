/**
 * The properties for an entity with a non-integer key (issue 15): `reading`, keyed by uuid and
 * defined as metadata here, with hostile values (NULLs, unicode, extreme numerics, jsonb) and rows
 * of other tenants on both sides. After a run the site holds exactly the tenant's slice, the
 * counts are the before/after difference, a plan lists exactly that difference, and a second run
 * changes nothing.
 */
import fc from 'fast-check';
import { type Client, escapeIdentifier as q } from 'pg';
import { type Row, TEXT_TYPES } from '../../lib/db/rows';
import { performSync } from '../../lib/engine';
import { type EntityMetadata, EntityRegistry } from '../../lib/entities';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { hostileText, jsonText, nullable, scaleText, timestamptzText } from './arbitraries';
import { propertyParameters, propertyTimeout } from './property-databases';

const reading: EntityMetadata = {
  name: 'reading',
  table: 'reading',
  keyColumns: ['id'],
  columns: ['id', 'tenant_id', 'note', 'value', 'taken_at', 'doc'],
  tenantColumn: 'tenant_id',
};
const registry = new EntityRegistry([reading]);
const COLUMNS = reading.columns;
const TABLE = `CREATE TABLE reading (id uuid PRIMARY KEY, tenant_id integer NOT NULL, note text,
  value numeric(18,6), taken_at timestamptz, doc jsonb)`;

interface ReadingCase {
  tenantId: number;
  remote: Row[];
  site: Row[];
}

/** A pool of keys small enough that remote and site rows often share one, in any letter case. */
const uuid = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.boolean()).map(([n, upper]) => {
  const hex = n.toString(16).padStart(12, '0');
  const text = `0000${n % 3}000-aaaa-4bbb-8ccc-${hex}`;
  return upper ? text.toUpperCase() : text;
});

const values = {
  note: nullable(hostileText),
  value: nullable(scaleText.filter((v) => v !== 'NaN')),
  taken_at: nullable(timestamptzText),
  doc: nullable(jsonText),
};
const readingRow = (tenant: fc.Arbitrary<number>) =>
  fc.record({ id: uuid, tenant_id: tenant.map(String), ...values });
const unique = (rows: Row[]) => {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const key = row.id!.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

const readingCase: fc.Arbitrary<ReadingCase> = fc
  .record({
    tenantId: fc.constantFrom(1, 2),
    remote: fc.array(readingRow(fc.constantFrom(1, 2, 3)), { maxLength: 30 }).map(unique),
    // The site: some rows of the remote (maybe edited), and rows of its own, of any tenant.
    kept: fc.array(fc.tuple(fc.nat(), fc.boolean(), values.note), { maxLength: 20 }),
    extra: fc.array(readingRow(fc.constantFrom(1, 2, 3)), { maxLength: 10 }),
  })
  .map(({ tenantId, remote, kept, extra }) => {
    const site = kept
      .filter(() => remote.length > 0)
      .map(([n, edit, note]) => {
        const row = remote[n % remote.length]!;
        return edit ? { ...row, note } : row;
      });
    return { tenantId, remote, site: unique([...site, ...extra]) };
  });

async function load(client: Client, rows: readonly Row[]): Promise<void> {
  await client.query('TRUNCATE reading');
  for (const row of rows) {
    await client.query(
      `INSERT INTO reading (${COLUMNS.map((c) => q(c)).join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
      COLUMNS.map((c) => row[c] ?? null),
    );
  }
}

async function contents(client: Client, where = 'true'): Promise<Row[]> {
  const { rows } = await client.query<Row>({
    text: `SELECT ${COLUMNS.map((c) => q(c)).join(', ')} FROM reading WHERE ${where} ORDER BY id`,
    types: TEXT_TYPES,
  });
  return rows;
}

describe('an entity keyed by uuid, as properties', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.remoteClient.query(TABLE);
    await fx.siteClient.query(TABLE);
  });
  afterAll(() => fx.close());

  it(
    'a run leaves exactly the slice, counts the difference, a plan lists it, and a second run changes nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(readingCase, async (c) => {
          await load(fx.remoteClient, c.remote);
          await load(fx.siteClient, c.site);
          // Each case is a site of its own, bound to no tenant yet.
          await fx.siteClient.query('DELETE FROM meter_sync_site');
          const run = (options = {}) =>
            performSync({
              remote: fx.remote.url,
              site: fx.site.url,
              tenantId: c.tenantId,
              registry,
              allowMassDelete: true,
              ...options,
            });
          const before = await contents(fx.siteClient);

          const plan = await run({ changes: { max: 1000 } });
          const result = await run();
          const after = await contents(fx.siteClient);
          const again = await run();

          // The site is the slice.
          expect(result.status).toBe('ok');
          expect(after).toEqual(await contents(fx.remoteClient, `tenant_id = ${c.tenantId}`));
          // The counts are the difference, and the plan lists it key by key.
          const was = new Map(before.map((row) => [row.id, row]));
          const is = new Map(after.map((row) => [row.id, row]));
          const inserted = [...is.keys()].filter((k) => !was.has(k));
          const deleted = [...was.keys()].filter((k) => !is.has(k));
          const updated = [...is.keys()].filter(
            (k) => was.has(k) && JSON.stringify(was.get(k)) !== JSON.stringify(is.get(k)),
          );
          expect(result.entities[0]).toMatchObject({
            inserted: inserted.length,
            deleted: deleted.length,
            updated: updated.length,
            unchanged: after.length - inserted.length - updated.length,
          });
          const listed = (op: string) =>
            (plan.entities[0]!.changes ?? [])
              .filter((change) => change.op === op)
              .map((change) => change.key.id)
              .sort();
          expect([listed('insert'), listed('update'), listed('delete')]).toEqual([
            inserted.sort(),
            updated.sort(),
            deleted.sort(),
          ]);
          expect(again.entities[0]).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(400),
  );
});
