/** Holds a lock from another session (a locking statement in an open transaction), so statements that need it wait. */
import { Client } from 'pg';

export interface HeldLock {
  /** How many sessions of the lock's database are waiting for a lock now. */
  waiting(): Promise<number>;
  release(): Promise<void>;
}

export async function holdLock(url: string, lockingSql: string): Promise<HeldLock> {
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query(lockingSql);
  return {
    async waiting() {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE NOT l.granted AND a.datname = current_database()`,
      );
      return rows[0]!.n;
    },
    async release() {
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}
