/**
 * A session opened ahead (lib/db/connect.ts `connectAhead`) with its first statements: they run as
 * soon as it is logged in, before anyone takes it; their failure ends it and reaches whoever takes
 * it unchanged; a session released while they run is ended, and its backend goes.
 */
import { Client } from 'pg';
import { connectAhead } from '../../lib/db/connect';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

describe('connectAhead with prepare', () => {
  let db: TestDatabase;
  let observer: Client;

  beforeAll(async () => {
    db = await createTestDatabase('connect_ahead');
    observer = new Client({ connectionString: db.url });
    await observer.connect();
  });
  afterAll(async () => {
    await observer.end();
    await db.drop();
  });

  /** Waits until the backend `pid` has exited, or fails after 10 s. */
  async function backendGone(pid: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const { rows } = await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
      if (rows.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`backend ${pid} is still there`);
  }

  it('runs prepare before the session is taken, and take gives what it made', async () => {
    // Arrange
    let ran!: () => void;
    const prepared = new Promise<void>((resolve) => {
      ran = resolve;
    });
    const session = connectAhead(
      db.url,
      'remote',
      {},
      {
        prepare: async (client) => {
          const { rows } = await client.query<{ name: string; pid: number }>(
            'SELECT current_database() AS name, pg_backend_pid() AS pid',
          );
          ran();
          return { client, ...rows[0]! };
        },
      },
    );

    // Act: prepare finishes although nobody has taken the session yet.
    await prepared;
    const taken = await session.take();

    // Assert
    expect(taken.name).toBe(db.name);
    const { rows } = await taken.client.query<{ read_only: string }>(
      "SELECT current_setting('default_transaction_read_only') AS read_only",
    );
    expect(rows[0]?.read_only).toBe('on');
    await taken.client.end();
    await backendGone(taken.pid);
  });

  it('ends the session when prepare fails, and gives its error unchanged to whoever takes it', async () => {
    // Arrange
    let pid = 0;
    let seen: Client | undefined;
    const failure = new Error('prepare refused');
    const session = connectAhead(
      db.url,
      'site',
      {},
      {
        prepare: async (client): Promise<never> => {
          seen = client;
          pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          throw failure;
        },
      },
    );

    // Act
    const taken = session.take();

    // Assert
    await expect(taken).rejects.toBe(failure);
    await backendGone(pid);
    await expect(seen!.query('SELECT 1')).rejects.toThrow();
  });

  it('ends a session released while prepare still runs, and nothing reports its failure', async () => {
    // Arrange
    let pid = 0;
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const session = connectAhead(
      db.url,
      'remote',
      {},
      {
        prepare: async (client) => {
          pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          started();
          await client.query('SELECT pg_sleep(30)');
          return client;
        },
      },
    );
    await running;

    // Act
    session.release();

    // Assert: the backend goes (within backendGone's 10 s) long before its statement would have
    // ended: the server checks for its client every 2 s while it runs (connect.ts).
    await backendGone(pid);
  });
});
