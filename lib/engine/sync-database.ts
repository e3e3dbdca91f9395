/**
 * The site database as named per-entity operations (seed task 11): get, upsert and delete for
 * meters, registers and device registers. Every method is the same generic function bound to
 * an entity's metadata, so a new entity needs no new code here (use `entity(name)`).
 */
import type { Client } from 'pg';
import type { Row } from '../db/rows';
import { SiteDatabase, type WriteCounts } from '../db/site-database';
import { defaultRegistry, type EntityRegistry } from '../entities';

export interface EntityOperations {
  get(): Promise<Row[]>;
  upsert(rows: readonly Row[]): Promise<WriteCounts>;
  delete(keys: readonly Row[]): Promise<number>;
}

export interface SyncDatabase {
  getMeters(): Promise<Row[]>;
  upsertMeters(rows: readonly Row[]): Promise<WriteCounts>;
  deleteMeters(keys: readonly Row[]): Promise<number>;
  getRegisters(): Promise<Row[]>;
  upsertRegisters(rows: readonly Row[]): Promise<WriteCounts>;
  deleteRegisters(keys: readonly Row[]): Promise<number>;
  getDeviceRegisters(): Promise<Row[]>;
  upsertDeviceRegisters(rows: readonly Row[]): Promise<WriteCounts>;
  deleteDeviceRegisters(keys: readonly Row[]): Promise<number>;
  /** The same operations for any registered entity. */
  entity(name: string): Promise<EntityOperations>;
}

export function createSyncDatabase(client: Client, registry: EntityRegistry = defaultRegistry): SyncDatabase {
  const site = new SiteDatabase(client);
  const entity = async (name: string): Promise<EntityOperations> => {
    const resolved = await site.resolve(registry.get(name));
    return {
      get: () => site.getRows(resolved),
      upsert: (rows) => site.upsertRows(resolved, rows),
      delete: (keys) => site.deleteRows(resolved, keys),
    };
  };
  return {
    getMeters: async () => (await entity('meter')).get(),
    upsertMeters: async (rows) => (await entity('meter')).upsert(rows),
    deleteMeters: async (keys) => (await entity('meter')).delete(keys),
    getRegisters: async () => (await entity('register')).get(),
    upsertRegisters: async (rows) => (await entity('register')).upsert(rows),
    deleteRegisters: async (keys) => (await entity('register')).delete(keys),
    getDeviceRegisters: async () => (await entity('device_register')).get(),
    upsertDeviceRegisters: async (rows) => (await entity('device_register')).upsert(rows),
    deleteDeviceRegisters: async (keys) => (await entity('device_register')).delete(keys),
    entity,
  };
}
