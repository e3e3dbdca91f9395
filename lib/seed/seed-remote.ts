/**
 * Deterministic seed data for the reference remote schema, generated in the server with
 * generate_series so that a million rows take seconds. The same options always give the same
 * rows; tests, the demo and the benchmarks share it.
 */
import type { Client } from 'pg';

export interface SeedOptions {
  /** Tenant ids to create data for. */
  tenants: readonly number[];
  metersPerTenant: number;
  registersPerTenant: number;
  /** Associations per meter, to registers of the same tenant (at most registersPerTenant). */
  registersPerMeter: number;
  /** Varies the generated values (not the keys). */
  seed?: number;
}

/** Key ranges never overlap between tenants: ids are tenant * ID_SPAN + n. */
export const ID_SPAN = 100_000_000;

export function meterId(tenant: number, n: number): number {
  return tenant * ID_SPAN + n;
}

export function registerId(tenant: number, n: number): number {
  return tenant * ID_SPAN + n;
}

export interface SeedCounts {
  meters: number;
  registers: number;
  deviceRegisters: number;
}

export async function seedRemote(client: Client, options: SeedOptions): Promise<SeedCounts> {
  const { metersPerTenant: m, registersPerTenant: r, registersPerMeter: k } = options;
  if (k > r) throw new Error('registersPerMeter must not exceed registersPerTenant');
  const seed = options.seed ?? 1;
  const counts: SeedCounts = { meters: 0, registers: 0, deviceRegisters: 0 };
  for (const tenant of options.tenants) {
    const base = [tenant, ID_SPAN, seed];
    const meters = await client.query(
      `INSERT INTO meter (id, tenant_id, name, serial_number, protocol, ip_address, port, active, config, updated_at)
       SELECT $1::bigint * $2 + i, $1, 'Meter ' || i || ' – Zähler ' || $1,
              CASE WHEN i % 7 = 0 THEN NULL ELSE 'SN-' || lpad(to_hex(hashint4(i + $3::int)), 8, '0') END,
              (ARRAY['modbus-tcp', 'modbus-rtu', 'mbus', 'bacnet'])[1 + abs(hashint4(i * 3 + $3::int)) % 4],
              CASE WHEN i % 5 = 0 THEN NULL ELSE '10.' || $1 % 256 || '.' || (i / 256) % 256 || '.' || i % 256 END,
              CASE WHEN i % 5 = 0 THEN NULL ELSE 502 END,
              i % 11 <> 0,
              CASE WHEN i % 3 = 0 THEN NULL
                   ELSE jsonb_build_object('unitId', i % 247, 'timeoutMs', 1000 + i % 9 * 250, 'tags', jsonb_build_array('site', 'floor-' || i % 9)) END,
              timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => abs(hashint4(i + $3::int)) / 1000.0) + (i % 1000000) * interval '1 microsecond'
       FROM generate_series(1, $4::int) AS i`,
      [...base, m],
    );
    const registers = await client.query(
      `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
       SELECT $1::bigint * $2 + i, $1, 'Register ' || i,
              30000 + i % 10000,
              (ARRAY['uint16', 'int32', 'float32', 'float64'])[1 + abs(hashint4(i + $3::int)) % 4],
              (ARRAY['kWh', 'kW', 'V', 'A', NULL, '°C'])[1 + abs(hashint4(i * 7 + $3::int)) % 6],
              round((abs(hashint4(i * 13 + $3::int)) % 100000000)::numeric / 1000000, 6),
              CASE WHEN i % 4 = 0 THEN NULL ELSE 'Channel ' || i || ' "quoted" \\ backslash' END,
              timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => abs(hashint4(i * 5 + $3::int)) / 1000.0)
       FROM generate_series(1, $4::int) AS i`,
      [...base, r],
    );
    const associations = await client.query(
      `INSERT INTO device_register (device_id, register_id, poll_interval_s, enabled)
       SELECT $1::bigint * $2 + mi, $1::bigint * $2 + ((mi * $6::int + j) % $5::int) + 1,
              (ARRAY[5, 15, 60, 300])[1 + abs(hashint4(mi * 31 + j + $3::int)) % 4],
              (mi + j) % 13 <> 0
       FROM generate_series(1, $4::int) AS mi, generate_series(0, $6::int - 1) AS j`,
      [...base, m, r, k],
    );
    counts.meters += meters.rowCount ?? 0;
    counts.registers += registers.rowCount ?? 0;
    counts.deviceRegisters += associations.rowCount ?? 0;
  }
  return counts;
}
