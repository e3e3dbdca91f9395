/** Property 11: any sequence of remote edits and syncs ends converged, with every run's counts accurate. */
import fc from 'fast-check';
import type { Client } from 'pg';
import { type RemoteEdit, syncCase, syncSteps } from './arbitraries';
import { expectedCounts, expectedRun, sortedTables, TABLES } from './model';
import {
  createPropertyDatabases,
  deleteRow,
  type PropertyDatabases,
  patchRow,
  propertyParameters,
  propertyTimeout,
  resultCounts,
  snapshot,
  upsertRows,
} from './property-databases';

async function applyEdit(remote: Client, edit: RemoteEdit): Promise<void> {
  switch (edit.kind) {
    case 'upsert':
      return upsertRows(remote, edit.table, [edit.row]);
    case 'delete':
      return deleteRow(remote, edit.table, edit.key);
    case 'move':
      return patchRow(remote, edit.table, { id: edit.id }, { tenant_id: edit.tenant_id });
    case 'patch':
      return patchRow(remote, edit.table, { id: edit.id }, edit.patch);
  }
}

describe('sequence property', () => {
  let dbs: PropertyDatabases;
  beforeAll(async () => {
    dbs = await createPropertyDatabases();
  });
  afterAll(() => dbs.close());

  it(
    'property 11: sequences — any sequence of remote edits and syncs ends converged, with the counts of each run accurate',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, syncSteps, async (c, steps) => {
          await dbs.load(c);
          for (const [index, step] of steps.entries()) {
            for (const edit of step.edits) await applyEdit(dbs.remote, edit);
            const before = await snapshot(dbs.site);
            const expected = expectedRun(await snapshot(dbs.remote), c.tenantId);

            const dry = step.dryRunFirst ? await dbs.sync(c.tenantId, { dryRun: true }) : undefined;
            const result = await dbs.sync(c.tenantId);

            expect({ step: index, status: result.status }).toEqual({ step: index, status: 'ok' });
            const after = await snapshot(dbs.site);
            expect({ step: index, site: sortedTables(after) }).toEqual({ step: index, site: expected.site });
            const counts = expectedCounts(before, after, expected);
            expect({ step: index, counts: resultCounts(result) }).toEqual({
              step: index,
              counts: Object.fromEntries(TABLES.map((t) => [t, { status: 'ok', ...counts[t] }])),
            });
            if (dry)
              expect({ step: index, dry: resultCounts(dry) }).toEqual({
                step: index,
                dry: resultCounts(result),
              });
          }
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(4_000),
  );
});
