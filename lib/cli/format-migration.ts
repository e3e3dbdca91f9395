/** Renders what a site schema migration did, for the migrate command and for a sync that migrated first. */
import type { MigrateResult } from '../operations';

type Adoption = Pick<MigrateResult, 'adopted' | 'added' | 'kept'>;

/** A line for the tables adopted, one for each thing kept as the site had it, one for what was added. */
export function adoptionLines({ adopted, added, kept }: Adoption): string[] {
  return [
    ...(adopted.length > 0 ? [`adopted: ${adopted.join(', ')}`] : []),
    ...kept.map((thing) => `kept: ${thing}`),
    ...(added.length > 0 ? [`added: ${added.join(', ')}`] : []),
  ];
}

export function formatMigration(result: MigrateResult): string {
  if (result.applied.length === 0) return `site schema already at version ${result.toVersion}`;
  return [
    `site schema migrated from version ${result.fromVersion} to ${result.toVersion}: ${result.applied.join('; ')}`,
    ...adoptionLines(result),
  ].join('\n');
}
