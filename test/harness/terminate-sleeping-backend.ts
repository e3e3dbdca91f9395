/**
 * Ends, from a session of its own, the backend of `url`'s database that runs `pg_sleep` once it
 * does, as a crash or an operator would: how tests cut a migration off mid-statement.
 */
import { Client } from 'pg';

export interface SleepingBackendKiller {
  /** True once a backend was terminated, false if none slept within 10 s. */
  readonly killed: Promise<boolean>;
  close(): Promise<void>;
}

export async function terminateSleepingBackend(url: string): Promise<SleepingBackendKiller> {
  const admin = new Client({ connectionString: url });
  admin.on('error', () => {});
  await admin.connect();
  const killed = (async () => {
    for (let i = 0; i < 400; i++) {
      const { rows } = await admin.query(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           -- By its wait too: the text of a long statement is cut at track_activity_query_size.
           AND (query LIKE '%pg_sleep%' OR wait_event = 'PgSleep')`,
      );
      if (rows.length > 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return false;
  })();
  return { killed, close: () => admin.end() };
}
