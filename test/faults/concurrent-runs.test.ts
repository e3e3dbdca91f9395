/**
 * Fault 6: eight runs started at once against one site. One takes the run lock and applies; the
 * others return `locked` without touching anything; nothing is applied twice.
 */
import type { SyncResult } from '../../lib/engine';
import {
  arrangeChangedRemote,
  createFaultFixture,
  expectSiteAfterFault,
  type FaultFixture,
} from '../harness/fault-scenario';
import { holdLock } from '../harness/hold-lock';
import { contentsDiff, expectedSlice, siteContents } from '../harness/site-contents';

const RUNS = 8;

function changes(result: SyncResult): number {
  return result.entities.reduce((sum, e) => sum + e.inserted + e.updated + e.deleted, 0);
}

describe('fault: eight runs at once against one site', () => {
  let f: FaultFixture;
  beforeAll(async () => {
    f = await createFaultFixture();
  });
  afterAll(() => f.close());

  it('while the first holds the site, the seven others return locked; then it alone applies', async () => {
    // Arrange: a table lock that lets the runs read but not delete associations, so whichever run
    // takes the run lock waits inside its transaction until the seven others have answered.
    const before = await arrangeChangedRemote(f.fx);
    const expected = contentsDiff(before, await expectedSlice(f.fx.remoteClient, 1));
    const lock = await holdLock(f.fx.site.url, 'LOCK TABLE device_register IN EXCLUSIVE MODE');
    const settled: SyncResult[] = [];
    let results: SyncResult[];
    try {
      // Act
      const runs = Array.from({ length: RUNS }, (_, i) =>
        f.sync({ siteId: `run-${i}` }).then((result) => {
          settled.push(result);
          return result;
        }),
      );
      await f.backends.waitingForLock(f.fx.site.name);
      while (settled.length < RUNS - 1) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await siteContents(f.fx.siteClient)).toEqual(before);
      await lock.release();
      results = await Promise.all(runs);
    } finally {
      await lock.release().catch(() => {});
    }

    // Assert
    const locked = results.filter((r) => r.status === 'locked');
    const applied = results.filter((r) => r.status !== 'locked');
    expect(locked).toHaveLength(RUNS - 1);
    for (const r of locked) {
      expect(r).toMatchObject({ ok: false, entities: [], error: { code: 'SITE_LOCKED' } });
    }
    expect(applied).toHaveLength(1);
    expect(applied[0]!.status).toBe('ok');
    expect(Object.fromEntries(applied[0]!.entities.map((e) => [e.entity, e.deleted]))).toEqual({
      meter: expected.meter!.deleted,
      register: expected.register!.deleted,
      device_register: expected.device_register!.deleted,
    });
    expect(await expectSiteAfterFault(f.fx, before, applied[0]!)).toBe('after');
    const { rows } = await f.fx.siteClient.query('SELECT site_id FROM sync_run ORDER BY id');
    expect(rows.map((r) => r.site_id)).toEqual([null, applied[0]!.siteId]);
  });

  it('racing freely, every change is applied exactly once and each run that applied is recorded once', async () => {
    // Arrange
    const before = await arrangeChangedRemote(f.fx);
    const diff = contentsDiff(before, await expectedSlice(f.fx.remoteClient, 1));
    const expectedChanges = Object.values(diff).reduce(
      (sum, d) => sum + d.inserted + d.updated + d.deleted,
      0,
    );

    // Act
    const results = await Promise.all(
      Array.from({ length: RUNS }, (_, i) => f.sync({ siteId: `free-${i}` })),
    );

    // Assert: a run either applied or was locked out; the changes add up to the diff exactly once.
    expect(results.every((r) => r.status === 'ok' || r.status === 'locked')).toBe(true);
    const applied = results.filter((r) => r.status === 'ok');
    expect(applied.length).toBeGreaterThanOrEqual(1);
    expect(applied.reduce((sum, r) => sum + changes(r), 0)).toBe(expectedChanges);
    expect(applied.filter((r) => changes(r) > 0)).toHaveLength(1);
    const { rows } = await f.fx.siteClient.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sync_run WHERE site_id LIKE 'free-%'`,
    );
    expect(rows[0]!.n).toBe(applied.length);
    expect(await siteContents(f.fx.siteClient)).toMatchObject(await expectedSlice(f.fx.remoteClient, 1));
  });

  it('wrote no password in any result of this file', () => {
    expect(f.scan.counts.produced).toBe(2 * RUNS);
    expect(f.scan.leaks()).toEqual([]);
  });
});
