/**
 * Fault 4: the Lambda deadline is reached mid-run. The real handler (createSyncHandler, local
 * credentials) is invoked with a context whose remaining time is the safety margin plus one
 * second, while the run waits on a lock the test holds: in a remote read, in an apply step, in
 * COMMIT. The statement is cancelled, the run rolled back and reported DEADLINE_EXCEEDED, and the
 * next invocation converges.
 */
import '../functions/lambda-environment';
import { createSyncHandler, DEFAULT_DEADLINE_MARGIN_MS } from '../../functions/sync/handler';
import { LocalCredentials } from '../../lib/credentials';
import type { SyncResult } from '../../lib/engine';
import { lambdaContext } from '../functions/lambda-context';
import {
  arrangeChangedRemote,
  createFaultFixture,
  expectNextRunConverges,
  expectSiteAfterFault,
  type FaultFixture,
  STEP_LOCKS,
} from '../harness/fault-scenario';
import { holdLock } from '../harness/hold-lock';
import { logLines, metricDocuments } from '../observability/captured-output';

const SITE = 'plant-deadline';
const COMMIT_LOCK = 7305818813071269998n;
const ENTITIES = ['meter', 'register', 'device_register'];

describe('fault: the Lambda deadline is reached mid-run', () => {
  let f: FaultFixture;
  let handler: ReturnType<typeof createSyncHandler>;

  beforeAll(async () => {
    f = await createFaultFixture();
    handler = createSyncHandler({
      credentials: new LocalCredentials({
        remote: f.remoteUrl,
        sites: { [SITE]: { url: f.siteUrl, tenantId: 1 } },
      }),
    });
    await f.fx.siteClient.query(`CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock(${COMMIT_LOCK}); RETURN NULL; END $$`);
  });
  afterAll(() => f.close());

  /** One invocation with `remainingMs` left, its output captured and scanned. */
  async function invoke(remainingMs: number) {
    const { value, error, lines } = await f.scan.capture(
      () => handler({ siteId: SITE }, lambdaContext(remainingMs)) as Promise<SyncResult>,
    );
    if (error) throw error;
    return { result: value!, lines };
  }

  it.each([
    // A read of the table the lock holds: the server keeps only the start of a long statement's text.
    ['reading the remote', 'remote', 'LOCK TABLE register IN ACCESS EXCLUSIVE MODE', /^(SELECT|COPY) /],
    ['in the "upsert register" step', 'site', STEP_LOCKS['upsert register']!, /INSERT INTO "register"/],
    ['in COMMIT', 'site', `SELECT pg_advisory_xact_lock(${COMMIT_LOCK})`, /^COMMIT$/],
  ] as const)(
    '%s: cancelled, rolled back, DEADLINE_EXCEEDED; the next invocation converges',
    async (_where, side, lockSql, statement) => {
      // Arrange
      const before = await arrangeChangedRemote(f.fx);
      await f.fx.siteClient.query(`CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON sync_run
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()`);
      const lock = await holdLock(side === 'remote' ? f.fx.remote.url : f.fx.site.url, lockSql);
      let outcome: Awaited<ReturnType<typeof invoke>>;
      try {
        // Act: one second of the function's time is left after the margin.
        const invocation = invoke(DEFAULT_DEADLINE_MARGIN_MS + 1_000);
        const waiting = await f.backends.waitingForLock(
          side === 'remote' ? f.fx.remote.name : f.fx.site.name,
        );
        expect(waiting.query).toMatch(statement);
        outcome = await invocation;
        // The statement was cancelled: nobody waits for the lock any more.
        expect(await lock.waiting()).toBe(0);
      } finally {
        await lock.release();
        await f.fx.siteClient.query('DROP TRIGGER wait_at_commit ON sync_run');
      }

      // Assert
      const { result, lines } = outcome;
      expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
      expect(result.entities.map((e) => [e.entity, e.error?.code])).toEqual(
        ENTITIES.map((entity) => [entity, 'DEADLINE_EXCEEDED']),
      );
      expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
      const run = metricDocuments(lines).filter((d) => 'SyncSucceeded' in d.values);
      expect(run.map((d) => d.values.SyncSucceeded)).toEqual([0]);
      expect(logLines(lines).find((l) => l.message === 'sync failed')).toMatchObject({
        siteId: SITE,
        error: { code: 'DEADLINE_EXCEEDED' },
      });
      await f.backends.waitUntilGone(f.fx.site.name);
      await expectNextRunConverges(f.fx, async () => (await invoke(120_000)).result);
    },
  );

  it('wrote no password in any log line, error or result of this file', () => {
    expect(f.scan.counts.produced).toBeGreaterThan(50);
    expect(f.scan.leaks()).toEqual([]);
  });
});
