/** The mass-delete guard (DESIGN §3.9): a remote that suddenly returns little or nothing must not wipe a site. */
import { meterId, registerId } from '../../lib/seed/seed-remote';
import {
  contentsDiff,
  countRows,
  entity,
  reportedCounts,
  resetFixture,
  siteContents,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 30, registersPerTenant: 40, registersPerMeter: 2 };

describe('mass-delete guard', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
  });
  afterAll(() => fx.close());

  async function arrange(seed: Partial<typeof SEED> = {}): Promise<void> {
    await resetFixture(fx);
    await fx.seed({ ...SEED, ...seed });
    expect((await fx.sync()).status).toBe('ok');
  }

  /** Deletes tenant-1 meters 1..n on the remote, with their associations. */
  async function dropMeters(n: number): Promise<void> {
    await fx.remoteClient.query('DELETE FROM device_register WHERE device_id BETWEEN $1 AND $2', [
      meterId(1, 1),
      meterId(1, n),
    ]);
    await fx.remoteClient.query('DELETE FROM meter WHERE id BETWEEN $1 AND $2', [
      meterId(1, 1),
      meterId(1, n),
    ]);
  }

  it('refuses to delete more than half of 20 or more rows, and leaves that entity as the site has it', async () => {
    // Arrange: the remote loses 16 of the tenant's 30 meters, and so 32 of 60 associations.
    await arrange();
    await dropMeters(16);
    await fx.remoteClient.query(`UPDATE register SET unit = 'MWh' WHERE id = $1`, [registerId(1, 1)]);
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result).toMatchObject({ ok: false, status: 'partial' });
    expect(entity(result, 'meter')).toMatchObject({ status: 'failed', error: { code: 'MASS_DELETE_GUARD' } });
    expect(entity(result, 'meter').error!.message).toContain('refusing to delete 16 of 30');
    expect(entity(result, 'device_register')).toMatchObject({
      status: 'failed',
      error: { code: 'MASS_DELETE_GUARD' },
    });
    expect(entity(result, 'device_register').error!.message).toContain('refusing to delete 32 of 60');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 0, 0, 0],
      ['register', 0, 1, 0, 0, 39],
      ['device_register', 0, 0, 0, 0, 0],
    ]);
    const after = await siteContents(fx.siteClient);
    expect(after.meter).toEqual(before.meter);
    expect(after.device_register).toEqual(before.device_register);
    expect(contentsDiff(before, after).register).toEqual(reportedCounts(result).register);
  });

  it('deletes them when the run allows mass deletes', async () => {
    // Arrange
    await arrange();
    await dropMeters(16);

    // Act
    const result = await fx.sync({ allowMassDelete: true });

    // Assert
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 16, 0, 14],
      ['register', 0, 0, 0, 0, 40],
      ['device_register', 0, 0, 32, 0, 28],
    ]);
    expect(await fx.rows('site', 'meter', 'id')).toEqual(
      await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id'),
    );
  });

  it('a remote that returns nothing wipes nothing', async () => {
    // Arrange
    await arrange();
    await fx.remoteClient.query('TRUNCATE meter, register, device_register');
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('failed');
    expect(result.entities.map((e) => [e.entity, e.status, e.error?.code])).toEqual([
      ['meter', 'failed', 'MASS_DELETE_GUARD'],
      ['register', 'failed', 'MASS_DELETE_GUARD'],
      ['device_register', 'failed', 'MASS_DELETE_GUARD'],
    ]);
    const after = await siteContents(fx.siteClient);
    expect({ ...after, sync_run_count: [] }).toEqual({ ...before, sync_run_count: [] });
  });

  it('allows exactly the ratio: half of the rows may go', async () => {
    await arrange();
    await dropMeters(15);
    const result = await fx.sync();
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 15, 0, 15],
      ['register', 0, 0, 0, 0, 40],
      ['device_register', 0, 0, 30, 0, 30],
    ]);
  });

  it('honours a custom maxDeleteRatio', async () => {
    // Arrange: 4 of 30 meters (13%) and 8 of 60 associations go.
    await arrange();
    await dropMeters(4);
    const before = await siteContents(fx.siteClient);

    // Act
    const strict = await fx.sync({ maxDeleteRatio: 0.1 });
    const unchanged = await siteContents(fx.siteClient);
    const lenient = await fx.sync({ maxDeleteRatio: 0.2 });

    // Assert
    expect(strict.entities.map((e) => [e.entity, e.status, e.error?.code])).toEqual([
      ['meter', 'failed', 'MASS_DELETE_GUARD'],
      ['register', 'ok', undefined],
      ['device_register', 'failed', 'MASS_DELETE_GUARD'],
    ]);
    expect(entity(strict, 'meter').error!.message).toContain('more than 10%');
    expect({ ...unchanged, sync_run_count: [] }).toEqual({ ...before, sync_run_count: [] });
    expect(lenient.status).toBe('ok');
    expect(countRows(lenient)).toEqual([
      ['meter', 0, 0, 4, 0, 26],
      ['register', 0, 0, 0, 0, 40],
      ['device_register', 0, 0, 8, 0, 52],
    ]);
  });

  it('below 20 site rows, deletes any share but all of them', async () => {
    // Arrange: 19 meters and 19 associations; 18 of them gone from the remote.
    await arrange({ metersPerTenant: 19, registersPerMeter: 1 });
    await dropMeters(18);

    // Act
    const result = await fx.sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 18, 0, 1],
      ['register', 0, 0, 0, 0, 40],
      ['device_register', 0, 0, 18, 0, 1],
    ]);
  });

  it('refuses to empty a table however few rows it holds: a small site is still a site', async () => {
    // Arrange: 5 meters with an association each, all gone from the remote (a tenant renumbered).
    await arrange({ metersPerTenant: 5, registersPerMeter: 1 });
    await dropMeters(5);
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert: nothing is deleted; the registers, which stay, commit.
    expect(result.status).toBe('partial');
    expect(entity(result, 'meter')).toMatchObject({ status: 'failed', error: { code: 'MASS_DELETE_GUARD' } });
    expect(entity(result, 'meter').error!.message).toContain(
      'refusing to delete every one of its 5 site rows',
    );
    expect(entity(result, 'device_register').error!.message).toContain(
      'refusing to delete every one of its 5 site rows',
    );
    expect(entity(result, 'register').status).toBe('ok');
    const after = await siteContents(fx.siteClient);
    expect([after.meter, after.device_register]).toEqual([before.meter, before.device_register]);

    // And allowed, it empties them.
    const allowed = await fx.sync({ allowMassDelete: true });
    expect(countRows(allowed)).toEqual([
      ['meter', 0, 0, 5, 0, 0],
      ['register', 0, 0, 0, 0, 40],
      ['device_register', 0, 0, 5, 0, 0],
    ]);
  });

  it('honours a custom minimum: a table below it may lose any share but all of its rows', async () => {
    // Arrange: 16 of 30 meters gone, more than half: guarded at the default minimum of 20.
    await arrange();
    await dropMeters(16);

    // Act: a minimum above the tables' 30 meters and 60 associations lets the ratio go unchecked.
    const result = await fx.sync({ massDeleteMinRows: 61 });

    // Assert
    expect(result.status).toBe('ok');
    expect(entity(result, 'meter')).toMatchObject({ deleted: 16 });
  });

  it('a guarded parent does not fail its children: they run against the parent rows the site keeps', async () => {
    // Arrange: 25 of 40 registers vanish from the remote, their 32 associations stay there (orphans),
    // and an association of a surviving register changes.
    await arrange();
    await fx.remoteClient.query('DELETE FROM register WHERE id BETWEEN $1 AND $2', [
      registerId(1, 16),
      registerId(1, 40),
    ]);
    await fx.remoteClient.query(
      'UPDATE device_register SET poll_interval_s = 1 WHERE device_id = $1 AND register_id = $2',
      [meterId(1, 1), registerId(1, 3)],
    );
    const before = await siteContents(fx.siteClient);

    // Act
    const result = await fx.sync();

    // Assert: the registers stay, so every association is still applicable and none is deleted.
    expect(result.status).toBe('partial');
    expect(entity(result, 'register')).toMatchObject({
      status: 'failed',
      error: { code: 'MASS_DELETE_GUARD' },
    });
    expect(countRows(result)).toEqual([
      ['meter', 0, 0, 0, 0, 30],
      ['register', 0, 0, 0, 0, 0],
      ['device_register', 0, 1, 0, 0, 59],
    ]);
    const after = await siteContents(fx.siteClient);
    expect(after.register).toEqual(before.register);
    expect(reportedCounts(result).device_register).toEqual(contentsDiff(before, after).device_register);
  });
});
