/**
 * Ctrl-C lets go of the site (DESIGN §3.14): the real command in a child process, its statement
 * held up by a lock the test holds or by a stalled network, is sent SIGINT or SIGTERM. It cancels
 * what is in flight on both connections, rolls back, says `cancelled` and exits 130 or 143 within
 * 5 s; half a second later no session of it and no lock of it is left on the site. A client that
 * vanishes without a word (kill -9) frees the site within seconds too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { holdLock } from '../harness/hold-lock';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy';

const BIN = join(__dirname, '..', '..', 'bin', 'meter-sync.js');
const SEED = { tenants: [1], metersPerTenant: 5, registersPerTenant: 8, registersPerMeter: 2 };

interface Running {
  child: ChildProcess;
  /** What it has written so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves when the process has exited, with what it wrote. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function startCli(args: readonly string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<Awaited<Running['done']>>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, output: () => ({ stdout, stderr }) };
}

/**
 * Polls until `condition` holds, for at most 15 s. With the command's `run`, it fails at once if the
 * command ends first, and says what the command wrote either way.
 */
async function until(
  condition: () => Promise<boolean>,
  what: string,
  run?: Running,
  explain?: () => Promise<unknown>,
): Promise<void> {
  let ended: Awaited<Running['done']> | undefined;
  void run?.done.then((out) => {
    ended = out;
  });
  for (const started = Date.now(); Date.now() - started < 15_000; await sleep(50)) {
    if (await condition()) return;
    if (ended) throw new Error(`the command ended before ${what}: ${JSON.stringify(ended)}`);
  }
  const wrote = run ? `; it wrote ${JSON.stringify(run.output())}` : '';
  const seen = explain ? `; ${JSON.stringify(await explain())}` : '';
  throw new Error(`timed out waiting for ${what}${wrote}${seen}`);
}

describe('the command lets go of the site when it is stopped', () => {
  let fx: SyncFixture;
  let admin: Client;

  /** The command's sessions on a database, and the advisory locks held there (the run lock). */
  const leftOn = async (database: string) => {
    const { rows } = await admin.query<{ sessions: number; locks: number }>(
      `SELECT (SELECT count(*)::int FROM pg_stat_activity WHERE datname = $1 AND application_name = 'meter-sync') AS sessions,
              (SELECT count(*)::int FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                WHERE l.locktype = 'advisory' AND d.datname = $1) AS locks`,
      [database],
    );
    return rows[0]!;
  };
  /** What the command's sessions are doing on the site, for a failure's message. */
  const activity = async () =>
    (
      await admin.query(
        `SELECT state, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity
          WHERE datname = $1 AND application_name = 'meter-sync'`,
        [fx.site.name],
      )
    ).rows;
  const sync = (remote: string, ...more: string[]) =>
    startCli(['sync', '--remote', remote, '--site', fx.site.url, '--tenant', '1', ...more]);

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed(SEED);
    expect((await fx.sync()).status).toBe('ok');
    await fx.remoteClient.query(`UPDATE register SET unit = 'MWh'`);
    admin = new Client({ connectionString: fx.site.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
    await fx.close();
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s while its site statement waits on a lock: cancelled, exit %i, nothing of it left',
    async (signal, exitCode) => {
      // Arrange: the run takes its lock, then waits for the register table the test holds.
      const held = await holdLock(fx.site.url, 'LOCK TABLE register IN ACCESS EXCLUSIVE MODE');
      try {
        const run = sync(fx.remote.url);
        await until(async () => (await held.waiting()) > 0, 'the run to wait on the lock', run, activity);

        // Act
        const sent = Date.now();
        run.child.kill(signal);
        const out = await run.done;

        // Assert
        expect(Date.now() - sent).toBeLessThan(5_000);
        expect(out).toMatchObject({ code: exitCode, stdout: '', stderr: 'meter-sync: cancelled\n' });
        await sleep(500);
        expect(await leftOn(fx.site.name)).toEqual({ sessions: 0, locks: 0 });
        expect(await leftOn(fx.remote.name)).toMatchObject({ sessions: 0 });
      } finally {
        await held.release();
      }
      // Nothing was written: the next run does the whole change.
      const next = await fx.sync({ entities: ['register'] });
      expect(next.entities[0]).toMatchObject({ status: 'ok', updated: SEED.registersPerTenant });
      await fx.remoteClient.query(`UPDATE register SET unit = 'MWh' || id`);
    },
  );

  describe('behind a remote that stops answering', () => {
    let proxy: TcpProxy;
    beforeEach(async () => {
      const { hostname, port } = new URL(fx.remote.url);
      proxy = await startTcpProxy(hostname, Number(port));
      // The remote's answers stop once the run has opened its snapshot.
      proxy.stallWhen({ clientSends: 'REPEATABLE READ', hold: 'response' });
    });
    afterEach(() => proxy.close());

    it('Ctrl-C ends the run within 5 s though no cancel reaches the remote, and lets go of the site', async () => {
      // Arrange
      const run = sync(proxy.via(fx.remote.url));
      await proxy.whenStalled();
      await until(async () => (await leftOn(fx.site.name)).locks > 0, 'the run to hold the site', run);

      // Act
      const sent = Date.now();
      run.child.kill('SIGINT');
      const out = await run.done;

      // Assert
      expect(Date.now() - sent).toBeLessThan(5_000);
      expect(out).toMatchObject({ code: 130, stderr: 'meter-sync: cancelled\n' });
      await sleep(500);
      expect(await leftOn(fx.site.name)).toEqual({ sessions: 0, locks: 0 });
    });

    it('a second Ctrl-C ends the process at once', async () => {
      // Arrange
      const run = sync(proxy.via(fx.remote.url));
      await proxy.whenStalled();

      // Act: the first cannot reach the stalled remote; the second does not wait for it.
      run.child.kill('SIGINT');
      await sleep(100);
      const second = Date.now();
      run.child.kill('SIGINT');
      const out = await run.done;

      // Assert
      expect(Date.now() - second).toBeLessThan(1_000);
      expect(out.code).toBe(130);
    });

    it('a stalled network ends the run at its deadline, naming the side that stalled', async () => {
      // Act
      const started = Date.now();
      const out = await sync(proxy.via(fx.remote.url), '--timeout', '1').done;

      // Assert: the deadline, the cancel that cannot arrive, the socket closed after its grace (and
      // the process's own start, on a busy machine).
      expect(Date.now() - started).toBeLessThan(1_000 + 2_000 + 4_000);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(
        /^meter-sync: run failed: \[DEADLINE_EXCEEDED\] the run reached its deadline before it finished, waiting on the remote database;/,
      );
      expect(await leftOn(fx.site.name)).toEqual({ sessions: 0, locks: 0 });
    });
  });

  it('a client killed without a word (kill -9) frees the site within seconds', async () => {
    // Arrange: the run waits on the test's lock, holding its own run lock.
    const held = await holdLock(fx.site.url, 'LOCK TABLE register IN ACCESS EXCLUSIVE MODE');
    try {
      const run = sync(fx.remote.url);
      await until(async () => (await held.waiting()) > 0, 'the run to wait on the lock', run, activity);

      // Act: nothing of the command runs to cancel anything.
      run.child.kill('SIGKILL');
      await run.done;

      // Assert: the server notices the lost client (client_connection_check_interval, 2 s).
      await until(async () => (await leftOn(fx.site.name)).sessions === 0, 'the site session to go');
      expect(await leftOn(fx.site.name)).toEqual({ sessions: 0, locks: 0 });
    } finally {
      await held.release();
    }
  });
});
