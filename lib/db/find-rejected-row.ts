/**
 * Names the row a set-based upsert was refused on. The server says which constraint or type
 * refused a value, but for a CHECK, a NOT NULL or an over-long value not which row, and an
 * operator needs the key to fix the remote. The step's rows are numbered in a temporary table and
 * tried by halves, each try under a savepoint that is always rolled back, until one row is left
 * that the site refuses on its own: about 2·log2(n) statements over 2n rows in all, paid only
 * after a step has failed. Nothing it does survives it.
 */
import type { Client } from 'pg';
import { toMeterSyncError } from '../errors';
import { formatKey, type Row, TEXT_TYPES } from './rows';
import { PROBE_ORDINAL, probeSql, type ResolvedEntity, upsertFrom } from './sync-sql';

/**
 * The key (`id=5`) of a row of `source` (the SELECT the failed upsert read) that the site refuses
 * alone, or undefined when none does (only rows together fail, e.g. two rows sharing a value a
 * site-only unique index refuses). Call it with the failed statement rolled back to a savepoint.
 */
export async function findRejectedRow(
  client: Client,
  e: ResolvedEntity,
  source: string,
): Promise<string | undefined> {
  if (e.meta.columns.includes(PROBE_ORDINAL)) return undefined;
  const probe = probeSql.table(e);
  await client.query(probeSql.drop(probe));
  await client.query(probeSql.create(probe, source));
  const { rows } = await client.query<{ rows: string }>(probeSql.count(probe));
  const upsert = upsertFrom(e, probeSql.range(e, probe));

  /** Whether the site refuses the rows numbered `from` to `to`; the try is always undone. */
  const refused = async (from: number, to: number): Promise<boolean> => {
    await client.query('SAVEPOINT meter_sync_probe');
    let failed = false;
    try {
      await client.query(upsert, [from, to]);
    } catch (error) {
      if (toMeterSyncError(error).code !== 'SITE_REJECTED_ROW') throw error;
      failed = true;
    }
    await client.query('ROLLBACK TO SAVEPOINT meter_sync_probe');
    return failed;
  };

  // The whole range is known to fail: the step's statement did.
  let low = 1;
  let high = Number(rows[0]?.rows ?? 0);
  if (high === 0) return undefined;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (await refused(low, middle)) high = middle;
    else if (await refused(middle + 1, high)) low = middle + 1;
    else return undefined;
  }
  const { rows: keys } = await client.query<Row>({
    text: probeSql.key(e, probe),
    values: [low],
    types: TEXT_TYPES,
  });
  await client.query(probeSql.drop(probe));
  return keys[0] ? formatKey(e.meta.keyColumns, keys[0]) : undefined;
}
