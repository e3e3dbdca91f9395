/**
 * The scenario every fault test starts from, and the oracle it ends with: a synced site whose remote
 * then changed in every entity (so every read and every apply step has work), and after the fault,
 * a site that is exactly as before the run or exactly as after a full run (per entity for an entity
 * the run reported failed, DESIGN §3.6), and a next run that converges with exact counts.
 */
import type { Row } from '../../lib/db/rows';
import type { SyncOptions, SyncResult } from '../../lib/engine';
import { meterId, registerId } from '../../lib/seed/seed-remote';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import { EngineBackends } from './engine-backends';
import { type HeldLock, holdLock } from './hold-lock';
import { SecretScan } from './secret-scan';
import {
  type Contents,
  contentsDiff,
  expectedSlice,
  reportedCounts,
  resetFixture,
  siteContents,
} from './site-contents';
import { createSyncFixture, type SyncFixture } from './sync-fixture';

export const FAULT_SEED = {
  tenants: [1, 2],
  metersPerTenant: 10,
  registersPerTenant: 12,
  registersPerMeter: 2,
};
export const TENANT = 1;

export type SiteState = Awaited<ReturnType<typeof siteContents>>;

/** A database URL with other login credentials (a test role whose password the scan looks for). */
export function withLogin(url: string, login: { name: string; password: string }): string {
  const parsed = new URL(url);
  parsed.username = login.name;
  parsed.password = encodeURIComponent(login.password);
  return parsed.toString();
}

export interface FaultFixture {
  readonly fx: SyncFixture;
  readonly backends: EngineBackends;
  readonly scan: SecretScan;
  /** The engine's run as the login role (a password the scan looks for); its result is recorded. */
  sync(options?: Partial<SyncOptions>): Promise<SyncResult>;
  /** The URLs the engine connects with. */
  readonly remoteUrl: string;
  readonly siteUrl: string;
  close(): Promise<void>;
}

/** A remote and a site for tenant 1, reached by the engine through one login role of their own. */
export async function createFaultFixture(): Promise<FaultFixture> {
  const fx = await createSyncFixture(TENANT);
  const role: LoginRole = await createLoginRole([fx.remote.name, fx.site.name]);
  const backends = await EngineBackends.open();
  const scan = new SecretScan();
  scan.secret(role.password);
  const remoteUrl = withLogin(fx.remote.url, role);
  const siteUrl = withLogin(fx.site.url, role);
  return {
    fx,
    backends,
    scan,
    remoteUrl,
    siteUrl,
    async sync(options = {}) {
      const result = await fx.sync({ remote: remoteUrl, site: siteUrl, ...options });
      scan.record(result);
      return result;
    },
    async close() {
      await backends.close();
      await fx.close();
      await role.drop();
    },
  };
}

/** The row each apply step of the changed scenario writes first, locked so that the step waits. */
export const STEP_LOCKS: Readonly<Record<string, string>> = {
  'delete device_register': `SELECT 1 FROM device_register WHERE device_id = ${meterId(1, 4)} AND register_id = ${registerId(1, 9)} FOR UPDATE`,
  'delete register': `SELECT 1 FROM register WHERE id = ${registerId(1, 2)} FOR UPDATE`,
  'delete meter': `SELECT 1 FROM meter WHERE id = ${meterId(1, 2)} FOR UPDATE`,
  'upsert meter': `SELECT 1 FROM meter WHERE id = ${meterId(1, 1)} FOR NO KEY UPDATE`,
  'upsert register': `SELECT 1 FROM register WHERE id = ${registerId(1, 1)} FOR NO KEY UPDATE`,
  'upsert device_register': `SELECT 1 FROM device_register WHERE device_id = ${meterId(1, 3)} FOR NO KEY UPDATE`,
};

export const APPLY_STEPS = Object.keys(STEP_LOCKS);

const TRIGGER_LOCK = 7305818813071269999n;
/** Takes the advisory lock (of the site database) that `wait_for_test()` waits for. */
export const TRIGGER_LOCK_SQL = `SELECT pg_advisory_xact_lock(${TRIGGER_LOCK})`;

/**
 * Creates `wait_for_test()` on the site: a trigger function that waits for a lock the test holds
 * (`holdTriggerLock`), a way to stop a run inside the audit insert, or inside COMMIT when the
 * trigger is a deferred constraint trigger.
 */
export async function createWaitForTest(fx: SyncFixture): Promise<void> {
  await fx.siteClient.query(`CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_advisory_xact_lock(${TRIGGER_LOCK}); RETURN NULL; END $$`);
}

/** Holds the lock `wait_for_test()` waits for, until released. */
export function holdTriggerLock(fx: SyncFixture): Promise<HeldLock> {
  return holdLock(fx.site.url, TRIGGER_LOCK_SQL);
}

/**
 * Seeds two tenants, syncs tenant 1, then changes the remote in every entity: a meter renamed, one
 * deleted and one added; a register changed, one deleted and one added; associations changed,
 * deleted (with their parents, and one alone) and added. Returns the site as it is then.
 */
