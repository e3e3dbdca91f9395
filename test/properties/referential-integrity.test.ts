/** Properties 2, 3 and 4: associations keep both parents, and deletions of registers and associations are complete and counted once. */
import fc from 'fast-check';
import type { Row } from '../../lib/db/rows';
import { runEntities, syncCase } from './arbitraries';
import { expectedRun, keyText, PINNED_REASON, pinnedSample, skippedSample, type Table } from './model';
import {
  createPropertyDatabases,
  type PropertyDatabases,
  propertyParameters,
  propertyTimeout,
  snapshot,
} from './property-databases';

const SKIPPED_KEY_SAMPLE = 5;

function keys(table: Table, rows: readonly Row[]): Set<string> {
  return new Set(rows.map((row) => keyText(table, row)));
}

describe('referential integrity and deletion properties', () => {
  let dbs: PropertyDatabases;
  beforeAll(async () => {
    dbs = await createPropertyDatabases();
  });
  afterAll(() => dbs.close());

  it(
    'property 2: referential integrity — every site association has both parents; remote associations with a missing or foreign parent are skipped, never applied; a run without the associations keeps the parent rows they reference, counting each skipped delete',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, runEntities, async (c, entities) => {
          await dbs.load(c);
          const before = await snapshot(dbs.site);
          const expected = expectedRun(await snapshot(dbs.remote), c.tenantId, before, entities);

          const result = await dbs.sync(c.tenantId, { entities });

          expect(result.status).toBe('ok');
          const site = await snapshot(dbs.site);
          const meters = new Set(site.meter.map((m) => m.id));
          const registers = new Set(site.register.map((r) => r.id));
          expect(
            site.device_register.filter((a) => !meters.has(a.device_id!) || !registers.has(a.register_id!)),
          ).toEqual([]);
          const associations = result.entities.find((e) => e.entity === 'device_register');
          if (associations) {
            expect(associations.skipped).toBe(expected.skipped.length);
            expect(associations.skippedKeys ?? []).toEqual(
              skippedSample(expected.skipped, SKIPPED_KEY_SAMPLE),
            );
            const onSite = keys('device_register', site.device_register);
            expect(expected.skipped.filter((a) => onSite.has(keyText('device_register', a)))).toEqual([]);
          }
          for (const table of ['meter', 'register'] as const) {
            const parent = result.entities.find((e) => e.entity === table);
            if (!parent) continue;
            const sample = pinnedSample(expected, table, SKIPPED_KEY_SAMPLE);
            expect({ table, skipped: parent.skipped, keys: parent.skippedKeys ?? [] }).toEqual({
              table,
              skipped: expected.pinned[table].length,
              keys: sample,
            });
            expect(parent.skippedReasons ?? []).toEqual(sample.map(() => PINNED_REASON));
          }
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_000),
  );

  it(
    "property 3: register deletion consistency — a register absent from the tenant's remote slice is absent from the site after a sync, and counted exactly once",
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, async (c) => {
          await dbs.load(c);
          const before = await snapshot(dbs.site);
          const expected = expectedRun(await snapshot(dbs.remote), c.tenantId);
          const inSlice = keys('register', expected.slice.register);
          const absent = before.register.filter((r) => !inSlice.has(keyText('register', r)));

          const result = await dbs.sync(c.tenantId);

          expect(result.status).toBe('ok');
          const onSite = keys('register', (await snapshot(dbs.site)).register);
          expect(absent.filter((r) => onSite.has(keyText('register', r)))).toEqual([]);
          expect(result.entities.find((e) => e.entity === 'register')!.deleted).toBe(absent.length);
          const again = await dbs.sync(c.tenantId);
          expect(again.entities.find((e) => e.entity === 'register')!.deleted).toBe(0);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );

  it(
    'property 4: device-register deletion consistency — an association not in the applied slice, or whose meter or register went, is absent and counted exactly once',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, runEntities, async (c, entities) => {
          await dbs.load(c);
          const before = await snapshot(dbs.site);
          const expected = expectedRun(await snapshot(dbs.remote), c.tenantId, before, entities);
          const applied = keys('device_register', expected.site.device_register);
          const absent = before.device_register.filter((a) => !applied.has(keyText('device_register', a)));

          const result = await dbs.sync(c.tenantId, { entities });

          expect(result.status).toBe('ok');
          const after = await snapshot(dbs.site);
          const onSite = keys('device_register', after.device_register);
          expect(absent.filter((a) => onSite.has(keyText('device_register', a)))).toEqual([]);
          // In particular those whose meter or register is no longer on the site.
          const meters = new Set(after.meter.map((m) => m.id));
          const registers = new Set(after.register.map((r) => r.id));
          const orphaned = before.device_register.filter(
            (a) => !meters.has(a.device_id!) || !registers.has(a.register_id!),
          );
          expect(orphaned.filter((a) => onSite.has(keyText('device_register', a)))).toEqual([]);
          const associations = result.entities.find((e) => e.entity === 'device_register');
          expect(associations?.deleted ?? 0).toBe(absent.length);
          const again = await dbs.sync(c.tenantId, { entities });
          expect(again.entities.find((e) => e.entity === 'device_register')?.deleted ?? 0).toBe(0);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );
});
