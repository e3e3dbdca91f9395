/** Properties 1, 6 and 8: a sync converges to the tenant's slice, keeps tenants apart, and a second sync writes nothing. */
import fc from 'fast-check';
import { syncCase } from './arbitraries';
import { expectedRun, sortedTables, TABLES } from './model';
import {
  createPropertyDatabases,
  type PropertyDatabases,
  propertyParameters,
  propertyTimeout,
  rowVersions,
  snapshot,
} from './property-databases';

describe('sync convergence properties', () => {
  let dbs: PropertyDatabases;
  beforeAll(async () => {
    dbs = await createPropertyDatabases();
  });
  afterAll(() => dbs.close());

  it(
    'property 1: idempotence — after a sync, a second sync writes nothing and reports 0 inserted, updated, deleted',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, async (c) => {
          await dbs.load(c);
          const first = await dbs.sync(c.tenantId);
          expect(first.status).toBe('ok');
          const rows = await snapshot(dbs.site);
          const versions = await rowVersions(dbs.site);

          const second = await dbs.sync(c.tenantId);

          expect(second.status).toBe('ok');
          for (const [i, table] of TABLES.entries()) {
            expect({ entity: second.entities[i]!.entity, ...second.entities[i] }).toMatchObject({
              entity: table,
              inserted: 0,
              updated: 0,
              deleted: 0,
              unchanged: rows[table].length,
              skipped: first.entities[i]!.skipped,
            });
          }
          // No row was rewritten, not even with the same values.
          expect(await rowVersions(dbs.site)).toEqual(versions);
          expect(await snapshot(dbs.site)).toEqual(rows);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );

  it(
    'property 6: tenant isolation — no row of another tenant is on the site after a sync, whatever the starting site',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, async (c) => {
          await dbs.load(c);
          const remote = await snapshot(dbs.remote);

          const result = await dbs.sync(c.tenantId);

          expect(result.status).toBe('ok');
          const site = await snapshot(dbs.site);
          const tenant = String(c.tenantId);
          expect(site.meter.filter((m) => m.tenant_id !== tenant)).toEqual([]);
          expect(site.register.filter((r) => r.tenant_id !== tenant)).toEqual([]);
          // An association is the tenant's when its meter is the tenant's on the remote, and its register too.
          const tenantMeters = new Set(remote.meter.filter((m) => m.tenant_id === tenant).map((m) => m.id));
          const tenantRegisters = new Set(
            remote.register.filter((r) => r.tenant_id === tenant).map((r) => r.id),
          );
          expect(
            site.device_register.filter(
              (a) => !tenantMeters.has(a.device_id!) || !tenantRegisters.has(a.register_id!),
            ),
          ).toEqual([]);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_000),
  );

  it(
    'property 8: convergence — from any starting site and remote, one successful sync leaves the site equal to the slice, column for column',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, async (c) => {
          await dbs.load(c);
          const expected = expectedRun(await snapshot(dbs.remote), c.tenantId);

          const result = await dbs.sync(c.tenantId);

          expect(result.status).toBe('ok');
          expect(sortedTables(await snapshot(dbs.site))).toEqual(expected.site);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_000),
  );
});
