/** The tenant the site is bound to against the tenant the run is for: another is a TENANT_MISMATCH (DESIGN §3.11). */
import type { Client } from 'pg';
import { SiteDatabase } from '../../db/site-database';
import { siteSql } from '../../db/sync-sql';
import { type Check, check } from './check';

export async function siteTenantCheck(client: Client, tenantId: number): Promise<Check> {
  const name = 'site tenant';
  const { rows } = await client.query<{ present: boolean }>(siteSql.tableExists, ['meter_sync_site']);
  if (!rows[0]?.present)
    return check(
      name,
      'ok',
      `not bound yet: the schema has no binding (a migration adds it); the first run that commits binds the site to tenant ${tenantId}`,
    );
  const bound = await new SiteDatabase(client).boundTenant();
  if (bound === undefined)
    return check(
      name,
      'ok',
      `not bound yet: the first run that commits binds the site to tenant ${tenantId}`,
    );
  if (bound === tenantId) return check(name, 'ok', `bound to tenant ${tenantId}`);
  return check(
    name,
    'fail',
    `bound to tenant ${bound}, not ${tenantId} [TENANT_MISMATCH]: a run would refuse to replace its rows`,
    'check the tenant id (the site secret, --tenant); to re-bind the site on purpose, sync with --allow-tenant-change (and --allow-mass-delete)',
  );
}
