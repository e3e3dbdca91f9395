/**
 * Hostile input in entity metadata: table and column names with quotes, spaces, upper case and SQL
 * keywords sync like any other once declared; identifiers written to inject SQL are only ever
 * names (nothing is created or dropped, on either side); a custom remote query receives the tenant
 * id as a value and cannot write to the remote.
 */
import { escapeIdentifier as q } from 'pg';
import { remoteSql } from '../../lib/db/sync-sql';
import { performSync } from '../../lib/engine';
import { deviceRegister, type EntityMetadata, EntityRegistry, meter, register } from '../../lib/entities';
import { meterId } from '../../lib/seed/seed-remote';
import {
  contentsDiff,
  reportedCounts,
  resetFixture,
  SHIPPED_TABLES,
  siteContents,
  type TableKey,
  tableRows,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

/** Quotes, spaces, upper case and reserved words everywhere, a composite key and a parent. */
const keywords: EntityMetadata = {
  name: 'keyword_notes',
  table: 'select "from" Where',
  keyColumns: ['order', 'Group By'],
  columns: ['order', 'Group By', 'user', `It's "quoted"`, 'TABLE', 'tenant'],
  tenantColumn: 'tenant',
  parents: [{ entity: 'meter', columns: { order: 'id' } }],
};

/** Names written to break out of their quotes. Each is still just a name. */
const injection: EntityMetadata = {
  name: 'injection',
  table: 'x"; DROP TABLE register; --',
  keyColumns: ['id"); DROP TABLE meter; --'],
  columns: ['id"); DROP TABLE meter; --', `v' OR '1'='1`, 'w\\"; SELECT pg_sleep(30); --', 'tenant$1'],
  tenantColumn: 'tenant$1',
};

const registry = new EntityRegistry([meter, register, deviceRegister, keywords, injection]);
const TABLES: Record<string, TableKey> = { ...SHIPPED_TABLES, keyword_notes: keywords, injection };

const KEYWORDS_TABLE = `CREATE TABLE ${q(keywords.table)} (
  "order" bigint NOT NULL,
  "Group By" text NOT NULL,
  "user" text,
  ${q(`It's "quoted"`)} jsonb,
  "TABLE" numeric,
  "tenant" integer NOT NULL,
  PRIMARY KEY ("order", "Group By"))`;

const INJECTION_TABLE = `CREATE TABLE ${q(injection.table)} (
  ${q(injection.columns[0]!)} integer PRIMARY KEY,
  ${q(injection.columns[1]!)} text,
  ${q(injection.columns[2]!)} text,
  ${q(injection.columns[3]!)} integer NOT NULL)`;

/** What exists in a database: relations and functions of the public schema, and the shipped tables' sizes. */
async function catalog(client: SyncFixture['siteClient']): Promise<unknown> {
  const { rows: relations } = await client.query(
    `SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname`,
  );
  const { rows: functions } = await client.query(
    `SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY proname`,
  );
  return { relations, functions };
}

describe('hostile input: identifiers and remote queries', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    for (const client of [fx.remoteClient, fx.siteClient]) {
      await client.query(KEYWORDS_TABLE);
      await client.query(INJECTION_TABLE);
    }
    await fx.siteClient.query(
      `ALTER TABLE ${q(keywords.table)} ADD FOREIGN KEY ("order") REFERENCES meter (id) NOT DEFERRABLE`,
    );
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx, [keywords.table, injection.table]);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 6, registersPerTenant: 6, registersPerMeter: 1 });
    await fx.remoteClient.query(
      `INSERT INTO ${q(keywords.table)}
       SELECT m.id, g, E'it''s a \\\\ "user"\\t' || g, jsonb_build_object('k"ey', g, 'v', 1.50), length(g) * 1.50, m.tenant_id
       FROM meter m, unnest(ARRAY['SELECT', 'Group "By"', E'tab\\there']) AS g`,
    );
    await fx.remoteClient.query(
      `INSERT INTO ${q(injection.table)} SELECT i, E'\\'; DROP TABLE meter; --', '"); --', 1 + i % 2
       FROM generate_series(1, 40) AS i`,
    );
  });

  const sync = (options = {}) => fx.sync({ registry, ...options });

  it('syncs names with quotes, spaces, upper case and keywords: exact counts, then nothing to do', async () => {
    // Act: a first load, then a run after the remote changed in every way.
    const first = await sync();
    const loaded = await siteContents(fx.siteClient, TABLES);
    await fx.remoteClient.query(
      `UPDATE ${q(keywords.table)} SET "user" = NULL, "TABLE" = 2.500 WHERE "Group By" = 'SELECT' AND tenant = 1`,
    );
    await fx.remoteClient.query(`DELETE FROM ${q(keywords.table)} WHERE "order" = $1`, [meterId(1, 2)]);
    await fx.remoteClient.query(
      `INSERT INTO ${q(keywords.table)} VALUES ($1, 'FROM', NULL, '{"a": [1, 2]}', NULL, 1)`,
      [meterId(1, 3)],
    );
    const second = await sync();
    const after = await siteContents(fx.siteClient, TABLES);
    const third = await sync();

    // Assert
    expect(first.status).toBe('ok');
    expect(first.entities.find((e) => e.entity === 'keyword_notes')).toMatchObject({ inserted: 18 });
    expect(after.keyword_notes).toEqual(
      (await tableRows(fx.remoteClient, keywords)).filter((r) => r.tenant === '1'),
    );
    expect(second.status).toBe('ok');
    expect(reportedCounts(second)).toEqual(contentsDiff(loaded, after, TABLES));
    expect(second.entities.find((e) => e.entity === 'keyword_notes')).toMatchObject({
      inserted: 1,
      updated: 5,
      deleted: 3,
    });
    expect(third.entities.map((e) => e.inserted + e.updated + e.deleted)).toEqual([0, 0, 0, 0, 0]);
  });

  it('uses identifiers written to inject SQL only as names: nothing is created or dropped, on either side', async () => {
    // Arrange
    const catalogs = [await catalog(fx.remoteClient), await catalog(fx.siteClient)];
    const remoteSizes = await fx.remoteClient.query(
      'SELECT (SELECT count(*) FROM meter) m, (SELECT count(*) FROM register) r',
    );

    // Act: a first load (COPY straight into the table), then a run through the fingerprints and the stage.
    const first = await sync();
    await fx.remoteClient.query(
      `UPDATE ${q(injection.table)} SET ${q(injection.columns[1]!)} = 'changed' WHERE ${q(injection.keyColumns[0]!)} % 4 = 0`,
    );
    await fx.remoteClient.query(`DELETE FROM ${q(injection.table)} WHERE ${q(injection.keyColumns[0]!)} = 2`);
    const second = await sync();

    // Assert: the rows arrived under those exact names; the catalogs and the shipped tables are intact.
    expect([first.status, second.status]).toEqual(['ok', 'ok']);
    expect(second.entities.find((e) => e.entity === 'injection')).toMatchObject({ updated: 10, deleted: 1 });
    const site = await tableRows(fx.siteClient, injection);
    expect(site).toEqual((await tableRows(fx.remoteClient, injection)).filter((r) => r['tenant$1'] === '1'));
    const six = site.find((row) => row[injection.keyColumns[0]!] === '6');
    expect(six).toEqual({
      ...six,
      [`v' OR '1'='1`]: `'; DROP TABLE meter; --`,
      'w\\"; SELECT pg_sleep(30); --': '"); --',
    });
    expect([await catalog(fx.remoteClient), await catalog(fx.siteClient)]).toEqual(catalogs);
    expect(
      (
        await fx.remoteClient.query(
          'SELECT (SELECT count(*) FROM meter) m, (SELECT count(*) FROM register) r',
        )
      ).rows,
    ).toEqual(remoteSizes.rows);
    expect((await fx.siteClient.query('SELECT count(*)::int AS n FROM register')).rows[0].n).toBe(6);
  });

  it('an entity naming a table the site lacks fails alone, creating nothing', async () => {
    // Arrange
    const ghost: EntityMetadata = {
      ...injection,
      name: 'ghost',
      table: 'ghost"; CREATE TABLE pwned (x int); --',
    };
    const catalogs = [await catalog(fx.remoteClient), await catalog(fx.siteClient)];

    // Act
    const result = await fx.sync({ registry: new EntityRegistry([meter, register, deviceRegister, ghost]) });

    // Assert
    expect(result.entities.map((e) => [e.entity, e.status, e.error?.code])).toEqual([
      ['meter', 'ok', undefined],
      ['register', 'ok', undefined],
      ['device_register', 'ok', undefined],
      ['ghost', 'failed', 'SITE_SCHEMA_MISMATCH'],
    ]);
    expect([await catalog(fx.remoteClient), await catalog(fx.siteClient)]).toEqual(catalogs);
  });

  it('passes the tenant id to a custom remote query as a value, never as text', async () => {
    // Arrange: a query using $1 twice, and once in a literal and a comment, which are not it; the
    // statement text is a function of the metadata alone.
    const notes: EntityMetadata = {
      ...keywords,
      tenantColumn: undefined,
      remoteQuery: `SELECT k.* FROM ${q(keywords.table)} k JOIN meter m ON m.id = k."order" AND m.tenant_id = $1
        WHERE k.tenant = $1 AND '$1' <> 'x' /* not $1 */`,
    };
    const text = remoteSql.copySlice(notes);
    expect(text.replace("'$1' <> 'x' /* not $1 */", '')).not.toContain('$1');
    expect(text).toContain("'$1' <> 'x' /* not $1 */");
    expect(text.match(/current_setting\('meter_sync\.tenant_id'\)::integer/g)).toHaveLength(2);
    expect(remoteSql.setTenant).toBe(`SELECT set_config('meter_sync.tenant_id', $1, true)`);

    // Act: each tenant gets its own rows, through the same statement.
    const results = [];
    for (const tenantId of [1, 2]) {
      results.push(
        await performSync({
          remote: fx.remote.url,
          site: fx.site.url,
          tenantId,
          registry: new EntityRegistry([meter, register, deviceRegister, notes]),
          dryRun: true,
        }),
      );
    }

    // Assert
    expect(results.map((r) => r.entities.find((e) => e.entity === 'keyword_notes')!.remoteRows)).toEqual([
      18, 18,
    ]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
  });

  it.each([
    ['a string', '1; DROP TABLE meter'],
    ['a fraction', 1.5],
    ['a negative number', -1],
    ['too large for an integer', 2 ** 31],
  ])('rejects a tenant id that is %s before connecting (BAD_OPTIONS)', async (_name, tenantId) => {
    const error = await performSync({
      remote: 'postgres://nobody@127.0.0.1:1/none',
      site: 'postgres://nobody@127.0.0.1:1/none',
      tenantId: tenantId as number,
    }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'BAD_OPTIONS' });
  });

  it('cannot write to the remote, even through a function a custom query calls', async () => {
    // Arrange: a remote function that deletes, called by the entity's query.
    await fx.remoteClient.query(`CREATE FUNCTION erase_registers() RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN DELETE FROM register; RETURN true; END $$`);
    const erasing: EntityMetadata = {
      ...deviceRegister,
      remoteQuery: `${deviceRegister.remoteQuery} AND erase_registers()`,
    };
    const before = await fx.remoteClient.query('SELECT count(*)::int AS n FROM register');

    // Act
    const result = await fx.sync({ registry: new EntityRegistry([meter, register, erasing]) });

    // Assert: that entity failed; the remote still has every register.
    const failed = result.entities.find((e) => e.entity === 'device_register')!;
    expect(failed.error?.code).toBe('DATABASE_ERROR');
    expect(failed.error?.message).toContain('read-only transaction');
    expect((await fx.remoteClient.query('SELECT count(*)::int AS n FROM register')).rows).toEqual(
      before.rows,
    );
    await fx.remoteClient.query('DROP FUNCTION erase_registers()');
  });
});
