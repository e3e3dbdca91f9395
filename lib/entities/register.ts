/** A register: one readable quantity (address, type, unit, scale) in the tenant's catalogue. */
import type { EntityMetadata } from './entity-metadata';

export const register: EntityMetadata = {
  name: 'register',
  table: 'register',
  keyColumns: ['id'],
  columns: ['id', 'tenant_id', 'name', 'address', 'data_type', 'unit', 'scale', 'description', 'updated_at'],
  tenantColumn: 'tenant_id',
};
