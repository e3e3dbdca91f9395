/**
 * Fault 1: the remote session is killed (pg_terminate_backend) while the run reads each entity. The
 * read waits on a lock the test holds on that entity's remote table, so the kill lands exactly there.
 * The run fails as a whole, the site is exactly as before, and the next run converges.
 */
import type { SyncResult } from '../../lib/engine';
import {
  arrangeChangedRemote,
  createFaultFixture,
  expectNextRunConverges,
  expectSiteAfterFault,
  type FaultFixture,
} from '../harness/fault-scenario';
import { holdLock } from '../harness/hold-lock';
import { resetFixture, siteContents } from '../harness/site-contents';
import { startTcpProxy } from '../harness/tcp-proxy';

const ENTITIES = ['meter', 'register', 'device_register'];

describe('fault: the remote connection is killed during the read of an entity', () => {
  let f: FaultFixture;
  beforeAll(async () => {
    f = await createFaultFixture();
  });
  afterAll(() => f.close());

  /** Kills the engine's remote session once its read of `table` waits for the test's lock. */
  async function runKillingRemoteAt(table: string) {
    const lock = await holdLock(f.fx.remote.url, `LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const phases: string[] = [];
    try {
      const run = f.sync({ onProgress: ({ entity, phase }) => phases.push(`${phase} ${entity}`) });
      const waiting = await f.backends.waitingForLock(f.fx.remote.name);
      const phase = phases.at(-1);
      await f.backends.terminate(waiting.pid);
      return { result: await run, phase };
    } finally {
      await lock.release();
    }
  }

  it.each(ENTITIES)(
    'on a synced site with remote changes, killed while reading %s: nothing applied, then converges',
    async (table) => {
      // Arrange
      const before = await arrangeChangedRemote(f.fx);

      // Act
      const { result, phase } = await runKillingRemoteAt(table);

      // Assert: killed during that entity's read; the whole run failed and rolled back.
      expect(phase).toBe(`read ${table}`);
      expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'CONNECTION_LOST' } });
      expect(result.entities.find((e) => e.entity === table)!.error!.message).toContain(
        'terminating connection due to administrator command',
      );
      expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
      await f.backends.waitUntilGone(f.fx.site.name);
      await expectNextRunConverges(f.fx, () => f.sync());
    },
  );

  it.each(ENTITIES)(
    'on an empty site (first load), killed while reading %s: the site stays empty',
    async (table) => {
      // Arrange
      await resetFixture(f.fx);
      await f.fx.seed({ tenants: [1, 2], metersPerTenant: 10, registersPerTenant: 12, registersPerMeter: 2 });
      const before = await siteContents(f.fx.siteClient);

      // Act
      const { result, phase } = await runKillingRemoteAt(table);

      // Assert
      expect(phase).toBe(`read ${table}`);
      expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_LOST' } });
      expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
      await expectNextRunConverges(f.fx, () => f.sync());
    },
  );

  it('on an empty site, cut off in the middle of the COPY of a slice: the site stays empty, the next run loads it', async () => {
    // Arrange: the remote is reached through a proxy that lets 64 KiB of the meter slice through,
    // then holds the rest; the remote session is killed then, so the stream ends half way.
    await resetFixture(f.fx);
    await f.fx.seed({
      tenants: [1, 2],
      metersPerTenant: 2_000,
      registersPerTenant: 10,
      registersPerMeter: 1,
    });
    const before = await siteContents(f.fx.siteClient);
    const server = new URL(f.fx.remote.url);
    const proxy = await startTcpProxy(server.hostname, Number(server.port));
    proxy.stallWhen({ clientSends: 'COPY (SELECT "id"', hold: 'response', afterBytes: 64 * 1024 });
    let result: SyncResult;
    try {
      // Act
      const run = f.sync({ remote: proxy.via(f.remoteUrl) });
      await proxy.whenStalled();
      const remote = await f.backends.waitFor(f.fx.remote.name, (b) =>
        b.query.startsWith('COPY (SELECT "id"'),
      );
      await f.backends.terminate(remote.pid);
      result = await run;
    } finally {
      await proxy.close();
    }

    // Assert
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_LOST' } });
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('wrote no password in any result of this file', () => {
    expect(f.scan.counts.produced).toBeGreaterThanOrEqual(18);
    expect(f.scan.leaks()).toEqual([]);
  });
});
