/** Rows as the server writes them: every value is its PostgreSQL text form, or null. */
import type { CustomTypesConfig } from 'pg';

export type Row = Record<string, string | null>;

/** Keeps every value as server text: no Date, no JSON.parse, no float on the way through JavaScript. */
export const TEXT_TYPES: CustomTypesConfig = {
  getTypeParser: () => (value: string) => value,
} as CustomTypesConfig;

/** `id=5`, or `device_id=1, register_id=2` for a composite key. */
export function formatKey(keyColumns: readonly string[], row: Row): string {
  return keyColumns.map((c) => `${c}=${row[c] ?? 'NULL'}`).join(', ');
}
