/** The run deadline: a run that reaches it stops, cancels the statement in flight, rolls back and says DEADLINE_EXCEEDED. */
import type { SyncResult } from '../../lib/engine';
import { holdLock } from '../harness/hold-lock';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

function codes(result: SyncResult): [string, string, string | undefined][] {
  return result.entities.map((e) => [e.entity, e.status, e.error?.code]);
}

const ALL_DEADLINE: [string, string, string][] = [
  ['meter', 'failed', 'DEADLINE_EXCEEDED'],
  ['register', 'failed', 'DEADLINE_EXCEEDED'],
  ['device_register', 'failed', 'DEADLINE_EXCEEDED'],
];

describe('performSync: deadline', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 10, registersPerTenant: 12, registersPerMeter: 2 });
  });
  afterAll(() => fx.close());

  it('does nothing when the deadline has already passed', async () => {
    // Act
    const result = await fx.sync({ deadline: Date.now() - 1 });

    // Assert
    expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
    // Before any entity ran: the run's failure alone.
    expect(result.entities).toEqual([]);
    expect(await fx.rows('site', 'meter', 'id')).toEqual([]);
    expect(await fx.rows('site', 'sync_run', 'id')).toEqual([]);
  });

  it('rejects a deadline that is not a time', async () => {
    const result = await fx.sync({ deadline: Number.NaN }).catch((error: unknown) => error);
    expect(result).toMatchObject({ code: 'BAD_OPTIONS' });
  });

  it('cancels a remote read that is still waiting at the deadline, and writes nothing', async () => {
    // Arrange: the remote meter table is locked, so the run's first read waits for it.
    const lock = await holdLock(fx.remote.url, 'LOCK TABLE meter IN ACCESS EXCLUSIVE MODE');
    try {
      // Act
      const result = await fx.sync({ deadline: Date.now() + 1_000 });

      // Assert: cancelled (nobody still waits for the lock), reported, nothing written.
      expect(result.status).toBe('failed');
      expect(result.error?.code).toBe('DEADLINE_EXCEEDED');
      expect(codes(result)).toEqual(ALL_DEADLINE);
      expect(await lock.waiting()).toBe(0);
    } finally {
      await lock.release();
    }
    expect(await fx.rows('site', 'meter', 'id')).toEqual([]);
    expect(await fx.rows('site', 'sync_run', 'id')).toEqual([]);
  });

  it('cancels a site step at the deadline and rolls the whole run back; the next run works', async () => {
    // Arrange: a synced site; then the remote renames its meters and changes one association,
    // whose site row is locked, so the run waits in its last step, after the renames are applied.
    const first = await fx.sync();
    expect(first.status).toBe('ok');
    await fx.remoteClient.query(`UPDATE meter SET name = name || ' (renamed)' WHERE tenant_id = 1`);
    const [association] = await fx.rows('site', 'device_register', 'device_id, register_id LIMIT 1');
    await fx.remoteClient.query(
      'UPDATE device_register SET poll_interval_s = poll_interval_s + 1 WHERE device_id = $1 AND register_id = $2',
      [association!.device_id, association!.register_id],
    );
    const before = await fx.rows('site', 'meter', 'id');
    const lock = await holdLock(
      fx.site.url,
      `SELECT 1 FROM device_register WHERE device_id = ${association!.device_id} AND register_id = ${association!.register_id} FOR UPDATE`,
    );
    let result: SyncResult;
    try {
      // Act
      const phases: string[] = [];
      result = await fx.sync({
        deadline: Date.now() + 1_000,
        onProgress: ({ entity, phase }) => phases.push(`${phase} ${entity}`),
      });
      expect(phases.at(-1)).toBe('upsert device_register');
      expect(await lock.waiting()).toBe(0);
    } finally {
      await lock.release();
    }

    // Assert: the meter renames (applied before the blocked step) were rolled back with the rest.
    expect(result.status).toBe('failed');
    expect(codes(result)).toEqual(ALL_DEADLINE);
    expect(await fx.rows('site', 'meter', 'id')).toEqual(before);
    const runs = await fx.rows('site', 'sync_run', 'id');
    expect(runs).toHaveLength(1);

    // The run released the site: the next one takes the lock and applies the renames.
    const next = await fx.sync({ deadline: Date.now() + 60_000 });
    expect(next.status).toBe('ok');
    expect(next.entities.map((e) => [e.entity, e.updated])).toEqual([
      ['meter', 10],
      ['register', 0],
      ['device_register', 1],
    ]);
  });
});
