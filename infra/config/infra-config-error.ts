/** A deployment configuration that cannot be deployed: every problem found, one per line, before any synthesis. */
import { MeterSyncError } from '../../lib/errors/meter-sync-error';

export class InfraConfigError extends MeterSyncError {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(
      'BAD_INFRA_CONFIG',
      `${source} is not a valid meter-sync configuration:\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'InfraConfigError';
  }
}
