/** Property 7: no sync or dry run modifies the remote, and the engine's remote session cannot write. */
import fc from 'fast-check';
import type { Client } from 'pg';
import { connect } from '../../lib/db/connect';
import { RemoteSnapshot } from '../../lib/db/remote-database';
import { meterRow, runEntities, syncCase } from './arbitraries';
import {
  createPropertyDatabases,
  insertRows,
  type PropertyDatabases,
  propertyParameters,
  propertyTimeout,
  snapshot,
} from './property-databases';

/** SQLSTATE read_only_sql_transaction. */
const READ_ONLY = '25006';

/** Tuples written to the remote tables since the server started, committed or not. */
async function writeCounters(client: Client): Promise<unknown[]> {
  // This session's own pending counts are flushed when it goes idle after this statement.
  await client.query('SELECT pg_stat_force_next_flush()');
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query(
    `SELECT relname, n_tup_ins::text, n_tup_upd::text, n_tup_del::text, n_tup_hot_upd::text
     FROM pg_stat_user_tables WHERE relname IN ('meter', 'register', 'device_register') ORDER BY relname`,
  );
  return rows;
}

/** Waits for the engine's remote sessions to end: a backend flushes its statistics before it leaves pg_stat_activity. */
async function remoteSessionsGone(client: Client, database: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'meter-sync'`,
      [database],
    );
    if (rows[0]!.n === '0') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the engine left a session open on the remote');
}

async function expectReadOnly(write: Promise<unknown>): Promise<void> {
  await expect(write).rejects.toMatchObject({ code: READ_ONLY });
}

describe('remote protection property', () => {
  let dbs: PropertyDatabases;
  beforeAll(async () => {
    dbs = await createPropertyDatabases();
    // Autovacuum and autoanalyze must not move the counters this property watches.
    for (const table of ['meter', 'register', 'device_register']) {
      await dbs.remote.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    }
  });
  afterAll(() => dbs.close());

  it(
    "property 7: no remote modification — the remote's contents and write counters are unchanged by any sync or dry run, and a write on the engine's remote session fails",
    async () => {
      await fc.assert(
        fc.asyncProperty(syncCase, runEntities, meterRow, async (c, entities, row) => {
          await dbs.load(c);
          const contents = await snapshot(dbs.remote);
          const counters = await writeCounters(dbs.remote);

          const dry = await dbs.sync(c.tenantId, { entities, dryRun: true });
          const real = await dbs.sync(c.tenantId, { entities });

          expect([dry.status, real.status]).toEqual(['ok', 'ok']);
          await remoteSessionsGone(dbs.remote, dbs.fx.remote.name);
          expect(await snapshot(dbs.remote)).toEqual(contents);
          expect(await writeCounters(dbs.remote)).toEqual(counters);

          // A session opened as the engine opens its remote one refuses writes, and so does its snapshot.
          const session = await connect(dbs.fx.remote.url, 'remote');
          try {
            await expectReadOnly(insertRows(session, 'meter', [row]));
            const remoteSnapshot = await RemoteSnapshot.open(session, c.tenantId);
            await expectReadOnly(insertRows(session, 'meter', [row]));
            await remoteSnapshot.close();
          } finally {
            await session.end();
          }
          expect(await snapshot(dbs.remote)).toEqual(contents);
        }),
        propertyParameters(),
      );
    },
    propertyTimeout(1_500),
  );
});
