/**
 * The entity tables a migration would create, as it would find them (site-adoption.ts): the same
 * differences it refuses (fail, SITE_SCHEMA_CONFLICT), tables of several tenants (fail,
 * SITE_MIXED_TENANTS, unless the site is bound), types that refuse some values (warn), and what
 * it adopts, keeps and creates. Read in the check's read-only transaction.
 */
import type { Client } from 'pg';
import { inspectTables } from '../../db/site-adoption';
import { SiteDatabase } from '../../db/site-database';
import type { SiteTableSpec } from '../../db/site-tables';
import { siteSql } from '../../db/sync-sql';
import { describeDifference } from '../../errors';
import { type Check, check } from './check';

const NAME = 'site tables';

/** The tenant the site is bound to, once a migration made the binding's table. */
async function boundTenant(client: Client): Promise<number | undefined> {
  const { rows } = await client.query<{ present: boolean }>(siteSql.tableExists, ['meter_sync_site']);
  return rows[0]?.present ? new SiteDatabase(client).boundTenant() : undefined;
}

/** `pending`: the tables of the migrations the site has yet to apply. */
export async function siteTablesCheck(
  client: Client,
  pending: readonly SiteTableSpec[],
  tenantId: number,
): Promise<Check> {
  if (pending.length === 0) return check(NAME, 'ok', 'no entity table left to create: nothing to adopt');
  const found = await inspectTables(client, pending);
  if (found.conflicts.length > 0)
    return check(
      NAME,
      'fail',
      `${found.conflicts.map(describeDifference).join('; ')} [SITE_SCHEMA_CONFLICT]: the migration refuses these tables and changes nothing`,
      'change them on the site (or move them out of the way), then check again',
    );
  if (found.mixedTenants && (await boundTenant(client)) === undefined)
    return check(
      NAME,
      'fail',
      `the tables hold rows of more than one tenant (${found.mixedTenants
        .map((t) => `${t.table}: tenants ${t.tenants.join(', ')}${t.more ? ', ...' : ''}`)
        .join('; ')}) [SITE_MIXED_TENANTS]: is this the remote, or a copy of it?`,
      `if it is the site, migrate or sync with --allow-tenant-change (allowTenantChange) to keep tenant ${tenantId}'s rows and bind the site to it; the first sync deletes the others (--allow-mass-delete where that is most of them)`,
    );
  const created = found.tables.filter((t) => !t.present).map((t) => t.spec.name);
  if (found.adopted.length === 0)
    return check(NAME, 'ok', `none of ${created.join(', ')} is there yet: the migration creates them`);
  const parts = [
    `adopts ${found.adopted.join(', ')}`,
    ...found.kept.map((k) => `keeps ${k}`),
    ...(created.length > 0 ? [`creates ${created.join(', ')}`] : []),
  ];
  if (found.caveats.length > 0)
    return check(
      NAME,
      'warn',
      parts.join('; '),
      'a site column of a narrower type refuses the rows that do not fit it (SITE_REJECTED_ROW): widen it to take every value',
    );
  return check(NAME, 'ok', parts.join('; '));
}
