/** Entity metadata and the registry of the entities meter-sync ships. */
export { deviceRegister } from './device-register';
export type { EntityMetadata, ParentReference } from './entity-metadata';
export { meter } from './meter';
export { register } from './register';
export { defaultRegistry, EntityRegistry } from './registry';
