/**
 * The tables a migration would adopt hold rows of several tenants, and nothing says which one the
 * site keeps: a copy of the remote, or the remote reached some way its identity did not show.
 */
import { MeterSyncError } from './meter-sync-error';

export class SiteMixedTenantsError extends MeterSyncError {
  /** `found`: each table and the tenants of its rows (the first few); `tenantId`: the run's tenant, when known. */
  constructor(
    found: readonly { table: string; tenants: readonly string[]; more: boolean }[],
    tenantId?: number,
  ) {
    const tables = found
      .map(({ table, tenants, more }) => `${table}: tenants ${tenants.join(', ')}${more ? ', ...' : ''}`)
      .join('; ');
    const keep =
      tenantId === undefined
        ? 'give the tenant (the site secret, --tenant) and allowTenantChange (--allow-tenant-change)'
        : `migrate or sync with allowTenantChange (--allow-tenant-change): the site is then bound to tenant ${tenantId}, and the first sync deletes the other tenants' rows (with allowMassDelete where that is most of them)`;
    super(
      'SITE_MIXED_TENANTS',
      `the site's tables hold rows of more than one tenant (${tables}), so nothing was adopted: ` +
        `is this the remote, or a copy of it? If it is the site, to keep one tenant's rows ${keep}`,
    );
    this.name = 'SiteMixedTenantsError';
  }
}
