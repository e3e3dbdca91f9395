/**
 * The site's entity tables as data: what migration 1 creates on an empty site, and what a table a
 * site already has must fit to be adopted instead (site-adoption.ts). Frozen with the migration: a
 * later change of a table is a migration of its own.
 */

export interface SiteColumnSpec {
  readonly name: string;
  /** As `format_type` writes it with its modifier (`numeric(18,6)`, `timestamp with time zone`): valid SQL too. */
  readonly type: string;
  readonly notNull: boolean;
}

/** A foreign key between entity tables: NOT DEFERRABLE, ON DELETE NO ACTION (the engine orders its work so it never fires). */
export interface SiteForeignKeySpec {
  /** The name PostgreSQL gives it (`<table>_<column>_fkey`), so that an adopted site ends like a new one. */
  readonly name: string;
  readonly columns: readonly string[];
  readonly parent: string;
  readonly parentColumns: readonly string[];
}

/** An index the engine needs beyond the key's. */
export interface SiteIndexSpec {
  readonly name: string;
  readonly columns: readonly string[];
  /** Why the engine needs it. */
  readonly why: string;
}

export interface SiteTableSpec {
  readonly name: string;
  readonly columns: readonly SiteColumnSpec[];
  /** The primary key; an adopted table may have it as a unique index over exactly these columns instead. */
  readonly key: readonly string[];
  /** The column that holds a row's tenant, for a table whose rows each belong to one. */
  readonly tenantColumn?: string;
  readonly foreignKeys: readonly SiteForeignKeySpec[];
  readonly indexes: readonly SiteIndexSpec[];
}

const column = (name: string, type: string, notNull = false): SiteColumnSpec => ({ name, type, notNull });
const TIMESTAMPTZ = 'timestamp with time zone';

/** `meter`, `register`, `device_register` as migration 1 creates them, parents first. */
export const ENTITY_TABLES_V1: readonly SiteTableSpec[] = [
  {
    name: 'meter',
    columns: [
      column('id', 'bigint', true),
      column('tenant_id', 'integer', true),
      column('name', 'text', true),
      column('serial_number', 'text'),
      column('protocol', 'text', true),
      column('ip_address', 'text'),
      column('port', 'integer'),
      column('active', 'boolean', true),
      column('config', 'jsonb'),
      column('updated_at', TIMESTAMPTZ, true),
    ],
    key: ['id'],
    tenantColumn: 'tenant_id',
    foreignKeys: [],
    indexes: [],
  },
  {
    name: 'register',
    columns: [
      column('id', 'bigint', true),
      column('tenant_id', 'integer', true),
      column('name', 'text', true),
      column('address', 'integer', true),
      column('data_type', 'text', true),
      column('unit', 'text'),
      column('scale', 'numeric(18,6)', true),
      column('description', 'text'),
      column('updated_at', TIMESTAMPTZ, true),
    ],
    key: ['id'],
    tenantColumn: 'tenant_id',
    foreignKeys: [],
    indexes: [],
  },
  {
    name: 'device_register',
    columns: [
      column('device_id', 'bigint', true),
      column('register_id', 'bigint', true),
      column('poll_interval_s', 'integer', true),
      column('enabled', 'boolean', true),
    ],
    key: ['device_id', 'register_id'],
    foreignKeys: [
      {
        name: 'device_register_device_id_fkey',
        columns: ['device_id'],
        parent: 'meter',
        parentColumns: ['id'],
      },
      {
        name: 'device_register_register_id_fkey',
        columns: ['register_id'],
        parent: 'register',
        parentColumns: ['id'],
      },
    ],
    indexes: [
      {
        name: 'device_register_register_id_idx',
        columns: ['register_id'],
        why: 'deleting a register checks device_register by register_id',
      },
    ],
  },
];
