/**
 * The plan operation (issue 14 §1): the exact row-level changes a sync would make, read-only on both
 * sides, its cost following the change. Against real PostgreSQL; the CLI's diff output in-process.
 */
import type { Client } from 'pg';
import { startInProcessProxy } from '../../bench/byte-counting-proxy';
import { main } from '../../lib/cli/main';
import { LocalCredentials } from '../../lib/credentials';
import type { RowChange } from '../../lib/engine';
import { planSite, syncSite } from '../../lib/operations';
import { meterId, registerId, seedRemote } from '../../lib/seed/seed-remote';
import { captureIo } from '../harness/capture-io';
import { siteContents } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SITE = 'plant-7';

describe('plan: the changes a sync would make, row by row', () => {
  let fx: SyncFixture;
  const source = () =>
    new LocalCredentials({ remote: fx.remote.url, sites: { [SITE]: { url: fx.site.url, tenantId: 1 } } });

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 10, registersPerTenant: 12, registersPerMeter: 2 });
    expect((await fx.sync()).ok).toBe(true);
    // One of each kind of change, and an association to another tenant's register.
    await fx.remoteClient.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, updated_at)
       VALUES ($1, 1, 'Register new', 40001, 'uint16', 'kWh', 1, '2024-06-01 00:00:00+00')`,
      [registerId(1, 99)],
    );
    await fx.remoteClient.query(`UPDATE register SET unit = 'V', scale = 0.002 WHERE id = $1`, [
      registerId(1, 2),
    ]);
    await fx.remoteClient.query('DELETE FROM device_register WHERE device_id = $1', [meterId(1, 5)]);
    await fx.remoteClient.query('DELETE FROM meter WHERE id = $1', [meterId(1, 5)]);
    await fx.remoteClient.query(
      'INSERT INTO device_register (device_id, register_id, poll_interval_s, enabled) VALUES ($1, $2, 60, true)',
      [meterId(1, 6), registerId(2, 1)],
    );
  });
  afterAll(() => fx.close());

  it('lists each change with its key, the differing columns of an update, and why a row is skipped', async () => {
    // Arrange
    const before = await siteContents(fx.siteClient);
    const { rows: oldRegister } = await fx.siteClient.query(
      'SELECT unit, scale::text AS scale FROM register WHERE id = $1',
      [registerId(1, 2)],
    );

    // Act
    const plan = await planSite(source(), { siteId: SITE });

    // Assert: nothing written, no run recorded.
    expect(await siteContents(fx.siteClient)).toEqual(before);
    expect(plan).toMatchObject({ ok: true, action: 'plan', dryRun: true, siteId: SITE });
    const changes = Object.fromEntries(plan.entities.map((e) => [e.entity, e.changes]));
    expect(changes.meter).toEqual([
      expect.objectContaining({ op: 'delete', key: { id: String(meterId(1, 5)) } }),
    ]);
    expect(changes.register).toEqual([
      {
        op: 'update',
        key: { id: String(registerId(1, 2)) },
        columns: {
          unit: { site: oldRegister[0].unit, remote: 'V' },
          scale: { site: oldRegister[0].scale, remote: '0.002000' },
        },
      },
      expect.objectContaining({ op: 'insert', key: { id: String(registerId(1, 99)) } }),
    ]);
    const insert = (changes.register as RowChange[])[1]!;
    expect(insert.columns).toMatchObject({
      name: { site: null, remote: 'Register new' },
      unit: { site: null, remote: 'kWh' },
    });
    expect((changes.device_register as RowChange[]).map((c) => [c.op, c.key, c.reason])).toEqual([
      ['delete', { device_id: String(meterId(1, 5)), register_id: expect.any(String) }, undefined],
      ['delete', { device_id: String(meterId(1, 5)), register_id: expect.any(String) }, undefined],
      [
        'skip',
        { device_id: String(meterId(1, 6)), register_id: String(registerId(2, 1)) },
        `parent missing: register id=${registerId(2, 1)}`,
      ],
    ]);
    expect(plan.entities.map((e) => e.changesTruncated)).toEqual([false, false, false]);
    // The counts are the sync's that follows.
    const real = await syncSite(source(), { siteId: SITE, dryRun: true });
    expect(
      plan.entities.map(({ inserted, updated, deleted, skipped }) => [inserted, updated, deleted, skipped]),
    ).toEqual(
      real.entities.map(({ inserted, updated, deleted, skipped }) => [inserted, updated, deleted, skipped]),
    );
  });

  it('prints a diff, one line a change, then the counts table', async () => {
    // Act
    const io = captureIo();
    const code = await main(
      ['plan', '--remote', fx.remote.url, '--site', fx.site.url, '--tenant', '1'],
      io,
      {},
    );

    // Assert
    expect(code).toBe(0);
    const lines = io.out().split('\n');
    expect(lines.slice(0, 6)).toEqual([
      `- meter id=${meterId(1, 5)}`,
      expect.stringMatching(
        new RegExp(`^~ register id=${registerId(1, 2)}  unit: .+ -> 'V', scale: [\\d.]+ -> 0\\.002000$`),
      ),
      `+ register id=${registerId(1, 99)}`,
      expect.stringMatching(new RegExp(`^- device_register device_id=${meterId(1, 5)}, register_id=\\d+$`)),
      expect.stringMatching(new RegExp(`^- device_register device_id=${meterId(1, 5)}, register_id=\\d+$`)),
      `! device_register device_id=${meterId(1, 6)}, register_id=${registerId(2, 1)}  skipped: parent missing: register id=${registerId(2, 1)}`,
    ]);
    expect(io.out()).toMatch(/^meter-sync · tenant 1 · DRY RUN \(nothing written\) · ok/m);
    expect(io.out()).toMatch(/^register\s+ok\s+13\s+1\s+1\s+0\s+0\s+11/m);
  });

  it('lists at most maxChanges per entity and says how many more there are', async () => {
    // Act
    const plan = await planSite(source(), { siteId: SITE, maxChanges: 1 });
    const io = captureIo();
    await main(
      ['plan', '--remote', fx.remote.url, '--site', fx.site.url, '--tenant', '1', '--max-changes', '1'],
      io,
      {},
    );

    // Assert
    expect(plan.entities.map((e) => [e.entity, e.changes?.length, e.changesTruncated])).toEqual([
      ['meter', 1, false],
      ['register', 1, true],
      ['device_register', 1, true],
    ]);
    expect(io.out()).toContain('… and 1 more register changes (--max-changes to list more)');
    expect(io.out()).toContain('… and 2 more device_register changes (--max-changes to list more)');
  });

  it.each([
    [['--max-changes', '0'], '--max-changes must be a whole number from 1 to 100000, not "0"'],
    [['--max-changes', '100001'], '--max-changes must be a whole number from 1 to 100000, not "100001"'],
    [['--max-changes', 'all'], '--max-changes must be a whole number from 1 to 100000, not "all"'],
    [['--dry-run'], "Unknown option '--dry-run'"],
  ])('plan %j is a usage error', async (args, message) => {
    const io = captureIo();
    expect(
      await main(
        ['plan', '--remote', fx.remote.url, '--site', fx.site.url, '--tenant', '1', ...args],
        io,
        {},
      ),
    ).toBe(2);
    expect(io.err()).toBe(`meter-sync: ${message} (see \`meter-sync help\`)\n`);
  });
});

