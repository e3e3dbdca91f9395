/**
 * Hostile input: remote rows the site rejects (an over-long value for a site-only varchar(n), a NULL
 * in a column only the site makes NOT NULL, a site-only CHECK, a site-only unique index). The entity
 * fails with the offending row's key in error.key, is rolled back, and the other entities commit;
 * on a first load too. Once the site accepts the rows, the next run converges.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { applySiteMigrations } from '../../lib/db/site-migrations';
import { performSync } from '../../lib/engine';
import { meterId, registerId } from '../../lib/seed/seed-remote';
import {
  arrangeChangedRemote,
  expectNextRunConverges,
  expectSiteAfterFault,
  FAULT_SEED,
} from '../harness/fault-scenario';
import { resetFixture, siteContents } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

interface RejectedRowCase {
  /** The site-only rule, and how to lift it (idempotent). */
  siteRule: string;
  liftRule: string;
  /** The remote change the site refuses. */
  remoteChange: string;
  entity: string;
  key: string;
  /**
   * On the synced site, the parent rows the run would delete that the kept rows of the failed
   * entity still reference: those deletes are skipped and counted, the parents commit the rest.
   */
  keptByFailure?: Record<string, string[]>;
  /** On an empty site, when no row is refused alone (two new rows share a value): the server's key. */
  firstLoadKey?: string;
  message: RegExp;
}

const CASES: Record<string, RejectedRowCase> = {
  'an over-long value (site varchar(20))': {
    siteRule: 'ALTER TABLE meter ALTER COLUMN name TYPE varchar(20)',
    liftRule: 'ALTER TABLE meter ALTER COLUMN name TYPE text',
    remoteChange: `UPDATE meter SET name = repeat('é', 21) WHERE id = ${meterId(1, 7)}`,
    entity: 'meter',
    key: `id=${meterId(1, 7)}`,
    message: /value too long for type character varying\(20\)/,
  },
  'a NULL in a column only the site makes NOT NULL': {
    siteRule: `ALTER TABLE register ALTER COLUMN unit SET NOT NULL`,
    liftRule: 'ALTER TABLE register ALTER COLUMN unit DROP NOT NULL',
    remoteChange: `UPDATE register SET unit = NULL WHERE id = ${registerId(1, 5)}`,
    entity: 'register',
    key: `id=${registerId(1, 5)}`,
    message: /null value in column "unit" of relation "register" violates not-null constraint/,
  },
  'a violated site-only CHECK (composite key)': {
    siteRule: 'ALTER TABLE device_register ADD CONSTRAINT site_poll_check CHECK (poll_interval_s < 1000)',
    liftRule: 'ALTER TABLE device_register DROP CONSTRAINT IF EXISTS site_poll_check',
    remoteChange: `UPDATE device_register SET poll_interval_s = 3600 WHERE device_id = ${meterId(1, 5)} AND register_id = ${registerId(1, 11)}`,
    entity: 'device_register',
    key: `device_id=${meterId(1, 5)}, register_id=${registerId(1, 11)}`,
    keptByFailure: { meter: [`id=${meterId(1, 2)}`], register: [`id=${registerId(1, 2)}`] },
    message: /violates check constraint "site_poll_check"/,
  },
  'a value a site-only unique index already holds': {
    siteRule: 'CREATE UNIQUE INDEX site_register_name ON register (name)',
    liftRule: 'DROP INDEX IF EXISTS site_register_name',
    remoteChange: `UPDATE register SET name = 'Register 4' WHERE id = ${registerId(1, 6)}`,
    entity: 'register',
    key: `id=${registerId(1, 6)}`,
    firstLoadKey: 'name=Register 4',
    message: /duplicate key value violates unique constraint "site_register_name"/,
  },
};

