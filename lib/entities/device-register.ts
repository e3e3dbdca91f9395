/**
 * Which registers a meter polls. It has no tenant column of its own: the tenant's rows are the
 * associations of the tenant's meters, so the remote query reaches them through `meter`.
 */
import type { EntityMetadata } from './entity-metadata';

export const deviceRegister: EntityMetadata = {
  name: 'device_register',
  table: 'device_register',
  keyColumns: ['device_id', 'register_id'],
  columns: ['device_id', 'register_id', 'poll_interval_s', 'enabled'],
  remoteQuery: `SELECT dr.device_id, dr.register_id, dr.poll_interval_s, dr.enabled
    FROM device_register dr
    JOIN meter m ON m.id = dr.device_id
    WHERE m.tenant_id = $1`,
  parents: [
    { entity: 'meter', columns: { device_id: 'id' } },
    { entity: 'register', columns: { register_id: 'id' } },
  ],
};
