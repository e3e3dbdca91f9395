/** Runs one step of a check under a savepoint: a statement the server refuses leaves the check's transaction usable for the next. */
import type { Client } from 'pg';

export async function underSavepoint<T>(client: Client, step: () => Promise<T>): Promise<T> {
  await client.query('SAVEPOINT meter_sync_check');
  try {
    const result = await step();
    await client.query('RELEASE SAVEPOINT meter_sync_check');
    return result;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT meter_sync_check').catch(() => {});
    throw error;
  }
}
