/** Renders a plan as a diff, one line a change, then the counts table (format-result.ts). */
import type { RowChange, SyncResult } from '../engine';
import { formatResult } from './format-result';

const SIGNS: Readonly<Record<RowChange['op'], string>> = { insert: '+', update: '~', delete: '-', skip: '!' };

/** Numbers and booleans as they are, text as an SQL literal, NULL as NULL: a value reads unambiguously. */
export function formatValue(value: string | null): string {
  if (value === null) return 'NULL';
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(value) || value === 't' || value === 'f') return value;
  const text = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  return `'${text.replace(/'/g, "''").replace(/\n/g, '\\n')}'`;
}

function formatKey(key: RowChange['key']): string {
  return Object.entries(key)
    .map(([column, value]) => `${column}=${value ?? 'NULL'}`)
    .join(', ');
}

export function formatChange(entity: string, change: RowChange): string {
  const head = `${SIGNS[change.op]} ${entity} ${formatKey(change.key)}`;
  if (change.op === 'update') {
    const columns = Object.entries(change.columns ?? {})
      .map(([column, { site, remote }]) => `${column}: ${formatValue(site)} -> ${formatValue(remote)}`)
      .join(', ');
    return `${head}  ${columns}`;
  }
  if (change.op === 'skip') return `${head}  skipped: ${change.reason ?? 'parent missing'}`;
  return head;
}

export function formatPlan(result: SyncResult): string {
  const lines: string[] = [];
  for (const e of result.entities) {
    for (const change of e.changes ?? []) lines.push(formatChange(e.entity, change));
    const listed = e.changes?.length ?? 0;
    if (e.changesTruncated) {
      const total = e.inserted + e.updated + e.deleted + e.skipped;
      lines.push(`… and ${total - listed} more ${e.entity} changes (--max-changes to list more)`);
    }
  }
  if (lines.length === 0 && result.ok) lines.push('no changes: the site equals its slice');
  const guard = result.entities.some((e) => e.error?.code === 'MASS_DELETE_GUARD');
  return [
    ...lines,
    '',
    formatResult(result),
    ...(guard ? ['to list the deletes the guard stops: plan again with --allow-mass-delete'] : []),
  ].join('\n');
}
