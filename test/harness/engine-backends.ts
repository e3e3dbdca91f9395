/**
 * Finds the engine's sessions on the test server (every one is `application_name = meter-sync`) and
 * ends them, as an operator or a failing network would: fault tests kill the remote or the site
 * session at a chosen moment, told apart by the database they are connected to.
 */
import { Client } from 'pg';
import { serverUrl } from './test-database';

export interface EngineBackend {
  pid: number;
  datname: string;
  state: string | null;
  /** e.g. `Lock` while the session waits for a lock another session holds. */
  wait_event_type: string | null;
  /** e.g. `ClientWrite` while the session waits for the engine to read what it sent. */
  wait_event: string | null;
  query: string;
}

/** How long a fault test waits for the engine to reach the state it needs, before failing loudly. */
const REACH_TIMEOUT_MS = 15_000;
const POLL_MS = 10;

export class EngineBackends {
  private constructor(private readonly admin: Client) {}

  static async open(): Promise<EngineBackends> {
    const admin = new Client({ connectionString: serverUrl() });
    await admin.connect();
    return new EngineBackends(admin);
  }

  /** The engine's sessions connected to `database`. */
  async list(database: string): Promise<EngineBackend[]> {
    const { rows } = await this.admin.query<EngineBackend>(
      `SELECT pid, datname, state, wait_event_type, wait_event, query FROM pg_stat_activity
        WHERE application_name = 'meter-sync' AND datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
    return rows;
  }

  /** Polls until an engine session of `database` matches; fails the test if none does in time. */
  async waitFor(database: string, matches: (backend: EngineBackend) => boolean): Promise<EngineBackend> {
    const until = Date.now() + REACH_TIMEOUT_MS;
    for (;;) {
      const found = (await this.list(database)).find(matches);
      if (found) return found;
      if (Date.now() > until) {
        throw new Error(
          `no meter-sync session of ${database} reached the awaited state: ${JSON.stringify(await this.list(database))}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The engine session of `database` once it waits for a lock (held by the test). */
  waitingForLock(database: string): Promise<EngineBackend> {
    return this.waitFor(database, (b) => b.wait_event_type === 'Lock');
  }

  /** pg_terminate_backend: the session ends at once, its open transaction rolled back by the server. */
  async terminate(pid: number): Promise<void> {
    const { rows } = await this.admin.query<{ done: boolean }>('SELECT pg_terminate_backend($1) AS done', [
      pid,
    ]);
    if (!rows[0]?.done) throw new Error(`could not terminate backend ${pid}`);
  }

  /** Waits until no engine session of `database` is left (the run let go of everything). */
  async waitUntilGone(database: string): Promise<void> {
    const until = Date.now() + REACH_TIMEOUT_MS;
    while ((await this.list(database)).length > 0) {
      if (Date.now() > until) throw new Error(`meter-sync sessions of ${database} are still open`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  close(): Promise<void> {
    return this.admin.end();
  }
}