export async function arrangeChangedRemote(fx: SyncFixture): Promise<SiteState> {
  await resetFixture(fx);
  await fx.seed(FAULT_SEED);
  const first = await fx.sync();
  if (first.status !== 'ok') throw new Error(`the arranging sync failed: ${JSON.stringify(first.error)}`);
  const r = fx.remoteClient;
  await r.query(`UPDATE meter SET name = 'renamed', config = '{"unitId": 1.0}' WHERE id = $1`, [
    meterId(1, 1),
  ]);
  await r.query('DELETE FROM device_register WHERE device_id = $1', [meterId(1, 2)]);
  await r.query('DELETE FROM meter WHERE id = $1', [meterId(1, 2)]);
  await r.query(
    `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at)
     VALUES ($1, 1, 'added', 'mbus', true, '2025-01-01 00:00:00.000001+00')`,
    [meterId(1, 11)],
  );
  await r.query(`UPDATE register SET unit = 'MWh', scale = 0.5 WHERE id = $1`, [registerId(1, 1)]);
  await r.query('DELETE FROM device_register WHERE register_id = $1', [registerId(1, 2)]);
  await r.query('DELETE FROM register WHERE id = $1', [registerId(1, 2)]);
  await r.query(
    `INSERT INTO register (id, tenant_id, name, address, data_type, scale, updated_at)
     VALUES ($1, 1, 'added', 31000, 'uint16', 1.000000, now())`,
    [registerId(1, 13)],
  );
  await r.query('UPDATE device_register SET poll_interval_s = 7 WHERE device_id = $1', [meterId(1, 3)]);
  await r.query('DELETE FROM device_register WHERE device_id = $1 AND register_id = $2', [
    meterId(1, 4),
    registerId(1, 9),
  ]);
  await r.query('INSERT INTO device_register VALUES ($1, $2, 60, true)', [meterId(1, 11), registerId(1, 13)]);
  return siteContents(fx.siteClient);
}

function runCount(state: { sync_run_count: Row[] }): number {
  return Number(state.sync_run_count[0]?.runs ?? 0);
}

/**
 * The site a run leaves when the entities in `failed` failed and the others committed: a failed
 * entity keeps its rows; a parent that committed holds its slice, and keeps the rows of it that the
 * kept rows of a failed child still reference (their deletes skipped, DESIGN §3.13); a child that
 * committed holds the rows of its slice whose parents are on the site after the run (§3.5, §3.6).
 */
export function expectedAfter(before: Contents, slice: Contents, failed: ReadonlySet<string>): Contents {
  const keptAssociations = failed.has('device_register') ? before.device_register! : [];
  const pick = (entity: 'meter' | 'register', column: 'device_id' | 'register_id') => {
    if (failed.has(entity)) return before[entity]!;
    const inSlice = new Set(slice[entity]!.map((row) => row.id));
    const referenced = new Set(keptAssociations.map((row) => row[column]));
    const pinned = before[entity]!.filter((row) => !inSlice.has(row.id) && referenced.has(row.id));
    return [...slice[entity]!, ...pinned].sort((a, b) => (BigInt(a.id!) < BigInt(b.id!) ? -1 : 1));
  };
  const meter = pick('meter', 'device_id');
  const register = pick('register', 'register_id');
  const meters = new Set(meter.map((row) => row.id));
  const registers = new Set(register.map((row) => row.id));
  const deviceRegister = failed.has('device_register')
    ? before.device_register!
    : slice.device_register!.filter((row) => meters.has(row.device_id!) && registers.has(row.register_id!));
  return { meter, register, device_register: deviceRegister };
}

export type Outcome = 'before' | 'after' | 'partial';

/**
 * Asserts the site is exactly as before the run (nothing committed, no `sync_run` row), exactly as
 * after a full run (and one `sync_run` row more), or, for a run that reported entities failed,
 * exactly what DESIGN §3.6 says: the failed ones as before, the others as after. The full site
 * contents are compared. `committedAnyway` accepts a run that reports a failure but whose commit
 * went through (its answer was lost on the way back).
 */
export async function expectSiteAfterFault(
  fx: SyncFixture,
  before: SiteState,
  result: SyncResult,
  options: { committedAnyway?: boolean } = {},
): Promise<Outcome> {
  const after = await siteContents(fx.siteClient);
  const slice = await expectedSlice(fx.remoteClient, TENANT);
  const full = { ...slice, sync_run_count: [{ runs: String(runCount(before) + 1) }] };
  if (result.status === 'failed' && result.error) {
    // The run failed as a whole: nothing may have been committed, unless the commit itself was in flight.
    if (options.committedAnyway && runCount(after) === runCount(before) + 1) {
      expect(after).toEqual(full);
      return 'after';
    }
    expect(after).toEqual(before);
    return 'before';
  }
  if (result.status === 'ok') {
    expect(after).toEqual(full);
    return 'after';
  }
  const failed = new Set(result.entities.filter((e) => e.status === 'failed').map((e) => e.entity));
  expect(after).toEqual({ ...expectedAfter(before, slice, failed), sync_run_count: full.sync_run_count });
  return 'partial';
}

/**
 * The next run, with nothing in the way, makes the site equal to the slice and reports exactly the
 * row-by-row differences; the one after it writes nothing.
 */
export async function expectNextRunConverges(
  fx: SyncFixture,
  sync: () => Promise<SyncResult> = () => fx.sync(),
): Promise<void> {
  const before = await siteContents(fx.siteClient);
  const slice = await expectedSlice(fx.remoteClient, TENANT);
  const next = await sync();
  expect({ status: next.status, error: next.error }).toEqual({ status: 'ok', error: undefined });
  const after = await siteContents(fx.siteClient);
  expect(after).toEqual({ ...slice, sync_run_count: [{ runs: String(runCount(before) + 1) }] });
  expect(reportedCounts(next)).toEqual(contentsDiff(before, after));
  const again = await sync();
  expect(again.entities.map((e) => e.inserted + e.updated + e.deleted)).toEqual([0, 0, 0]);
}
