/**
 * Fault 2: the site session is killed (pg_terminate_backend) during each apply step, during the
 * first-load COPY, at the audit insert and during COMMIT. Each time the engine waits on a lock the
 * test holds at exactly that point (a row the step writes, the table, or an advisory lock taken by a
 * trigger), so the kill lands there. The site is exactly as before and the next run converges.
 */

import {
  APPLY_STEPS,
  arrangeChangedRemote,
  createFaultFixture,
  createWaitForTest,
  expectNextRunConverges,
  expectSiteAfterFault,
  FAULT_SEED,
  type FaultFixture,
  STEP_LOCKS,
  TRIGGER_LOCK_SQL,
} from '../harness/fault-scenario';
import { holdLock } from '../harness/hold-lock';
import { resetFixture, siteContents } from '../harness/site-contents';

describe('fault: the site connection is killed while the run applies', () => {
  let f: FaultFixture;
  beforeAll(async () => {
    f = await createFaultFixture();
    await createWaitForTest(f.fx);
  });
  afterAll(() => f.close());

  /** Runs with `lockSql` held on the site, kills the engine's site session once it waits for it. */
  async function runKillingSiteAt(lockSql: string) {
    const lock = await holdLock(f.fx.site.url, lockSql);
    const phases: string[] = [];
    try {
      const run = f.sync({ onProgress: ({ entity, phase }) => phases.push(`${phase} ${entity}`) });
      const waiting = await f.backends.waitingForLock(f.fx.site.name);
      await f.backends.terminate(waiting.pid);
      return { result: await run, phase: phases.at(-1), query: waiting.query };
    } finally {
      await lock.release();
    }
  }

  it.each(APPLY_STEPS)('killed during "%s": nothing applied, then converges', async (step) => {
    // Arrange
    const before = await arrangeChangedRemote(f.fx);

    // Act
    const { result, phase } = await runKillingSiteAt(STEP_LOCKS[step]!);

    // Assert
    expect(phase).toBe(step);
    expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'CONNECTION_LOST' } });
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await f.backends.waitUntilGone(f.fx.remote.name);
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('killed during the COPY of a first load: the site stays empty', async () => {
    // Arrange: EXCLUSIVE lets the run read the empty table but not write into it.
    await resetFixture(f.fx);
    await f.fx.seed(FAULT_SEED);
    const before = await siteContents(f.fx.siteClient);

    // Act
    const { result, phase, query } = await runKillingSiteAt('LOCK TABLE meter IN EXCLUSIVE MODE');

    // Assert
    expect(phase).toBe('read meter');
    expect(query).toMatch(/^COPY "meter"/);
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_LOST' } });
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it.each([
    [
      'at the audit insert (a trigger on sync_run)',
      'CREATE TRIGGER wait_for_test AFTER INSERT ON sync_run',
      /^\s*INSERT INTO sync_run/,
    ],
    [
      'during COMMIT (a deferred constraint trigger)',
      'CREATE CONSTRAINT TRIGGER wait_for_test AFTER INSERT ON sync_run DEFERRABLE INITIALLY DEFERRED',
      /^COMMIT$/,
    ],
  ])('killed %s: nothing committed, then converges', async (_where, trigger, statement) => {
    // Arrange
    const before = await arrangeChangedRemote(f.fx);
    await f.fx.siteClient.query(`${trigger} FOR EACH ROW EXECUTE FUNCTION wait_for_test()`);
    try {
      // Act
      const { result, phase, query } = await runKillingSiteAt(TRIGGER_LOCK_SQL);

      // Assert: every step was applied, the run was stopped in that very statement, and rolled back.
      expect(phase).toBe('upsert device_register');
      expect(query).toMatch(statement);
      expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'CONNECTION_LOST' } });
      expect(await expectSiteAfterFault(f.fx, before, result)).toBe('before');
    } finally {
      await f.fx.siteClient.query('DROP TRIGGER wait_for_test ON sync_run');
    }
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('wrote no password in any result of this file', () => {
    expect(f.scan.counts.produced).toBeGreaterThanOrEqual(27);
    expect(f.scan.leaks()).toEqual([]);
  });
});
