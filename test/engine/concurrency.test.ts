/** One run per site at a time (DESIGN §3.8): a second concurrent run returns `locked` and touches nothing. */
import { Client } from 'pg';
import { SITE_LOCK_KEY } from '../../lib/db/site-database';
import type { SyncResult } from '../../lib/engine';
import { meterId } from '../../lib/seed/seed-remote';
import { countRows, resetFixture, siteContents } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const SEED = { tenants: [1, 2], metersPerTenant: 10, registersPerTenant: 10, registersPerMeter: 2 };

describe('concurrent runs on one site', () => {
  let fx: SyncFixture;
  let holder: Client;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    holder = new Client({ connectionString: fx.site.url });
    await holder.connect();
  });
  afterAll(async () => {
    await holder.end();
    await fx.close();
  });

  beforeEach(async () => {
    await holder.query('ROLLBACK').catch(() => {});
    await resetFixture(fx);
    await fx.seed(SEED);
    expect((await fx.sync()).status).toBe('ok');
    await fx.remoteClient.query(`UPDATE meter SET name = 'changed' WHERE id = $1`, [meterId(1, 1)]);
  });

  function expectLocked(result: SyncResult): void {
    expect(result).toMatchObject({
      ok: false,
      status: 'locked',
      tenantId: 1,
      entities: [],
      error: { code: 'SITE_LOCKED' },
    });
  }

  it('returns locked and touches nothing while another session holds the run lock', async () => {
    // Arrange: the lock a run takes, held in an open transaction.
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [SITE_LOCK_KEY]);
    expect(SITE_LOCK_KEY).toBe('7305818813071261000');
    const before = await siteContents(fx.siteClient);

    // Act
    const real = await fx.sync();
    const dry = await fx.sync({ dryRun: true });

    // Assert
    expectLocked(real);
    expectLocked(dry);
    expect(await siteContents(fx.siteClient)).toEqual(before);

    // Released, the next run does the work.
    await holder.query('COMMIT');
    const next = await fx.sync();
    expect(next.status).toBe('ok');
    expect(countRows(next)[0]).toEqual(['meter', 0, 1, 0, 0, 9]);
  });

  it('of two runs started together, one does the work and the other returns locked', async () => {
    // Arrange: a table lock that lets readers through but not the run's update of a meter makes
    // whichever run wins the run lock wait inside its transaction, so the other one is certain to
    // find it taken, and the site is read while the winner has not committed.
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE meter IN EXCLUSIVE MODE');
    const before = await siteContents(fx.siteClient);

    // Act
    const runs = [fx.sync({ siteId: 'a' }), fx.sync({ siteId: 'b' })];
    const first = await Promise.race(runs);
    const locked = { ...first };
    const siteWhileLocked = await siteContents(fx.siteClient);
    await holder.query('COMMIT');
    const [a, b] = await Promise.all(runs);

    // Assert
    expectLocked(locked);
    expect(siteWhileLocked).toEqual(before);
    const winner = a!.status === 'locked' ? b! : a!;
    const loser = a!.status === 'locked' ? a! : b!;
    expect(loser.siteId).toBe(locked.siteId);
    expect(winner.status).toBe('ok');
    expect(countRows(winner)).toEqual([
      ['meter', 0, 1, 0, 0, 9],
      ['register', 0, 0, 0, 0, 10],
      ['device_register', 0, 0, 0, 0, 20],
    ]);
    const { rows } = await fx.siteClient.query('SELECT site_id FROM sync_run ORDER BY id');
    expect(rows.map((r) => r.site_id)).toEqual([null, winner.siteId]);
  });

  it('takes the lock only for its transaction: a run after a failed run is not locked out', async () => {
    // A run that fails as a whole (the remote is unreachable) must not leave the site locked.
    const failed = await fx.sync({ remote: 'postgres://nobody:secret@127.0.0.1:1/none' });
    expect(failed.status).toBe('failed');
    expect(JSON.stringify(failed)).not.toContain('secret');
    const next = await fx.sync();
    expect(next.status).toBe('ok');
  });
});
