/**
 * Renders a SyncResult as the readable per-entity table the CLI and the demo print, and its errors
 * as the lines the CLI writes to stderr apart from it.
 */
import type { SyncResult } from '../engine';
import { adoptionLines } from './format-migration';

const COLUMNS = [
  'entity',
  'status',
  'remote',
  'inserted',
  'updated',
  'deleted',
  'skipped',
  'unchanged',
  'ms',
] as const;

export function formatResult(result: SyncResult): string {
  const title = [
    'meter-sync',
    result.siteId !== undefined ? `site ${result.siteId}` : undefined,
    `tenant ${result.tenantId}`,
    result.dryRun ? 'DRY RUN (nothing written)' : undefined,
    result.status,
    `${(result.durationMs / 1000).toFixed(2)} s`,
  ]
    .filter((part) => part !== undefined)
    .join(' · ');
  const rows = result.entities.map((e) => [
    e.entity,
    e.status,
    String(e.remoteRows),
    String(e.inserted),
    String(e.updated),
    String(e.deleted),
    String(e.skipped),
    String(e.unchanged),
    String(e.durationMs),
  ]);
  const table = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) =>
    row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
  );
  const notes: string[] = [];
  if (result.migration) {
    notes.push(
      `site schema migrated from version ${result.migration.fromVersion} to ${result.migration.toVersion} before the sync`,
    );
    // What it found on the site is news; what it created on an empty one is not.
    if (result.migration.adopted.length > 0) notes.push(...adoptionLines(result.migration));
  }
  if (result.tenantChange)
    notes.push(
      `site re-bound from tenant ${result.tenantChange.fromTenantId} to tenant ${result.tenantChange.toTenantId}${result.dryRun ? ' (not made: dry run)' : ''}`,
    );
  for (const e of result.entities) {
    if (e.skippedKeys?.length) {
      const samples = e.skippedKeys.map((key, i) =>
        e.skippedReasons?.[i] ? `${key} (${e.skippedReasons[i]})` : key,
      );
      notes.push(`${e.entity} skipped ${e.skipped}, e.g. ${samples.join('; ')}`);
    }
  }
  return [title, ...(result.entities.length > 0 ? lines : []), ...notes].join('\n');
}

/** What went wrong, a line each: the run's error, then each entity's own (with the row's key). */
export function resultErrors(result: SyncResult): string[] {
  const errors: string[] = [];
  if (result.error) errors.push(`run ${result.status}: [${result.error.code}] ${result.error.message}`);
  for (const e of result.entities) {
    if (e.error && e.error.message !== result.error?.message)
      errors.push(
        `${e.entity} failed: [${e.error.code}] ${e.error.message}${e.error.key ? ` (key ${e.error.key})` : ''}`,
      );
  }
  return errors;
}

/** True when the run failed before any entity ran: its error is all there is to say. */
export function ranNothing(result: SyncResult): boolean {
  return result.entities.length === 0 && result.error !== undefined;
}
