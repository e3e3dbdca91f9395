/**
 * Fault 5: a network stall. The engine reaches each database through a TCP proxy on loopback that
 * stops forwarding mid-run (test/harness/tcp-proxy.ts): nothing is refused or closed, so only the
 * configured limits can end the run. Each case configures one limit, and the run must end within
 * it (plus the engine's fixed cancel grace and a slack for a slow machine), rolled back.
 */
import { COMMIT_CHECK_MS } from '../../lib/db/commit-outcome';
import { CANCEL_GRACE_MS } from '../../lib/engine/run-deadline';
import {
  arrangeChangedRemote,
  createFaultFixture,
  expectNextRunConverges,
  expectSiteAfterFault,
  type FaultFixture,
} from '../harness/fault-scenario';
import { simpleQuery, startTcpProxy, type TcpProxy } from '../harness/tcp-proxy';

/** What a slow machine may add to a limit: the run must not hang, not be punctual to the millisecond. */
const SLACK_MS = 3_000;

describe('fault: the network stalls mid-run', () => {
  let f: FaultFixture;
  let remoteProxy: TcpProxy;
  let siteProxy: TcpProxy;

  beforeAll(async () => {
    f = await createFaultFixture();
  });
  afterAll(() => f.close());

  beforeEach(async () => {
    const server = new URL(f.fx.remote.url);
    [remoteProxy, siteProxy] = await Promise.all([
      startTcpProxy(server.hostname, Number(server.port)),
      startTcpProxy(server.hostname, Number(server.port)),
    ]);
  });
  afterEach(async () => {
    await Promise.all([remoteProxy.close(), siteProxy.close()]);
    // The server learns of the closed connections; nothing of the run may linger holding the site.
    await f.backends.waitUntilGone(f.fx.site.name);
    await f.backends.waitUntilGone(f.fx.remote.name);
  });

  /** A run through both proxies; how long it took. */
  async function stalledRun(options: Parameters<FaultFixture['sync']>[0]) {
    const started = Date.now();
    const result = await f.sync({
      remote: remoteProxy.via(f.remoteUrl),
      site: siteProxy.via(f.siteUrl),
      ...options,
    });
    return { result, elapsed: Date.now() - started };
  }

  it('the remote stalls before answering a read: the idle-in-transaction timeout ends it', async () => {
    // Arrange: the remote never receives the register read; it sits idle in its transaction.
    const before = await arrangeChangedRemote(f.fx);
    remoteProxy.stallWhen({ clientSends: 'FROM "register"', hold: 'request' });
    const idleInTransactionTimeoutMs = 1_000;

    // Act
    const { result, elapsed } = await stalledRun({ connectOptions: { idleInTransactionTimeoutMs } });

    // Assert
    expect(remoteProxy.stalled).toBe(true);
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_LOST' } });
    expect(elapsed).toBeLessThan(idleInTransactionTimeoutMs + SLACK_MS);
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('the site stalls in an apply step, no server timeout set: the run deadline ends it', async () => {
    // Arrange: the site never receives the meter upsert, and has no timeout of its own.
    const before = await arrangeChangedRemote(f.fx);
    siteProxy.stallWhen({ clientSends: 'INSERT INTO "meter"', hold: 'request' });
    const deadlineInMs = 1_000;

    // Act
    const { result, elapsed } = await stalledRun({
      deadline: Date.now() + deadlineInMs,
      connectOptions: { statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0 },
    });

    // Assert: the cancel cannot get through the stalled proxy either; the grace closes the socket.
    expect(siteProxy.stalled).toBe(true);
    expect(result).toMatchObject({ status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
    expect(elapsed).toBeLessThan(deadlineInMs + CANCEL_GRACE_MS + SLACK_MS);
    await f.backends.waitUntilGone(f.fx.site.name);
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('the remote stalls while sending a slice: the statement timeout cannot help, the deadline does', async () => {
    // Arrange: the remote sent its answer to the register read, but it is held on the way.
    const before = await arrangeChangedRemote(f.fx);
    remoteProxy.stallWhen({ clientSends: 'FROM "register"', hold: 'response' });
    const deadlineInMs = 1_000;

    // Act
    const { result, elapsed } = await stalledRun({
      deadline: Date.now() + deadlineInMs,
      connectOptions: { statementTimeoutMs: 500, idleInTransactionTimeoutMs: 0 },
    });

    // Assert
    expect(result).toMatchObject({ status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
    expect(elapsed).toBeLessThan(deadlineInMs + CANCEL_GRACE_MS + SLACK_MS);
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await f.backends.waitUntilGone(f.fx.site.name);
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('the answer to COMMIT is lost and the site cannot be asked: the run says so, the site is as after a full run', async () => {
    // Arrange: COMMIT reaches the site and is carried out; its answer never comes back, and no new
    // connection gets through to ask what became of it.
    const before = await arrangeChangedRemote(f.fx);
    siteProxy.stallWhen({ clientSends: simpleQuery('COMMIT'), hold: 'response' });
    const deadlineInMs = 1_000;

    // Act
    const { result, elapsed } = await stalledRun({ deadline: Date.now() + deadlineInMs });

    // Assert: not DEADLINE_EXCEEDED, which says nothing was committed; the site has all of it and
    // one sync_run row, and the next run finds nothing to do.
    expect(siteProxy.stalled).toBe(true);
    expect(result).toMatchObject({ status: 'failed', error: { code: 'COMMIT_UNCONFIRMED' } });
    expect(result.error!.message).toContain('either all written or none');
    expect(elapsed).toBeLessThan(deadlineInMs + CANCEL_GRACE_MS + COMMIT_CHECK_MS + SLACK_MS);
    expect(await expectSiteAfterFault(f.fx, before, result, { committedAnyway: true })).toBe('after');
    await f.backends.waitUntilGone(f.fx.site.name);
    const next = await f.sync();
    expect(next.entities.map((e) => [e.entity, e.inserted, e.updated, e.deleted])).toEqual([
      ['meter', 0, 0, 0],
      ['register', 0, 0, 0],
      ['device_register', 0, 0, 0],
    ]);
  });

  it('the remote stalls before the connection is made: the connect timeout ends it', async () => {
    // Arrange
    const before = await arrangeChangedRemote(f.fx);
    remoteProxy.stall();
    const connectTimeoutMs = 500;

    // Act
    const { result, elapsed } = await stalledRun({ connectOptions: { connectTimeoutMs } });

    // Assert
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_TIMEOUT' } });
    expect(result.error!.message).toMatch(/^the remote database at 127\.0\.0\.1:\d+ did not answer in time/);
    expect(elapsed).toBeLessThan(connectTimeoutMs + SLACK_MS);
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('wrote no password in any result of this file', () => {
    expect(f.scan.counts.produced).toBeGreaterThanOrEqual(13);
    expect(f.scan.leaks()).toEqual([]);
  });
});
