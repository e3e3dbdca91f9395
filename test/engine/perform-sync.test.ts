import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

describe('performSync: full cycle', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 30, registersPerTenant: 40, registersPerMeter: 3 });
  });
  afterAll(() => fx.close());

  it('loads an empty site with exactly the tenant slice, then is idempotent', async () => {
    const first = await fx.sync();
    expect(first.status).toBe('ok');
    expect(first.entities.map((e) => [e.entity, e.inserted, e.updated, e.deleted, e.skipped])).toEqual([
      ['meter', 30, 0, 0, 0],
      ['register', 40, 0, 0, 0],
      ['device_register', 90, 0, 0, 0],
    ]);
    expect(await fx.rows('site', 'meter', 'id')).toEqual(
      await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id'),
    );
    const second = await fx.sync();
    expect(second.entities.map((e) => [e.inserted, e.updated, e.deleted, e.unchanged])).toEqual([
      [0, 0, 0, 30],
      [0, 0, 0, 40],
      [0, 0, 0, 90],
    ]);
  });
});
