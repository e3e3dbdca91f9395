/** A meter: the device at a site that the collectors poll. */
import type { EntityMetadata } from './entity-metadata';

export const meter: EntityMetadata = {
  name: 'meter',
  table: 'meter',
  keyColumns: ['id'],
  columns: [
    'id',
    'tenant_id',
    'name',
    'serial_number',
    'protocol',
    'ip_address',
    'port',
    'active',
    'config',
    'updated_at',
  ],
  tenantColumn: 'tenant_id',
};
