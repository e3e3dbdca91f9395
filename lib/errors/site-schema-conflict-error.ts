/**
 * A site table the site schema would adopt does not fit it (DESIGN §2): the migration lists every
 * difference and changes nothing.
 */
import { MeterSyncError } from './meter-sync-error';

/** One way a site table differs from the site schema, beyond what adoption keeps. */
export interface SchemaDifference {
  readonly table: string;
  readonly column?: string;
  /** What the site has (a type, `NOT NULL`, a key), or null when it lacks it. */
  readonly site: string | null;
  /** What the site schema needs, or null when it needs nothing there (a column of the site's own). */
  readonly expected: string | null;
  /** The difference in words, with the types: `the site has integer, meter-sync needs text`. */
  readonly problem: string;
}

/** `table.column: problem`, or `table: problem`. */
export function describeDifference(difference: SchemaDifference): string {
  const where =
    difference.column === undefined ? difference.table : `${difference.table}.${difference.column}`;
  return `${where}: ${difference.problem}`;
}

export class SiteSchemaConflictError extends MeterSyncError {
  constructor(readonly differences: readonly SchemaDifference[]) {
    super(
      'SITE_SCHEMA_CONFLICT',
      `the site's tables do not fit the site schema, so nothing was changed: ${differences.map(describeDifference).join('; ')}; ` +
        'change them on the site (or move them out of the way) and migrate again',
    );
    this.name = 'SiteSchemaConflictError';
  }
}