describe('hostile input: remote rows the site rejects', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    // Every register of the seed has a unit, so that the site can make it NOT NULL.
    await fx.remoteClient.query(`ALTER TABLE register ALTER COLUMN unit SET DEFAULT 'kWh'`);
  });
  afterAll(() => fx.close());

  async function seedWithUnits(): Promise<void> {
    await fx.seed(FAULT_SEED);
    await fx.remoteClient.query(`UPDATE register SET unit = coalesce(unit, 'kWh')`);
  }

  describe.each(Object.entries(CASES))('%s', (_name, c) => {
    afterEach(() => fx.siteClient.query(c.liftRule));

    it('on a synced site: that entity fails naming the key and is rolled back; the others commit', async () => {
      // Arrange: the scenario's changes in every entity, plus the row the site refuses.
      const before = await arrangeChangedRemote(fx);
      await fx.remoteClient.query(`UPDATE register SET unit = coalesce(unit, 'kWh')`);
      await fx.siteClient.query(`UPDATE register SET unit = coalesce(unit, 'kWh')`);
      const beforeRule = await siteContents(fx.siteClient);
      await fx.siteClient.query(c.siteRule);
      await fx.remoteClient.query(c.remoteChange);

      // Act
      const result = await fx.sync();

      // Assert
      const failed = result.entities.filter((e) => e.status === 'failed');
      expect(failed.map((e) => [e.entity, e.error?.code, e.error?.key])).toEqual([
        [c.entity, 'SITE_REJECTED_ROW', c.key],
      ]);
      for (const [parent, keys] of Object.entries(c.keptByFailure ?? {})) {
        expect(result.entities.find((e) => e.entity === parent)).toMatchObject({
          status: 'ok',
          skipped: keys.length,
          skippedKeys: keys,
          skippedReasons: keys.map(() => `referenced by ${c.entity} rows kept because ${c.entity} failed`),
        });
      }
      expect(failed.at(-1)!.error!.message).toMatch(c.message);
      expect(result.error).toBeUndefined();
      expect(before.sync_run_count).toEqual(beforeRule.sync_run_count);
      expect(await expectSiteAfterFault(fx, beforeRule, result)).toBe('partial');
      const { rows } = await fx.siteClient.query(
        'SELECT failed_entities, result FROM sync_run ORDER BY id DESC LIMIT 1',
      );
      expect(rows[0].failed_entities).toEqual(failed.map((e) => e.entity));
      expect(JSON.stringify(rows[0].result)).toContain(c.key);

      // Once the site accepts it, the next run converges.
      await fx.siteClient.query(c.liftRule);
      await expectNextRunConverges(fx);
    });

    it('on a first load (empty site): the same, and the other entities are loaded', async () => {
      // Arrange
      await resetFixture(fx);
      await seedWithUnits();
      await fx.siteClient.query(c.siteRule);
      await fx.remoteClient.query(c.remoteChange);
      const before = await siteContents(fx.siteClient);

      // Act
      const result = await fx.sync();

      // Assert
      const failed = result.entities.filter((e) => e.status === 'failed');
      expect(failed.map((e) => [e.entity, e.error?.code, e.error?.key])).toEqual([
        [c.entity, 'SITE_REJECTED_ROW', c.firstLoadKey ?? c.key],
      ]);
      expect(await expectSiteAfterFault(fx, before, result)).toBe('partial');
      await fx.siteClient.query(c.liftRule);
      await expectNextRunConverges(fx);
    });
  });

  it('names one of the rejected rows, whichever and however many there are (property)', async () => {
    // Arrange: a synced site with a CHECK only it has; each case breaks it in some registers.
    await resetFixture(fx);
    await seedWithUnits();
    expect((await fx.sync()).status).toBe('ok');
    await fx.siteClient.query(
      'ALTER TABLE register ADD CONSTRAINT site_address_check CHECK (address < 40000)',
    );
    const ids = Array.from({ length: FAULT_SEED.registersPerTenant }, (_, i) => registerId(1, i + 1));
    const before = await siteContents(fx.siteClient);
    let tried = 0;

    await fc.assert(
      fc.asyncProperty(fc.subarray(ids, { minLength: 1, maxLength: 4 }), async (bad) => {
        tried += 1;
        await fx.remoteClient.query('UPDATE register SET address = 45000 WHERE id = ANY($1)', [bad]);
        try {
          // Act
          const result = await fx.sync();

          // Assert: register failed, naming a key among the bad ones; nothing else changed.
          const register = result.entities.find((e) => e.entity === 'register')!;
          expect(register.error?.code).toBe('SITE_REJECTED_ROW');
          expect(bad.map((id) => `id=${id}`)).toContain(register.error!.key);
          const after = await siteContents(fx.siteClient);
          expect({ ...after, sync_run_count: [] }).toEqual({ ...before, sync_run_count: [] });
        } finally {
          await fx.remoteClient.query(
            'UPDATE register SET address = 30000 + (id % 100000000) % 10000 WHERE id = ANY($1)',
            [bad],
          );
        }
      }),
      { numRuns: 12 },
    );
    expect(tried).toBeGreaterThanOrEqual(12);
    await fx.siteClient.query('ALTER TABLE register DROP CONSTRAINT site_address_check');
  });
});

