/**
 * The reference remote ("central") schema. The real one is the customer's; this one serves the
 * tests, the demo and the benchmarks. It has no foreign keys on purpose: the remote may hold
 * associations whose parent is missing or belongs to another tenant, and the engine must cope.
 */
import type { Client } from 'pg';

export const REMOTE_SCHEMA_SQL = `
  CREATE TABLE IF NOT EXISTS meter (
    id bigint PRIMARY KEY,
    tenant_id integer NOT NULL,
    name text NOT NULL,
    serial_number text,
    protocol text NOT NULL,
    ip_address text,
    port integer,
    active boolean NOT NULL,
    config jsonb,
    updated_at timestamptz NOT NULL
  );
  CREATE INDEX IF NOT EXISTS meter_tenant_id_idx ON meter (tenant_id);
  CREATE TABLE IF NOT EXISTS register (
    id bigint PRIMARY KEY,
    tenant_id integer NOT NULL,
    name text NOT NULL,
    address integer NOT NULL,
    data_type text NOT NULL,
    unit text,
    scale numeric(18,6) NOT NULL,
    description text,
    updated_at timestamptz NOT NULL
  );
  CREATE INDEX IF NOT EXISTS register_tenant_id_idx ON register (tenant_id);
  CREATE TABLE IF NOT EXISTS device_register (
    device_id bigint NOT NULL,
    register_id bigint NOT NULL,
    poll_interval_s integer NOT NULL,
    enabled boolean NOT NULL,
    PRIMARY KEY (device_id, register_id)
  );`;

export async function createRemoteSchema(client: Client): Promise<void> {
  await client.query(REMOTE_SCHEMA_SQL);
}
