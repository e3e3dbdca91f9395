/**
 * Fault 6: the site connection is lost during COMMIT. The engine cannot tell from the lost session
 * whether it committed, so it asks the site over a new one: a commit that landed is reported as
 * the run it was, and a commit still under way (blocked in a deferred trigger) is ended first, so
 * nothing lands after the run has reported failure. When the site cannot be asked (network-stall
 * test) the run says so with COMMIT_UNCONFIRMED.
 */
import { Client } from 'pg';
import { COMMIT_CHECK_MS, commitOutcome, pendingCommit } from '../../lib/db/commit-outcome';
import {
  arrangeChangedRemote,
  createFaultFixture,
  createWaitForTest,
  expectNextRunConverges,
  expectSiteAfterFault,
  type FaultFixture,
  holdTriggerLock,
} from '../harness/fault-scenario';
import { contentsDiff, reportedCounts, siteContents } from '../harness/site-contents';
import { simpleQuery, startTcpProxy, type TcpProxy } from '../harness/tcp-proxy';

describe('fault: the site connection is lost during COMMIT', () => {
  let f: FaultFixture;
  let siteProxy: TcpProxy;

  beforeAll(async () => {
    f = await createFaultFixture();
    await createWaitForTest(f.fx);
  });
  afterAll(() => f.close());

  beforeEach(async () => {
    const server = new URL(f.fx.site.url);
    siteProxy = await startTcpProxy(server.hostname, Number(server.port));
  });
  afterEach(async () => {
    await siteProxy.close();
    await f.backends.waitUntilGone(f.fx.site.name);
  });

  it('after the site committed: the run is reported as the full run it was', async () => {
    // Arrange: COMMIT reaches the site and is carried out; the connection drops with its answer.
    const before = await arrangeChangedRemote(f.fx);
    siteProxy.stallWhen({ clientSends: simpleQuery('COMMIT'), hold: 'lose' });

    // Act
    const result = await f.sync({ site: siteProxy.via(f.siteUrl) });

    // Assert: the answer was lost, yet the run knows it committed, with the counts of what it wrote.
    expect(siteProxy.cutCount).toBe(1);
    expect({ status: result.status, error: result.error }).toEqual({ status: 'ok', error: undefined });
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('after');
    expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(f.fx.siteClient)));
    const next = await f.sync();
    expect(next.entities.map((e) => [e.entity, e.inserted + e.updated + e.deleted])).toEqual([
      ['meter', 0],
      ['register', 0],
      ['device_register', 0],
    ]);
  });

  it('while COMMIT still waits in a deferred trigger: it is ended, and nothing lands later', async () => {
    // Arrange: COMMIT blocks in a deferred constraint trigger on a lock the test holds; then the
    // network drops the connection. The server's session does not notice while it waits.
    const before = await arrangeChangedRemote(f.fx);
    await f.fx.siteClient.query(`CREATE CONSTRAINT TRIGGER wait_for_test AFTER INSERT ON sync_run
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_for_test()`);
    const lock = await holdTriggerLock(f.fx);
    try {
      const run = f.sync({ site: siteProxy.via(f.siteUrl) });
      const waiting = await f.backends.waitingForLock(f.fx.site.name);
      expect(waiting.query).toBe('COMMIT');

      // Act
      siteProxy.cut();
      const result = await run;

      // Assert: the session that was committing is gone before the run reports, rolled back.
      expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_LOST' } });
      expect((await f.backends.list(f.fx.site.name)).map((b) => b.pid)).not.toContain(waiting.pid);
    } finally {
      await lock.release();
      await f.fx.siteClient.query('DROP TRIGGER wait_for_test ON sync_run');
    }
    // The lock is free now: a commit still pending could land from here on. None is (its session
    // is gone, asserted above), and the site is as it was.
    expect(await siteContents(f.fx.siteClient)).toEqual(before);
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('asks about the transaction, and never ends a later session that has the same pid', async () => {
    // Arrange: a transaction that committed, and a live session in a transaction of its own that
    // stands in for a later session given the committed one's pid.
    const committed = new Client({ connectionString: f.siteUrl });
    await committed.connect();
    await committed.query('BEGIN');
    await committed.query('CREATE TEMPORARY TABLE t (x int)');
    const pending = await pendingCommit(committed);
    await committed.query('COMMIT');
    await committed.end();
    const other = new Client({ connectionString: f.siteUrl });
    other.on('error', () => {}); // it is terminated on purpose below
    await other.connect();
    try {
      await other.query('BEGIN');
      const live = await pendingCommit(other);

      // Act + assert
      expect(await commitOutcome(f.siteUrl, { xid: pending.xid, pid: live.pid })).toBe('committed');
      expect((await other.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // And the live transaction itself, once asked about: ended, so that it can never commit.
      expect(await commitOutcome(f.siteUrl, live)).toBe('aborted');
      await expect(other.query('SELECT 1')).rejects.toThrow();
    } finally {
      await other.end().catch(() => {});
    }
  });

  it('cannot ask a site that does not answer: unknown, within its budget', async () => {
    // Arrange
    siteProxy.stall();
    const started = Date.now();

    // Act
    const outcome = await commitOutcome(siteProxy.via(f.siteUrl), { xid: '1000', pid: 1 });

    // Assert
    expect(outcome).toBe('unknown');
    expect(Date.now() - started).toBeLessThan(COMMIT_CHECK_MS + 3_000);
  });

  it('wrote no password in any result of this file', () => {
    expect(f.scan.counts.produced).toBeGreaterThanOrEqual(4);
    expect(f.scan.leaks()).toEqual([]);
  });
});
