/** A row a run skips, named by its key and the parent it lacks: the same words from the site and the remote. */
import type { EntityMetadata } from '../entities';
import { formatKey, type Row } from './rows';

/** A staged row a step skips, or a delete it skips, and why. */
export interface SkippedRow {
  key: string;
  /** The key's columns and their text, as `key` formats them. */
  keyValues: Record<string, string | null>;
  reason: string;
}

export function keyValuesOf(meta: EntityMetadata, row: Row): Record<string, string | null> {
  return Object.fromEntries(meta.keyColumns.map((k) => [k, row[k] ?? null]));
}

/**
 * A row skipped for want of a parent: `row` holds the key and reference columns as text, and
 * `m0`, `m1`, … (one per parent reference) `t` where that parent is missing.
 */
export function parentMissing(meta: EntityMetadata, row: Row): SkippedRow {
  const references = meta.parents ?? [];
  const reference = references.find((_, n) => row[`m${n}`] === 't');
  const key = formatKey(meta.keyColumns, row);
  const keyValues = keyValuesOf(meta, row);
  if (!reference) return { key, keyValues, reason: 'parent missing' };
  const parentKey = Object.fromEntries(
    Object.entries(reference.columns).map(([c, k]) => [k, row[c] ?? null]),
  );
  return {
    key,
    keyValues,
    reason: `parent missing: ${reference.entity} ${formatKey(Object.values(reference.columns), parentKey)}`,
  };
}
