/** Property 10: an entity step that fails leaves that entity as it was, and the others as a run without it would. */
import fc from 'fast-check';
import { performSync } from '../../lib/engine';
import { failureCase, isPoisoned, POISON_CHECKS } from './arbitraries';
import { expectedRun, keyText, sortedTables, TABLES } from './model';
import {
  createExtraSite,
  createPropertyDatabases,
  type ExtraSite,
  loadTables,
  type PropertyDatabases,
  padTables,
  propertyParameters,
  propertyTimeout,
  resultCounts,
  snapshot,
} from './property-databases';

describe('failure isolation property', () => {
  let dbs: PropertyDatabases;
  /** A second site, synced from the same starting rows without the failing entity. */
  let reference: ExtraSite;
  beforeAll(async () => {
    [dbs, reference] = await Promise.all([createPropertyDatabases(), createExtraSite()]);
    for (const client of [dbs.site, reference.client]) {
      for (const table of TABLES) {
        await client.query(
          `ALTER TABLE ${table} ADD CONSTRAINT poison_check CHECK (${POISON_CHECKS[table]})`,
        );
      }
    }
  });
  afterAll(() => Promise.all([dbs.close(), reference.close()]));

  it(
    'property 10: failure isolation — a failing entity step leaves that entity exactly as before, and the others exactly as a run without it',
    async () => {
      await fc.assert(
        fc.asyncProperty(failureCase, async (c) => {
          await dbs.load(c);
          await reference.reset();
          await loadTables(reference.client, c.site);
          if (c.padding) await padTables(reference.client, 'site', c.padding, c.tenantId);
          const before = await snapshot(dbs.site);
          const full = expectedRun(await snapshot(dbs.remote), c.tenantId);
          // Deleting more than half of 20 or more rows, or every row however few, trips the guard,
          // before any upsert; a poisoned row written fails the upsert.
          const trips = (table: (typeof TABLES)[number]) => {
            const kept = new Set(full.site[table].map((row) => keyText(table, row)));
            const siteRows = before[table].length;
            const deletes = before[table].filter((row) => !kept.has(keyText(table, row))).length;
            return (siteRows >= 20 && deletes > 0.5 * siteRows) || (deletes > 0 && deletes === siteRows);
          };
          const guardTrips = trips(c.entity);
          const poisonWritten = full.site[c.entity].some((row) => isPoisoned(c.entity, row));
          const others = TABLES.filter((t) => t !== c.entity);
          // The property is about one failing entity: a case where the guard stops another is not one.
          fc.pre(!others.some(trips));

          const result = await dbs.sync(c.tenantId, { allowMassDelete: false });
          const withoutIt = await performSync({
            remote: dbs.fx.remote.url,
            site: reference.db.url,
            tenantId: c.tenantId,
            entities: others,
            allowMassDelete: false,
          });

          const after = await snapshot(dbs.site);
          const entity = result.entities.find((e) => e.entity === c.entity)!;
          if (!guardTrips && !poisonWritten) {
            expect(result.status).toBe('ok');
            expect(sortedTables(after)).toEqual(full.site);
            return;
          }
          expect(entity.status).toBe('failed');
          expect(entity.error?.code).toBe(guardTrips ? 'MASS_DELETE_GUARD' : 'SITE_REJECTED_ROW');
          expect(after[c.entity]).toEqual(before[c.entity]);
          const referenceAfter = await snapshot(reference.client);
          for (const table of others)
            expect({ table, rows: after[table] }).toEqual({ table, rows: referenceAfter[table] });
          const counts = resultCounts(result);
          expect(Object.fromEntries(others.map((t) => [t, counts[t]]))).toEqual(resultCounts(withoutIt));
          expect(result.entities.filter((e) => e.entity !== c.entity).map((e) => e.skippedKeys)).toEqual(
            withoutIt.entities.map((e) => e.skippedKeys),
          );
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );
});
