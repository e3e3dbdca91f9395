/** A run for a tenant other than the one the site is bound to: it would replace the site's rows with another tenant's. */
import { MeterSyncError } from './meter-sync-error';

export class TenantMismatchError extends MeterSyncError {
  constructor(
    readonly boundTenantId: number,
    readonly tenantId: number,
  ) {
    super(
      'TENANT_MISMATCH',
      `this site is bound to tenant ${boundTenantId}, not ${tenantId}: a run for another tenant would replace its rows; ` +
        'check the tenant id (the site secret, --tenant), or re-bind the site on purpose with allowTenantChange (--allow-tenant-change)',
    );
    this.name = 'TenantMismatchError';
  }
}
