/**
 * Fault 3: a statement timeout (a small `statementTimeoutMs`) on the remote and on the site, while a
 * statement waits on a lock the test holds or sleeps in a trigger. A timeout fails its entity alone
 * (DESIGN §3.6): the entities it touched are exactly as before, the others exactly as after a full
 * run, and the next run converges.
 */
import type { SyncResult } from '../../lib/engine';
import {
  arrangeChangedRemote,
  createFaultFixture,
  expectNextRunConverges,
  expectSiteAfterFault,
  type FaultFixture,
  STEP_LOCKS,
} from '../harness/fault-scenario';
import { holdLock } from '../harness/hold-lock';

const TIMEOUT = { statementTimeoutMs: 300 };

function failures(result: SyncResult): Record<string, string | undefined> {
  return Object.fromEntries(result.entities.map((e) => [e.entity, e.error?.code]));
}

describe('fault: statement timeouts', () => {
  let f: FaultFixture;
  beforeAll(async () => {
    f = await createFaultFixture();
  });
  afterAll(() => f.close());

  // When device_register fails, the site keeps the associations of the meter and the register the
  // remote deleted: those two deletes are skipped and counted, and meter and register commit the rest.
  it.each([
    // device_register's remote query reads meter too, so a lock on meter times both out.
    ['meter', { meter: 'TIMEOUT', register: undefined, device_register: 'TIMEOUT' }],
    ['register', { meter: undefined, register: 'TIMEOUT', device_register: undefined }],
    ['device_register', { meter: undefined, register: undefined, device_register: 'TIMEOUT' }],
  ])(
    'on the remote, reading %s: the entities it stopped are untouched, the others commit',
    async (table, expected) => {
      // Arrange
      const before = await arrangeChangedRemote(f.fx);
      const lock = await holdLock(f.fx.remote.url, `LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      let result: SyncResult;
      try {
        // Act
        result = await f.sync({ connectOptions: TIMEOUT });
      } finally {
        await lock.release();
      }

      // Assert: reported entity by entity, and recorded: the run itself did not fail.
      expect(result.error).toBeUndefined();
      expect(failures(result)).toEqual(expected);
      const message = result.entities.find((e) => e.entity === table)!.error!.message;
      expect(message).toContain('canceling statement due to statement timeout');
      expect(await expectSiteAfterFault(f.fx, before, result)).toBe('partial');
      await expectNextRunConverges(f.fx, () => f.sync());
    },
  );

  it.each(['delete register', 'upsert meter', 'upsert device_register'])(
    'on the site, in "%s": rolled back to its savepoint, the rest as DESIGN §3.6 says',
    async (step) => {
      // Arrange
      const before = await arrangeChangedRemote(f.fx);
      const lock = await holdLock(f.fx.site.url, STEP_LOCKS[step]!);
      const phases: string[] = [];
      let result: SyncResult;
      try {
        // Act
        result = await f.sync({
          connectOptions: TIMEOUT,
          onProgress: ({ entity, phase }) => phases.push(`${phase} ${entity}`),
        });
      } finally {
        await lock.release();
      }

      // Assert: the step was reached and timed out; its entity failed with TIMEOUT. Parents whose
      // deletes its kept rows still reference skip those, and the run records it.
      expect(phases).toContain(step);
      const entity = step.split(' ')[1]!;
      expect(failures(result)[entity]).toBe('TIMEOUT');
      expect(result.error).toBeUndefined();
      expect(await expectSiteAfterFault(f.fx, before, result)).toBe('partial');
      await expectNextRunConverges(f.fx, () => f.sync());
    },
  );

  it('on the site, in a trigger that sleeps: register fails alone, meter and device_register commit', async () => {
    // Arrange
    const before = await arrangeChangedRemote(f.fx);
    await f.fx.siteClient.query(`CREATE FUNCTION sleep_a_second() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$`);
    await f.fx.siteClient.query(
      'CREATE TRIGGER sleep_a_second BEFORE UPDATE ON register FOR EACH ROW EXECUTE FUNCTION sleep_a_second()',
    );
    let result: SyncResult;
    try {
      // Act
      result = await f.sync({ connectOptions: TIMEOUT });
    } finally {
      await f.fx.siteClient.query('DROP TRIGGER sleep_a_second ON register');
    }

    // Assert
    expect(failures(result)).toEqual({ meter: undefined, register: 'TIMEOUT', device_register: undefined });
    expect(await expectSiteAfterFault(f.fx, before, result)).toBe('partial');
    await expectNextRunConverges(f.fx, () => f.sync());
  });

  it('wrote no password in any result of this file', () => {
    expect(f.scan.counts.produced).toBeGreaterThanOrEqual(21);
    expect(f.scan.leaks()).toEqual([]);
  });
});
