/**
 * The tenant's slice on the remote is not empty. A site secret with a wrong tenant id reads an
 * empty slice, and only the mass-delete guard would then stand between the site and its rows.
 * Counted with the engine's slice statement, capped, so a large tenant costs no full count.
 */
import type { Client } from 'pg';
import { remoteSql } from '../../db/sync-sql';
import type { EntityMetadata } from '../../entities';
import { type Check, check } from './check';
import { underSavepoint } from './savepoint';

/** Counts stop here: enough to tell an empty slice from a full one. */
export const SLICE_COUNT_CAP = 10_000;

const count = (meta: EntityMetadata) =>
  `SELECT count(*)::integer AS rows FROM (SELECT 1 FROM (${remoteSql.slice(meta)}) AS slice LIMIT $2) AS capped`;

/** `readable`: the entities whose remote slice can be read (the others are reported not counted). */
export async function tenantSliceCheck(
  client: Client,
  entities: readonly EntityMetadata[],
  readable: (meta: EntityMetadata) => boolean,
  tenantId: number,
): Promise<Check> {
  const name = 'tenant slice';
  const parts: string[] = [];
  const counts: number[] = [];
  for (const meta of entities) {
    if (!readable(meta)) {
      parts.push(`${meta.name} not counted`);
      continue;
    }
    try {
      const { rows } = await underSavepoint(client, () =>
        client.query<{ rows: number }>(count(meta), [tenantId, SLICE_COUNT_CAP + 1]),
      );
      const found = rows[0]?.rows ?? 0;
      counts.push(found);
      parts.push(`${found > SLICE_COUNT_CAP ? `${SLICE_COUNT_CAP}+` : found} ${meta.name}`);
    } catch {
      parts.push(`${meta.name} not counted`);
    }
  }
  const summary = `tenant ${tenantId}: ${parts.join(', ')}`;
  if (counts.length === 0) return check(name, 'warn', `${summary}: no entity's remote slice could be read`);
  if (counts.every((n) => n === 0)) {
    return check(
      name,
      'warn',
      `${summary}: the tenant has no rows on the remote`,
      'check the tenant id in the site secret: a wrong tenant id would meet only the mass-delete guard',
    );
  }
  return check(name, 'ok', summary);
}
