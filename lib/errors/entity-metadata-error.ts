/** Entity metadata that cannot be synced (bad identifier, unknown key column, parent cycle): raised at registration. */
import { MeterSyncError } from './meter-sync-error';

export class EntityMetadataError extends MeterSyncError {
  constructor(entity: string, problem: string) {
    super('BAD_ENTITY_METADATA', `entity ${JSON.stringify(entity)}: ${problem}`);
    this.name = 'EntityMetadataError';
  }
}
