/** Properties 5 and 9: a run's counts equal an independent before/after comparison, and a dry run reports them exactly without writing. */
import fc from 'fast-check';
import { runEntities, syncCase } from './arbitraries';
import { expectedCounts, expectedRun, TABLES } from './model';
import {
  createPropertyDatabases,
  type PropertyDatabases,
  propertyParameters,
  propertyTimeout,
  resultCounts,
  rowVersions,
  snapshot,
  syncRunCount,
} from './property-databases';

describe('accounting properties', () => {
  let dbs: PropertyDatabases;
  beforeAll(async () => {
    dbs = await createPropertyDatabases();
  });
  afterAll(() => dbs.close());

  it(
    'property 5: result accuracy — inserted, updated, deleted, skipped and unchanged equal a comparison of the site before and after, by text',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, runEntities, async (c, entities) => {
          await dbs.load(c);
          const before = await snapshot(dbs.site);
          const expected = expectedRun(await snapshot(dbs.remote), c.tenantId, before, entities);

          const result = await dbs.sync(c.tenantId, { entities });

          expect(result.status).toBe('ok');
          const counts = expectedCounts(before, await snapshot(dbs.site), expected);
          const synced = TABLES.filter((t) => (entities ?? TABLES).includes(t));
          expect(resultCounts(result)).toEqual(
            Object.fromEntries(synced.map((t) => [t, { status: 'ok', ...counts[t] }])),
          );
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_000),
  );

  it(
    'property 9: dry run — reports exactly the counts of the real run that follows it, and changes nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, runEntities, fc.boolean(), async (c, entities, allowMassDelete) => {
          await dbs.load(c);
          const rows = await snapshot(dbs.site);
          const versions = await rowVersions(dbs.site);
          const runs = await syncRunCount(dbs.site);

          const dry = await dbs.sync(c.tenantId, { entities, allowMassDelete, dryRun: true });

          expect(dry.dryRun).toBe(true);
          expect(await snapshot(dbs.site)).toEqual(rows);
          expect(await rowVersions(dbs.site)).toEqual(versions);
          expect(await syncRunCount(dbs.site)).toBe(runs);
          const real = await dbs.sync(c.tenantId, { entities, allowMassDelete });
          expect(real.dryRun).toBe(false);
          expect(dry.status).toBe(real.status);
          expect(resultCounts(dry)).toEqual(resultCounts(real));
          expect(dry.entities.map((e) => e.skippedKeys)).toEqual(real.entities.map((e) => e.skippedKeys));
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );
});
