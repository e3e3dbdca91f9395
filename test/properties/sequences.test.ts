/**
 * Property 11: any sequence of remote edits (parents deleted with and without their children,
 * inserted before and after them, re-keyed) and syncs of all entities or of some ends as the model
 * says after every run, with every run's counts accurate.
 */
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
    case 'deleteParent': {
      if (edit.withChildren)
        await remote.query(`DELETE FROM device_register WHERE ${reference(edit.table)} = $1`, [edit.id]);
      return deleteRow(remote, edit.table, { id: edit.id });
    }
    case 'insertParent': {
      const associations = edit.partners.map((partner) => ({
        ...edit.association,
        device_id: edit.table === 'meter' ? edit.row.id! : partner,
        register_id: edit.table === 'register' ? edit.row.id! : partner,
      }));
      if (edit.childrenFirst) await upsertRows(remote, 'device_register', associations);
      await upsertRows(remote, edit.table, [edit.row]);
      if (!edit.childrenFirst) await upsertRows(remote, 'device_register', associations);
      return;
    }
    case 'rekey': {
      const { rowCount } = await remote.query(
        `UPDATE ${edit.table} SET id = $2 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ${edit.table} WHERE id = $2)`,
        [edit.id, edit.to],
      );
      if (rowCount && edit.withChildren) {
        const column = reference(edit.table);
        // Associations that would collide with one already there keep the old key (orphans).
        await remote.query(
          `UPDATE device_register d SET ${column} = $2 WHERE ${column} = $1 AND NOT EXISTS (
             SELECT 1 FROM device_register o WHERE o.${column} = $2
               AND o.${other(column)} = d.${other(column)})`,
          [edit.id, edit.to],
        );
      }
      return;
    }
  }
}

/** The association column that references a parent table. */
function reference(table: 'meter' | 'register'): 'device_id' | 'register_id' {
  return table === 'meter' ? 'device_id' : 'register_id';
}

function other(column: 'device_id' | 'register_id'): 'device_id' | 'register_id' {
  return column === 'device_id' ? 'register_id' : 'device_id';
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
            const { entities } = step;
            const expected = expectedRun(await snapshot(dbs.remote), c.tenantId, before, entities);

            const dry = step.dryRunFirst ? await dbs.sync(c.tenantId, { dryRun: true, entities }) : undefined;
            const result = await dbs.sync(c.tenantId, { entities });

            expect({ step: index, status: result.status }).toEqual({ step: index, status: 'ok' });
            const after = await snapshot(dbs.site);
            expect({ step: index, site: sortedTables(after) }).toEqual({ step: index, site: expected.site });
            const counts = expectedCounts(before, after, expected);
            const synced = TABLES.filter((t) => (entities ?? TABLES).includes(t));
            expect({ step: index, counts: resultCounts(result) }).toEqual({
              step: index,
              counts: Object.fromEntries(synced.map((t) => [t, { status: 'ok', ...counts[t] }])),
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
