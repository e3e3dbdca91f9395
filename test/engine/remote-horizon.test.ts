/**
 * A kept fingerprint of a slice read from its table alone is also the remote's, as of the remote
 * snapshot the run read it in (its horizon, migration 7): the next run's remote hashes only the rows
 * written since, and counts the others. Cost is shown by what the site keeps (a remote that hashed
 * every row would have corrected a kept fingerprint made wrong on purpose); correctness is the
 * site's rows against the remote's slice after every kind of write on the remote.
 */
import type { Client } from 'pg';
import { unpackFingerprints } from '../../lib/db/sync-sql';
import { registerId } from '../../lib/seed/seed-remote';
import { countRows, entityContents, expectedSlice, resetFixture } from '../harness/site-contents';
import { createSyncFixture, openTestClient, type SyncFixture } from '../harness/sync-fixture';

const SHAPE = { tenants: [1, 2], metersPerTenant: 200, registersPerTenant: 1_000, registersPerMeter: 5 };
const REGISTERS = SHAPE.registersPerTenant;

describe("the remote's horizon kept with a fingerprint", () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());
  beforeEach(async () => {
    await resetFixture(fx);
    await fx.seed(SHAPE);
    expect((await fx.sync()).status).toBe('ok');
    // A no-change run keeps each table's fingerprint, and the remote's horizon with those that have one.
    expect((await fx.sync()).status).toBe('ok');
  });

  const kept = async (entity: string) =>
    (
      await fx.siteClient.query<{ packed: string; horizon: string | null }>(
        'SELECT packed, remote_horizon AS horizon FROM meter_sync_fingerprint WHERE entity = $1',
        [entity],
      )
    ).rows[0];
  const expectSlice = async () =>
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, 1));
  const registers = async () => countRows(await fx.sync())[1];

  /**
   * The kept fingerprint of registers is the one every row of the remote hashes to: a run without
   * the horizon hashes them all, finds the table equal and keeps that one.
   */
  async function expectKeptExact(): Promise<void> {
    const before = sorted((await kept('register'))!.packed);
    await fx.siteClient.query(
      `UPDATE meter_sync_fingerprint SET remote_horizon = NULL WHERE entity = 'register'`,
    );
    const result = await registers();
    expect(result![1]).toBe(0);
    expect(sorted((await kept('register'))!.packed)).toEqual(before);
  }
  const sorted = (packed: string) => [...unpackFingerprints(packed)].sort(([a], [b]) => a - b);

  /** Syncs until the kept horizon is past the xmin of every register of the tenant (each such run keeps a later one). */
  async function keepHorizonPastRegisters(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const horizon = (await kept('register'))!.horizon!;
      const xmin = horizon.slice(horizon.indexOf('@') + 1).split(':')[0];
      const { rows } = await fx.remoteClient.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM register WHERE tenant_id = 1 AND age(xmin) <= age($1::xid)',
        [xmin],
      );
      if (rows[0]!.n === 0) return;
      if (attempt === 50) throw new Error(`the kept horizon stays behind ${rows[0]!.n} registers`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await registers()).toEqual(['register', 0, 0, 0, 0, REGISTERS]);
    }
  }

  /** Makes the kept fingerprint of registers wrong in one bucket's xor, its count left as it is. */
  async function falsifyKeptRegisters(): Promise<string> {
    const { packed } = (await kept('register'))!;
    const bytes = Buffer.from(packed, 'base64');
    bytes[13] = bytes[13]! ^ 1; // the last byte of the first bucket's xor
    const falsified = bytes.toString('base64');
    await fx.siteClient.query(`UPDATE meter_sync_fingerprint SET packed = $1 WHERE entity = 'register'`, [
      falsified,
    ]);
    return falsified;
  }

  it('is kept for slices read from their table, not for one read through a query', async () => {
    expect((await kept('register'))!.horizon).toMatch(/^[\d.]+\/\d+\/\d+@\d+:\d+:/);
    expect((await kept('meter'))!.horizon).toMatch(/@/);
    expect((await kept('device_register'))!.horizon).toBeNull();
  });

  it('a run with nothing written on the remote since hashes none of its rows: the kept fingerprint stands for them', async () => {
    // Arrange: a horizon past every register's xmin (sessions of other suites on the test server
    // may hold its snapshots' xmin back: rows written after that count as new until a later run
    // keeps a later horizon); then a kept fingerprint that no longer matches the rows (only a
    // remote hashing them would see it).
    await keepHorizonPastRegisters();
    const falsified = await falsifyKeptRegisters();

    // Act
    const result = await registers();

    // Assert: equal, and the kept fingerprint not replaced.
    expect(result).toEqual(['register', 0, 0, 0, 0, REGISTERS]);
    expect((await kept('register'))!.packed).toBe(falsified);
  });

  it.each([
    ['of another server, database or table', (h: string) => `0/0/0${h.slice(h.indexOf('@'))}`],
    [
      'whose snapshot is later than the remote now (a replica behind)',
      (h: string) => {
        const [xmin, xmax] = h
          .slice(h.indexOf('@') + 1)
          .split(':')
          .map(Number);
        return `${h.slice(0, h.indexOf('@'))}@${xmin! + 1000}:${xmax! + 1000}:`;
      },
    ],
    [
      'that is not one (edited by hand)',
      (h: string) => `${h.slice(0, h.indexOf('@'))}@'); DROP TABLE register; --`,
    ],
  ])(
    'a horizon %s proves nothing: every row is hashed, and the fingerprint and horizon are kept anew',
    async (_, change) => {
      // Arrange
      const falsified = await falsifyKeptRegisters();
      const horizon = (await kept('register'))!.horizon!;
      await fx.siteClient.query(
        `UPDATE meter_sync_fingerprint SET remote_horizon = $1 WHERE entity = 'register'`,
        [change(horizon)],
      );

      // Act
      const result = await registers();

      // Assert: the falsified bucket compared (equal rows), the true fingerprint kept with a true horizon.
      expect(result).toEqual(['register', 0, 0, 0, 0, REGISTERS]);
      const after = (await kept('register'))!;
      expect(after.packed).not.toBe(falsified);
      expect(after.horizon!.slice(0, after.horizon!.indexOf('@'))).toBe(
        horizon.slice(0, horizon.indexOf('@')),
      );
      expect(await registers()).toEqual(['register', 0, 0, 0, 0, REGISTERS]);
    },
  );

  it('finds every kind of write on the remote since the horizon, and applies it', async () => {
    const remote = fx.remoteClient;
    const copyOf = (id: number, name: string) =>
      remote.query(
        `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
         SELECT $1, tenant_id, $2, address, data_type, unit, scale, description, updated_at FROM register WHERE id = $3`,
        [id, name, registerId(1, 5)],
      );

    // An update.
    await remote.query(`UPDATE register SET unit = 'kWh2' WHERE id = $1`, [registerId(1, 40)]);
    expect(await registers()).toEqual(['register', 0, 1, 0, 0, REGISTERS - 1]);
    await expectKeptExact();

    // An update that writes the same values: a new row version, nothing to apply.
    await remote.query(`UPDATE register SET name = name WHERE id = $1`, [registerId(1, 41)]);
    expect(await registers()).toEqual(['register', 0, 0, 0, 0, REGISTERS]);
    await expectKeptExact();

    // A row deleted and another of the same key inserted in one transaction: as many rows as before.
    await remote.query('BEGIN');
    const { rows } = await remote.query('SELECT * FROM register WHERE id = $1', [registerId(1, 42)]);
    await remote.query('DELETE FROM device_register WHERE register_id = $1', [registerId(1, 42)]);
    await remote.query('DELETE FROM register WHERE id = $1', [registerId(1, 42)]);
    await copyOf(registerId(1, 42), 'taken over');
    await remote.query('COMMIT');
    expect(await registers()).toEqual(['register', 0, 1, 0, 0, REGISTERS - 1]);
    expect(rows).toHaveLength(1);
    await expectKeptExact();

    // A row added, then moved to another tenant: it leaves the slice.
    await copyOf(registerId(1, REGISTERS + 1), 'added');
    expect(await registers()).toEqual(['register', 1, 0, 0, 0, REGISTERS]);
    await expectKeptExact();
    await remote.query('UPDATE register SET tenant_id = 2 WHERE id = $1', [registerId(1, REGISTERS + 1)]);
    expect(await registers()).toEqual(['register', 0, 0, 1, 0, REGISTERS]);

    // A row deleted.
    await remote.query('DELETE FROM device_register WHERE register_id = $1', [registerId(1, 43)]);
    await remote.query('DELETE FROM register WHERE id = $1', [registerId(1, 43)]);
    const deleted = await fx.sync();
    expect(countRows(deleted)[1]).toEqual(['register', 0, 0, 1, 0, REGISTERS - 1]);
    await expectKeptExact();

    await expectSlice();
    expect(await registers()).toEqual(['register', 0, 0, 0, 0, REGISTERS - 1]);
  });

  it("a slice read from a view keeps no horizon (a view's rows carry no xmin), and syncs as before", async () => {
    // Arrange: the remote's registers behind a view of the same name.
    await fx.remoteClient.query('ALTER TABLE register RENAME TO register_rows');
    await fx.remoteClient.query('CREATE VIEW register AS SELECT * FROM register_rows');
    try {
      await fx.remoteClient.query(`UPDATE register_rows SET name = 'through the view' WHERE id = $1`, [
        registerId(1, 9),
      ]);

      // Act
      const changed = await registers();
      const after = await registers();

      // Assert
      expect(changed).toEqual(['register', 0, 1, 0, 0, REGISTERS - 1]);
      expect(after).toEqual(['register', 0, 0, 0, 0, REGISTERS]);
      expect((await kept('register'))!.horizon).toBeNull();
      await fx.remoteClient.query(`UPDATE register_rows SET name = 'again' WHERE id = $1`, [
        registerId(1, 9),
      ]);
      expect(await registers()).toEqual(['register', 0, 1, 0, 0, REGISTERS - 1]);
    } finally {
      await fx.remoteClient.query('DROP VIEW register');
      await fx.remoteClient.query('ALTER TABLE register_rows RENAME TO register');
    }
  });

  it('a row written by a remote transaction still open when the horizon was taken, and committed after, is found', async () => {
    // Arrange: an insert on the remote, not committed while a run keeps its horizon.
    const other: Client = await openTestClient(fx.remote.url);
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
         SELECT $1, tenant_id, 'late', address, data_type, unit, scale, description, updated_at FROM register WHERE id = $2`,
        [registerId(1, REGISTERS + 5), registerId(1, 5)],
      );
      await fx.remoteClient.query(`UPDATE register SET name = 'moves the horizon' WHERE id = $1`, [
        registerId(1, 7),
      ]);
      expect(await registers()).toEqual(['register', 0, 1, 0, 0, REGISTERS - 1]);
      await other.query('COMMIT');
    } finally {
      await other.end();
    }

    // Act
    const next = await registers();

    // Assert
    expect(next).toEqual(['register', 1, 0, 0, 0, REGISTERS]);
    await expectSlice();
  });
});