describe('plan when the mass-delete guard would stop the run', () => {
  let fx: SyncFixture;
  const source = () =>
    new LocalCredentials({ remote: fx.remote.url, sites: { [SITE]: { url: fx.site.url, tenantId: 1 } } });

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1], metersPerTenant: 30, registersPerTenant: 30, registersPerMeter: 1 });
    expect((await fx.sync()).ok).toBe(true);
    await fx.remoteClient.query('DELETE FROM device_register');
  });
  afterAll(() => fx.close());

  it('reports the guard as the run would; with allowMassDelete it lists the rows the guard is about', async () => {
    // Act
    const guarded = await planSite(source(), { siteId: SITE, entities: ['device_register'] });
    const io = captureIo();
    await main(
      [
        'plan',
        '--remote',
        fx.remote.url,
        '--site',
        fx.site.url,
        '--tenant',
        '1',
        '--entities',
        'device_register',
      ],
      io,
      {},
    );
    const allowed = await planSite(source(), {
      siteId: SITE,
      entities: ['device_register'],
      allowMassDelete: true,
      maxChanges: 1000,
    });

    // Assert
    expect(guarded.entities[0]).toMatchObject({
      status: 'failed',
      error: { code: 'MASS_DELETE_GUARD' },
      changes: [],
    });
    expect(io.out()).toContain('to list the deletes the guard stops: plan again with --allow-mass-delete');
    expect(allowed.entities[0]).toMatchObject({ status: 'ok', deleted: 30, changesTruncated: false });
    expect(allowed.entities[0]!.changes!.map((c) => c.op)).toEqual(Array(30).fill('delete'));
    expect(allowed.entities[0]!.changes![0]!.columns).toMatchObject({
      poll_interval_s: { site: expect.any(String), remote: null },
    });
  });
});

describe('plan cost follows the change', () => {
  let fx: SyncFixture;
  let remote: Client;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await seedRemote(fx.remoteClient, {
      tenants: [1],
      metersPerTenant: 100,
      registersPerTenant: 100_000,
      registersPerMeter: 1,
    });
    expect((await fx.sync()).ok).toBe(true);
    await fx.remoteClient.query(
      `UPDATE register SET scale = scale + 1 WHERE id IN (SELECT id FROM register ORDER BY id LIMIT 10 OFFSET 5000)`,
    );
    remote = fx.remoteClient;
  }, 120_000);
  afterAll(() => fx.close());

  it('a plan of ten changed rows in 100,000 moves about what the sync of them moves from the remote', async () => {
    // Arrange: the remote behind a proxy that counts the bytes it sends.
    const url = new URL(fx.remote.url);
    const proxy = await startInProcessProxy(url.hostname, Number(url.port || 5432));
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    const source = new LocalCredentials({
      remote: url.toString(),
      sites: { [SITE]: { url: fx.site.url, tenantId: 1 } },
    });
    try {
      // Act
      await proxy.reset();
      const plan = await planSite(source, { siteId: SITE, entities: ['register'] });
      const planBytes = await proxy.bytesFromServer();
      await proxy.reset();
      const dry = await syncSite(source, { siteId: SITE, entities: ['register'], dryRun: true });
      const syncBytes = await proxy.bytesFromServer();
      const { rows } = await remote.query(
        `SELECT sum(octet_length(r::text))::bigint AS bytes FROM register AS r WHERE tenant_id = 1`,
      );
      const sliceBytes = Number(rows[0].bytes);

      // Assert
      expect(plan.entities[0]).toMatchObject({ updated: 10, changesTruncated: false });
      expect(plan.entities[0]!.changes!.map((c) => Object.keys(c.columns ?? {}))).toEqual(
        Array(10).fill(['scale']),
      );
      expect(dry.entities[0]).toMatchObject({ updated: 10 });
      console.info(
        `plan ${planBytes} bytes from the remote, dry-run sync ${syncBytes}, the slice ${sliceBytes}`,
      );
      expect(planBytes).toBeLessThanOrEqual(syncBytes * 1.1 + 1024);
      expect(planBytes).toBeLessThan(sliceBytes / 20);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
