/**
 * The plan property (issue 14): an untruncated plan lists, change for change, what the sync that
 * follows it does: every key and op of the site's before/after difference, each update's differing
 * columns with both texts, and as many skips as the run counts; its counts are the sync's.
 */
import fc from 'fast-check';
import type { Row } from '../../lib/db/rows';
import type { RowChange } from '../../lib/engine';
import { runEntities, syncCase } from './arbitraries';
import { KEY_COLUMNS, TABLES, type Table, type TableRows } from './model';
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

/** The changes a before/after comparison of one table finds, in the plan's form (keys as text). */
function difference(table: Table, before: TableRows, after: TableRows): RowChange[] {
  const keyOf = (row: Row) => JSON.stringify(KEY_COLUMNS[table].map((k) => row[k]));
  const was = new Map(before[table].map((row) => [keyOf(row), row]));
  const is = new Map(after[table].map((row) => [keyOf(row), row]));
  const changes: RowChange[] = [];
  for (const key of new Set([...was.keys(), ...is.keys()])) {
    const b = was.get(key);
    const a = is.get(key);
    const row = (a ?? b)!;
    const keyValues = Object.fromEntries(KEY_COLUMNS[table].map((k) => [k, row[k] ?? null]));
    const columns = Object.keys(row).filter((c) => !b || !a || b[c] !== a[c]);
    if (b && a && columns.length === 0) continue;
    changes.push({
      op: !b ? 'insert' : !a ? 'delete' : 'update',
      key: keyValues,
      columns: Object.fromEntries(columns.map((c) => [c, { site: b?.[c] ?? null, remote: a?.[c] ?? null }])),
    });
  }
  return changes;
}

const byKey = (changes: readonly RowChange[]) =>
  [...changes].sort((x, y) => JSON.stringify(x.key).localeCompare(JSON.stringify(y.key)));

describe('plan property', () => {
  let dbs: PropertyDatabases;
  beforeAll(async () => {
    dbs = await createPropertyDatabases();
  });
  afterAll(() => dbs.close());

  it(
    'a plan lists exactly the changes of the sync that follows it, and writes nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, runEntities, fc.boolean(), async (c, entities, allowMassDelete) => {
          await dbs.load(c);
          const before = await snapshot(dbs.site);
          const versions = await rowVersions(dbs.site);
          const runs = await syncRunCount(dbs.site);

          const plan = await dbs.sync(c.tenantId, { entities, allowMassDelete, changes: { max: 100_000 } });

          expect(plan.dryRun).toBe(true);
          expect(await snapshot(dbs.site)).toEqual(before);
          expect(await rowVersions(dbs.site)).toEqual(versions);
          expect(await syncRunCount(dbs.site)).toBe(runs);
          const real = await dbs.sync(c.tenantId, { entities, allowMassDelete });
          expect(resultCounts(plan)).toEqual(resultCounts(real));
          const after = await snapshot(dbs.site);
          for (const result of plan.entities) {
            const table = result.entity as Table;
            const listed = result.changes ?? [];
            expect(result.changesTruncated).toBe(false);
            expect(byKey(listed.filter((change) => change.op !== 'skip'))).toEqual(
              result.status === 'ok' ? byKey(difference(table, before, after)) : [],
            );
            const skips = listed.filter((change) => change.op === 'skip');
            expect(skips).toHaveLength(result.skipped);
            expect(skips.every((skip) => typeof skip.reason === 'string' && skip.reason !== '')).toBe(true);
          }
          expect(plan.entities.map((e) => e.entity).filter((t) => !TABLES.includes(t as Table))).toEqual([]);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );
});
