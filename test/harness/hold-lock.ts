/** Holds a lock from another session (a locking statement in an open transaction), so statements that need it wait. */
import { Client } from 'pg';

export interface HeldLock {
  /** How many sessions are waiting for this session's lock now. */
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
      // Not pg_stat_activity: inside this open transaction it is read once and kept, so a session
      // that connected after the first call would never be seen waiting.
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(DISTINCT pid)::int AS n FROM pg_locks
          WHERE NOT granted AND pg_backend_pid() = ANY (pg_blocking_pids(pid))`,
      );
      return rows[0]!.n;
    },
    async release() {
      await client.query('ROLLBACK');
      await client.end();
    },
  };
}