describe('a row the site cannot even stage: a character its encoding lacks', () => {
  let fx: SyncFixture;
  let latin1: TestDatabase;
  let site: Client;
  const sync = () =>
    performSync({ remote: fx.remote.url, site: latin1.url, tenantId: 1, allowMassDelete: true });

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    latin1 = await createTestDatabase('latin1_site', undefined, { encoding: 'LATIN1' });
    site = new Client({ connectionString: latin1.url });
    await site.connect();
    await applySiteMigrations(site);
  });
  afterAll(async () => {
    await site.end();
    await latin1.drop();
    await fx.close();
  });
  beforeEach(async () => {
    await resetFixture(fx);
    await site.query('TRUNCATE device_register, meter, register, sync_run, meter_sync_site');
    // The seed's text is in LATIN1 (Zähler, °C) but for its en dash; a euro sign and Chinese are not.
    await fx.seed(FAULT_SEED);
    await fx.remoteClient.query(`UPDATE meter SET name = replace(name, '–', '-')`);
  });

  it.each([
    ['on a first load', false],
    ['in a site that has rows (a staged region)', true],
  ])('%s: the entity fails naming the row and the site, the others commit', async (_name, synced) => {
    // Arrange
    if (synced) expect((await sync()).status).toBe('ok');
    await fx.remoteClient.query(`UPDATE meter SET name = 'Zähler 5 €' WHERE id = $1`, [meterId(1, 5)]);
    await fx.remoteClient.query(`UPDATE register SET description = '温度' WHERE id = $1`, [registerId(1, 9)]);

    // Act
    const result = await sync();

    // Assert
    const meter = result.entities.find((e) => e.entity === 'meter')!;
    const register = result.entities.find((e) => e.entity === 'register')!;
    expect(meter.error).toMatchObject({ code: 'SITE_REJECTED_ROW', key: `id=${meterId(1, 5)}` });
    expect(meter.error!.message).toMatch(
      new RegExp(
        `^meter: the site refused the row id=${meterId(1, 5)}: character with byte sequence .* has no equivalent in encoding "LATIN1"`,
      ),
    );
    expect(meter.error!.message).not.toMatch(/remote/);
    expect(register.error).toMatchObject({ code: 'SITE_REJECTED_ROW', key: `id=${registerId(1, 9)}` });
    const associations = result.entities.find((e) => e.entity === 'device_register')!;
    expect(associations.status).toBe('ok');
    // Once the remote says it in the site's characters, the next run converges.
    await fx.remoteClient.query(`UPDATE meter SET name = 'Zähler 5 EUR' WHERE id = $1`, [meterId(1, 5)]);
    await fx.remoteClient.query(`UPDATE register SET description = 'Temperatur' WHERE id = $1`, [
      registerId(1, 9),
    ]);
    const next = await sync();
    expect(next.status).toBe('ok');
    const { rows } = await site.query(`SELECT name FROM meter WHERE id = $1`, [meterId(1, 5)]);
    expect(rows).toEqual([{ name: 'Zähler 5 EUR' }]);
  });
});
