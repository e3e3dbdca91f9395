/** The tables a migrated site holds, as the tests expect them: the entities' and meter-sync's own, in name order. */
export const ENTITY_TABLES = ['device_register', 'meter', 'register'] as const;
export const METER_SYNC_TABLES = [
  'meter_sync_fingerprint',
  'meter_sync_schema_migrations',
  'meter_sync_site',
  'meter_sync_skipped_row',
  'meter_sync_table_write',
  'sync_run',
] as const;
export const ALL_SITE_TABLES: readonly string[] = [...ENTITY_TABLES, ...METER_SYNC_TABLES].sort();
/** What a migration of an empty site reports in `added`. */
export const ADDED_TO_AN_EMPTY_SITE: readonly string[] = ALL_SITE_TABLES.map((table) => `table ${table}`);
