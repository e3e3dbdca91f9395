/**
 * performSync: makes one site database equal to its tenant's slice of the remote, for every
 * entity of the run, in one site transaction (DESIGN §3). It knows nothing of AWS.
 *
 * 1. Lock the site (a second concurrent run returns `locked` and touches nothing). A site that is
 *    the remote database itself (told by what both servers say of themselves) is refused with
 *    SITE_IS_REMOTE before the first write.
 * 2. Read every entity from one read-only remote snapshot: what differs lands in temporary stage
 *    tables, what was proved equal stays where it is (compare-entity.ts).
 * 3. Plan: the rows each delete step removes and each upsert step skips (plan-run.ts).
 * 4. Apply: deletes child-first, upserts parent-first. An entity that fails is rolled back with
 *    the whole apply, and the run plans and applies again as a run without it would: its rows
 *    stay as the site has them, its children check against them, and nothing deletes what they
 *    reference.
 * 5. Record the run in `sync_run` and commit, or roll back everything for a dry run.
 */
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { Client } from 'pg';
import { answeredByServer, commitOutcome, pendingCommit } from '../db/commit-outcome';
import { type ConnectOptions, connectAhead, type DatabaseTarget, type PendingSession } from '../db/connect';
import { findRejectedLine } from '../db/find-rejected-line';
import { findRejectedRow } from '../db/find-rejected-row';
import { RemoteSnapshot } from '../db/remote-database';
import { readServerIdentity, refuseRemoteAsSite, type ServerIdentity } from '../db/server-identity';
import { SiteDatabase, type SkippedRow, type WriteCounts } from '../db/site-database';
import { schemaMismatch, siteSchemaVersion } from '../db/site-migrations';
import {
  applicableRows,
  type ParentLookup,
  packFingerprints,
  type ResolvedEntity,
  remoteSql,
  rowsCounted,
  unpackFingerprints,
} from '../db/sync-sql';
import { defaultRegistry, type EntityMetadata, type EntityRegistry } from '../entities';
import {
  CommitUnconfirmedError,
  MassDeleteGuardError,
  MeterSyncError,
  SiteIsRemoteError,
  TenantMismatchError,
  toMeterSyncError,
} from '../errors';
import { compareEntity, type FingerprintMemo, type RememberedSkips, withoutSkips } from './compare-entity';
import { DEFAULT_MAX_DELETE_RATIO, MASS_DELETE_MIN_ROWS } from './mass-delete-defaults';
import { type EntityPlan, EntityPlanError, type PlanRole, planRun } from './plan-run';
import { planSteps, relativesOf, type Step } from './plan-steps';
import { recordRun } from './record-run';
import { RunDeadline } from './run-deadline';
import {
  type EntityResult,
  type ErrorReport,
  emptyEntityResult,
  type RowChange,
  runStatus,
  type SyncResult,
} from './sync-result';

export { DEFAULT_MAX_DELETE_RATIO, MASS_DELETE_MIN_ROWS };

const SKIPPED_KEY_SAMPLE = 5;

export interface ProgressEvent {
  entity: string;
  phase: 'read' | 'delete' | 'upsert';
}

/** A phase once it is over, for tracing and debug logs: when it started, how long it took, its rows. */
export interface PhaseTiming {
  phase: 'connect' | ProgressEvent['phase'];
  /** The entity of a read, delete or upsert phase. */
  entity?: string;
  /** The database a connect phase opened. */
  database?: 'site' | 'remote';
  /** Epoch ms. */
  startedAt: number;
  durationMs: number;
  /** The phase's counts: a read's remote rows, a delete's deletes, an upsert's inserts, updates and skips. */
  rows: Readonly<Record<string, number>>;
  /** The error code of a phase that failed. */
  error?: string;
}

export interface SyncOptions {
  remote: DatabaseTarget;
  site: DatabaseTarget;
  tenantId: number;
  siteId?: string;
  /** Entity names; all registered entities when absent. */
  entities?: readonly string[];
  dryRun?: boolean;
  allowMassDelete?: boolean;
  maxDeleteRatio?: number;
  /** Default MASS_DELETE_MIN_ROWS. */
  massDeleteMinRows?: number;
  /**
   * Re-binds a site bound to another tenant (DESIGN §3.11): without it such a run fails
   * TENANT_MISMATCH before it writes anything. The result says so in `tenantChange`.
   */
  allowTenantChange?: boolean;
  registry?: EntityRegistry;
  connectOptions?: ConnectOptions;
  onProgress?: (event: ProgressEvent) => void;
  /** Told of each phase once it is over (connect, then each entity's read, delete and upsert). */
  onPhase?: (timing: PhaseTiming) => void;
  /**
   * Epoch ms the run must be over by (the Lambda passes its remaining time less a margin). Checked
   * between steps; at the deadline the statement in flight is cancelled, the run rolled back and
   * reported `failed` with code DEADLINE_EXCEEDED.
   */
  deadline?: number;
  /** Cancels the run (the CLI's Ctrl-C): its sessions let go at once, and it ends CANCELLED, nothing committed. */
  signal?: AbortSignal;
  /** A committing run deletes `sync_run` rows older than this many days (record-run.ts); none when absent. */
  syncRunRetentionDays?: number;
  /**
   * Plan: a dry run that also lists, per entity, the rows it would insert, update, delete or skip
   * (`max` at most, in key order), read off the site as its rolled-back apply leaves it.
   */
  changes?: { max: number };
}

interface EntityState {
  readonly meta: EntityMetadata;
  resolved?: ResolvedEntity;
  result: EntityResult;
  failed: boolean;
  /** Needs no apply step: proved equal to the remote, or loaded straight into an empty table. */
  settled: boolean;
  /** Site rows proved equal to the remote without staging them; counted as unchanged. */
  knownEqual: number;
  /** The table's rows as the comparison counted them; its delete step is the first to change them. */
  siteRows?: number;
  /** What its steps do, once the run is planned. */
  plan?: EntityPlan;
  /** Loaded straight into its empty table by the comparison. */
  loaded?: boolean;
  /** A plan's skipped rows, with their reasons (its upsert step finds them). */
  skips?: SkippedRow[];
  /** Skips the site remembers: the region whose skips the upsert step decides again, and those that stand outside it. */
  remembered?: RememberedSkips;
  /** The fingerprint its comparison leaves to keep, should the run make (or find) its rows equal. */
  memo?: FingerprintMemo;
}

interface StepOutcome {
  deleted?: number;
  inserted?: number;
  updated?: number;
  unchanged?: number;
  skipped?: number;
  skippedRows?: SkippedRow[];
}

/** The skipped rows a result names; a plan lists them all (up to its limit) in `changes`. */
function skippedSample(rows: readonly SkippedRow[]): Pick<EntityResult, 'skippedKeys' | 'skippedReasons'> {
  const sample = rows.slice(0, SKIPPED_KEY_SAMPLE);
  return { skippedKeys: sample.map((row) => row.key), skippedReasons: sample.map((row) => row.reason) };
}

function report(error: MeterSyncError): ErrorReport {
  return { code: error.code, message: error.message, ...(error.key !== undefined ? { key: error.key } : {}) };
}

function checkOptions(options: SyncOptions): void {
  const { tenantId, maxDeleteRatio } = options;
  if (!Number.isInteger(tenantId) || tenantId < 0 || tenantId > 2_147_483_647) {
    throw new MeterSyncError('BAD_OPTIONS', 'tenantId must be an integer between 0 and 2147483647');
  }
  if (maxDeleteRatio !== undefined && !(maxDeleteRatio >= 0 && maxDeleteRatio <= 1)) {
    throw new MeterSyncError('BAD_OPTIONS', 'maxDeleteRatio must be between 0 and 1');
  }
  const minRows = options.massDeleteMinRows;
  if (minRows !== undefined && !(Number.isSafeInteger(minRows) && minRows >= 0)) {
    throw new MeterSyncError('BAD_OPTIONS', 'massDeleteMinRows must be a whole number of rows, 0 or more');
  }
  const max = options.changes?.max;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new MeterSyncError('BAD_OPTIONS', 'changes.max must be a whole number of at least 1');
  }
  if (options.deadline !== undefined && !Number.isFinite(options.deadline)) {
    throw new MeterSyncError('BAD_OPTIONS', 'deadline must be a time in epoch milliseconds');
  }
}

/** The remote's session once it may be read: the server it is on, and its snapshot. */
interface OpenRemote {
  client: Client;
  identity: ServerIdentity;
  snapshot: RemoteSnapshot;
}

class SyncRun {
  private readonly registry: EntityRegistry;
  private readonly states = new Map<string, EntityState>();
  /** Entities of this run in parent-first order. */
  private readonly order: string[];
  private readonly startedAt = new Date();
  private readonly t0 = performance.now();
  private readonly deadline: RunDeadline;
  /** Entities outside the run (or not resolved in it) that the run's rows reference or are referenced by: their site tables. */
  private readonly outside = new Map<string, ResolvedEntity>();

  /** A plan is a dry run. */
  private readonly dryRun: boolean;
  /** Set once the entities are being worked on: a failure before that is the run's alone (no entity ran). */
  private entitiesStarted = false;
  /** The tenant the site was bound to, when this run re-binds it (allowTenantChange). */
  private rebindFrom: number | undefined;

  constructor(private readonly options: SyncOptions) {
    checkOptions(options);
    this.dryRun = options.dryRun === true || options.changes !== undefined;
    this.deadline = new RunDeadline(options.deadline, options.signal);
    this.registry = options.registry ?? defaultRegistry;
    this.order = this.registry.select(options.entities).map((meta) => meta.name);
    for (const name of this.order) {
      const meta = this.registry.get(name);
      this.states.set(name, {
        meta,
        result: emptyEntityResult(name),
        failed: false,
        settled: false,
        knownEqual: 0,
      });
    }
  }

  async run(): Promise<SyncResult> {
    let site: Client | undefined;
    let remote: Client | undefined;
    let remoteSession: PendingSession<OpenRemote> | undefined;
    let remoteClosed: Promise<void> | undefined;
    try {
      this.deadline.check();
      // The remote logs in, says which server it is and opens its snapshot while the site is
      // locked and its catalog read.
      remoteSession = this.openRemote();
      site = await this.connectAhead('site').take();
      this.deadline.watch(site, 'site');
      // Before the transaction: a role that may not read the system identifier is refused harmlessly.
      const siteIdentity = await readServerIdentity(site);
      const db = new SiteDatabase(site);
      await site.query('BEGIN');
      if (!(await db.tryLock())) {
        await site.query('ROLLBACK');
        return this.finish('locked', [], {
          code: 'SITE_LOCKED',
          message: 'another meter-sync run holds this site; nothing was done',
        });
      }
      const mismatch = schemaMismatch(await siteSchemaVersion(site));
      if (mismatch) throw mismatch;
      const boundTenant = await this.checkTenant(db);
      this.entitiesStarted = true;
      await this.resolveEntities(db);
      this.deadline.check();
      const opened = await remoteSession.take();
      remote = opened.client;
      // Before the first write: a site that is the remote itself would lose every other tenant's rows.
      refuseRemoteAsSite(siteIdentity, opened.identity);
      await this.stageFromRemote(db, opened.snapshot);
      // The remote's part is over: its logout's round trip overlaps the site's apply.
      remoteClosed = remote.end().catch(() => {});
      remote = undefined;
      await this.applySteps(db);
      this.deadline.check();
      if (this.options.changes) await this.listChanges(db, this.options.changes.max);
      const result = this.finish(runStatus(this.results()), this.results());
      if (this.dryRun) {
        await site.query('ROLLBACK');
      } else {
        // The first run that commits rows binds the site; a re-bind commits with the new tenant's rows.
        if (boundTenant !== this.options.tenantId && result.status !== 'failed')
          await db.bindTenant(this.options.tenantId);
        await this.keepFingerprints(db);
        await recordRun(site, result, this.options.syncRunRetentionDays);
        await this.commit(site);
      }
      return this.finish(result.status, result.entities);
    } catch (error) {
      await site?.query('ROLLBACK').catch(() => {});
      // Past the deadline nothing was committed, unless COMMIT itself was left unanswered.
      const unconfirmed = error instanceof CommitUnconfirmedError;
      return this.failRun(
        this.deadline.expired && !unconfirmed ? this.deadline.error() : toMeterSyncError(error),
      );
    } finally {
      this.deadline.stop();
      remoteSession?.release();
      await remote?.end().catch(() => {});
      await remoteClosed;
      await site?.end().catch(() => {});
    }
  }

  /**
   * The remote's session, ready to read: logged in, its identity read (outside a transaction, see
   * server-identity.ts) and its snapshot open.
   */
  private openRemote(): PendingSession<OpenRemote> {
    return this.connectAhead('remote', async (client) => {
      this.deadline.watch(client, 'remote');
      const identity = await readServerIdentity(client);
      const snapshot = await RemoteSnapshot.open(client, this.options.tenantId);
      return { client, identity, snapshot };
    });
  }

  /** Starts connecting to one side, and reports the phase once the login is over, taken or not. */
  private connectAhead(database: 'site' | 'remote'): PendingSession;
  private connectAhead<T>(
    database: 'site' | 'remote',
    prepare: (client: Client) => Promise<T>,
  ): PendingSession<T>;
  private connectAhead<T>(
    database: 'site' | 'remote',
    prepare?: (client: Client) => Promise<T>,
  ): PendingSession<T> | PendingSession {
    const started = this.phaseStart();
    const onSettled = (error?: unknown) =>
      this.phaseDone(started, {
        phase: 'connect',
        database,
        rows: {},
        ...(error !== undefined ? { error: toMeterSyncError(error).code } : {}),
      });
    const options = this.deadline.limit(this.options.connectOptions);
    return prepare
      ? connectAhead(this.options[database], database, options, { onSettled, prepare })
      : connectAhead(this.options[database], database, options, { onSettled });
  }

  private phaseStart(): { at: number; t0: number } {
    return { at: Date.now(), t0: performance.now() };
  }

  private phaseDone(
    started: { at: number; t0: number },
    phase: Omit<PhaseTiming, 'startedAt' | 'durationMs'>,
  ): void {
    this.options.onPhase?.({ ...phase, startedAt: started.at, durationMs: performance.now() - started.t0 });
  }

  /**
   * The tenant the site is bound to. A run for another fails TENANT_MISMATCH before it reads or
   * writes anything, unless it re-binds the site on purpose (allowTenantChange).
   */
  private async checkTenant(db: SiteDatabase): Promise<number | undefined> {
    const bound = await db.boundTenant();
    if (bound === undefined || bound === this.options.tenantId) return bound;
    if (!this.options.allowTenantChange) throw new TenantMismatchError(bound, this.options.tenantId);
    this.rebindFrom = bound;
    return bound;
  }

  /**
   * COMMIT, and if its answer is lost with the session, what the site says became of it: a run
   * that committed is reported as such, one that may still commit is ended first (commit-outcome).
   */
  private async commit(site: Client): Promise<void> {
    const pending = await pendingCommit(site);
    try {
      await site.query('COMMIT');
    } catch (error) {
      if (answeredByServer(error)) throw error;
      const outcome = await commitOutcome(this.options.site, pending, this.options.connectOptions);
      if (outcome === 'committed') return;
      if (outcome === 'aborted') throw error;
      throw new CommitUnconfirmedError(toMeterSyncError(error).message);
    }
  }

  /**
   * Binds each entity of the run to the site's catalog, and each entity outside it that the run's
   * rows reference or that references them: children check their parents' rows, and a parent row
   * the run removes must not be one that rows outside the run still reference.
   */
  private async resolveEntities(db: SiteDatabase): Promise<void> {
    for (const state of this.states.values()) {
      try {
        state.resolved = await db.resolve(state.meta);
      } catch (error) {
        this.markFailed(state, toMeterSyncError(error));
      }
    }
    for (const state of this.states.values()) {
      for (const parent of state.meta.parents ?? []) {
        if (this.states.get(parent.entity)?.resolved || this.outside.has(parent.entity)) continue;
        try {
          // Children only look up a parent's key: a parent of the run whose table lacks another
          // column cannot sync, but its rows on the site are still the ones its children check.
          const meta = this.registry.get(parent.entity);
          this.outside.set(parent.entity, await db.resolve({ ...meta, columns: meta.keyColumns }));
        } catch (error) {
          this.markFailed(state, toMeterSyncError(error));
        }
      }
    }
    for (const child of this.registry.entities) {
      const references = (child.parents ?? []).filter((p) => this.states.has(p.entity));
      if (this.states.get(child.name)?.resolved || this.outside.has(child.name) || references.length === 0)
        continue;
      const columns = [
        ...new Set([...child.keyColumns, ...references.flatMap((p) => Object.keys(p.columns))]),
      ];
      // A child table the site does not have (or not with these columns) references nothing.
      const resolved = await db.resolve({ ...child, columns }).catch(() => undefined);
      if (resolved) this.outside.set(child.name, resolved);
    }
  }

  private async stageFromRemote(db: SiteDatabase, snapshot: RemoteSnapshot): Promise<void> {
    for (const name of this.order) {
      const state = this.states.get(name)!;
      this.deadline.check();
      if (state.failed || !state.resolved) continue;
      this.options.onProgress?.({ entity: name, phase: 'read' });
      const phase = this.phaseStart();
      const started = performance.now();
      let failure = await this.stage(db, snapshot, state, state.resolved);
      // A first load straight into the table that the site refused: stage the slice instead, so
      // that the upsert step names the row and fails alone, as it would on a site that had rows.
      if (failure?.code === 'SITE_REJECTED_ROW') {
        failure = await this.stage(db, snapshot, state, state.resolved, { stageAll: true });
      }
      // Refused while it was staged, before any column type saw it: name the row.
      if (failure?.code === 'SITE_REJECTED_ROW' && failure.key === undefined)
        failure = await this.nameStagedRow(db, snapshot, state.resolved, failure);
      if (failure) this.markFailed(state, failure);
      state.result.durationMs += performance.now() - started;
      const read = { phase: 'read', entity: name, rows: { remote: state.result.remoteRows } } as const;
      this.phaseDone(phase, failure ? { ...read, error: failure.code } : read);
    }
    await snapshot.close();
  }

  /**
   * Compares and stages one entity under a savepoint; returns the error that failed it. A lost
   * connection (either side) or a remote read left unfinished ends the run: there is no snapshot
   * left to read the other entities from, and the site keeps nothing of it.
   */
  private async stage(
    db: SiteDatabase,
    snapshot: RemoteSnapshot,
    state: EntityState,
    e: ResolvedEntity,
    options: { stageAll?: boolean } = {},
  ): Promise<MeterSyncError | undefined> {
    await db.client.query('SAVEPOINT stage');
    try {
      await this.compare(db, snapshot, state, e, options);
      await db.client.query('RELEASE SAVEPOINT stage');
      return undefined;
    } catch (error) {
      const failure = toMeterSyncError(error);
      if (failure.code === 'CONNECTION_LOST' || snapshot.broken) throw failure;
      await db.client.query('ROLLBACK TO SAVEPOINT stage');
      return failure;
    }
  }

  /**
   * The stage refused a row (a character the site's encoding lacks): read the slice again from the
   * snapshot and find the row, so the error names it and the site as the side that refused it.
   */
  private async nameStagedRow(
    db: SiteDatabase,
    snapshot: RemoteSnapshot,
    e: ResolvedEntity,
    failure: MeterSyncError,
  ): Promise<MeterSyncError> {
    const reason = failure.message.startsWith(`${e.meta.name}: `)
      ? failure.message.slice(e.meta.name.length + 2)
      : failure.message;
    let key: string | undefined;
    try {
      key = await snapshot.copyOut(remoteSql.copySlice(e.meta), e.meta.name, (rows) =>
        findRejectedLine(db.client, e, rows),
      );
    } catch (error) {
      const lost = toMeterSyncError(error);
      if (lost.code === 'CONNECTION_LOST' || snapshot.broken) throw lost;
    }
    return new MeterSyncError(
      failure.code,
      `${e.meta.name}: the site refused the row${key ? ` ${key}` : ''}: ${reason}`,
      key,
    );
  }

  /** Stages what differs between the remote slice and the site (compare-entity.ts). */
  private async compare(
    db: SiteDatabase,
    snapshot: RemoteSnapshot,
    state: EntityState,
    e: ResolvedEntity,
    { stageAll = false } = {},
  ): Promise<void> {
    const comparison = await compareEntity(
      {
        site: db,
        remote: snapshot,
        tenantId: this.options.tenantId,
        stageAll,
        loaded: (name) => this.states.get(name)?.loaded === true,
        metaOf: (name) => this.registry.get(name),
        skipSample: this.skipSample(),
        parents: (name) => {
          const parent = this.states.get(name);
          return { entity: this.parentLookup()(name), staged: parent !== undefined && this.active(parent) };
        },
      },
      e,
    );
    switch (comparison.mode) {
      case 'equal':
        state.settled = true;
        state.siteRows = comparison.rows;
        Object.assign(state.result, {
          remoteRows: comparison.rows + comparison.skipped,
          unchanged: comparison.rows,
          skipped: comparison.skipped,
        });
        this.noteSkips(state, comparison.skips);
        // Should the plan activate it, its remembered skips all still stand.
        state.remembered = { compared: { kind: 'none' }, kept: comparison.skipped };
        if (comparison.memo && !comparison.memo.remembered) state.memo = comparison.memo;
        return;
      case 'loaded':
        state.settled = true;
        state.loaded = true;
        Object.assign(state.result, {
          remoteRows: comparison.remoteRows,
          inserted: comparison.rows,
          skipped: comparison.remoteRows - comparison.rows,
        });
        this.noteSkips(state, comparison.skips);
        return;
      case 'staged':
        state.resolved = { ...e, region: comparison.region };
        state.knownEqual = comparison.knownEqual;
        state.siteRows = comparison.siteRows;
        state.remembered = comparison.remembered;
        state.result.remoteRows =
          comparison.staged + comparison.knownEqual + (comparison.remembered?.kept ?? 0);
        state.memo = comparison.memo;
    }
  }

  /**
   * Keeps the fingerprint of each table the run found or made equal to the remote (every remote row
   * on the site or skipped, nothing failed; only an entity with parents skips, and its table's
   * fingerprint is the remote's less its standing skips), for the next run to compare the remote's
   * with instead of scanning the table again (compare-entity.ts); then forgets the noted writes no
   * kept fingerprint needs.
   */
  private async keepFingerprints(db: SiteDatabase): Promise<void> {
    if (!(await db.keepsFingerprints())) return;
    for (const state of this.states.values()) {
      const { memo, resolved: e, result: r } = state;
      if (!memo || !e || r.status !== 'ok') continue;
      if (r.inserted + r.updated + r.unchanged + r.skipped !== r.remoteRows) continue;
      if ((e.meta.parents ?? []).length === 0) {
        if (r.skipped === 0) await db.keepFingerprint(e, memo);
        continue;
      }
      // The table holds the remote's rows but its skips, which stand as the parents now are: the
      // remote's fingerprint less theirs is the table's. Kept only when the skips are every row
      // the run skipped.
      const skips = await db.standingSkipFingerprints(e, memo.buckets, (name) => ({
        entity: this.parentLookup()(name),
        staged: false,
      }));
      const table = withoutSkips(unpackFingerprints(memo.packed), skips);
      if (table && rowsCounted(skips) === r.skipped)
        await db.keepFingerprint(e, { ...memo, packed: packFingerprints(table) });
    }
    await db.forgetWrites();
  }

  /** The skipped rows a result names, and a plan lists. */
  private noteSkips(state: EntityState, skips: readonly SkippedRow[]): void {
    if (skips.length === 0) return;
    Object.assign(state.result, skippedSample(skips));
    state.skips = [...skips];
  }

  /** The site tables children check their parents' rows in. */
  private parentLookup(): ParentLookup {
    return (name) => {
      const entity = this.states.get(name)?.resolved ?? this.outside.get(name);
      if (!entity) throw new MeterSyncError('INTERNAL_ERROR', `parent ${name} was not resolved`);
      return entity;
    };
  }

  private active(state: EntityState): boolean {
    return state.resolved !== undefined && !state.failed && !state.settled;
  }

  private role(name: string): PlanRole {
    const state = this.states.get(name);
    if (!state) return { kind: 'kept', why: 'outside', entity: this.outside.get(name) };
    if (state.failed || !state.resolved)
      return { kind: 'kept', why: 'failed', entity: state.resolved ?? this.outside.get(name) };
    if (state.settled) return { kind: 'settled', entity: state.resolved };
    return { kind: 'active', entity: state.resolved, siteRows: state.siteRows };
  }

  /**
   * Plans the run (plan-run.ts). An entity whose plan cannot be made fails, and the run is planned
   * again without it.
   */
  private async plan(db: SiteDatabase): Promise<void> {
    for (;;) {
      try {
        const plans = await planRun({
          site: db,
          registry: this.registry,
          order: this.order,
          role: (name) => this.role(name),
          activate: (name) => this.activate(db, this.states.get(name)!),
          staged: (name, rows) => {
            this.states.get(name)!.knownEqual -= rows;
          },
          checkDeadline: () => this.deadline.check(),
        });
        for (const state of this.states.values()) state.plan = plans.get(state.meta.name);
        return;
      } catch (error) {
        if (!(error instanceof EntityPlanError)) throw error;
        if (error.error.code === 'CONNECTION_LOST') throw error.error;
        this.markFailed(this.states.get(error.entity)!, error.error);
      }
    }
  }

  /**
   * A settled entity whose site rows reference parent rows the run removes is planned after all:
   * an empty stage and no compared region, every site row known equal until the plan stages some.
   */
  private async activate(db: SiteDatabase, state: EntityState): Promise<void> {
    const e = state.resolved!;
    await db.stage(e, Readable.from([]));
    const rows = state.result.unchanged;
    state.resolved = { ...e, region: { kind: 'none' } };
    state.settled = false;
    state.knownEqual = rows;
    state.siteRows = rows;
    state.skips = undefined;
    state.result = {
      ...emptyEntityResult(state.meta.name),
      remoteRows: state.result.remoteRows,
      durationMs: state.result.durationMs,
    };
  }

  private async applySteps(db: SiteDatabase): Promise<void> {
    const steps = planSteps(this.order);
    const parents = this.parentLookup();
    const parentsOf = (name: string) => (this.registry.get(name).parents ?? []).map((p) => p.entity);
    // Entities that failed while applying: a failure elsewhere may have caused theirs.
    const failedHere = new Set<string>();
    let restarts = 0;
    let outcomes: (StepOutcome | undefined)[] = [];
    await db.preferKeyProbes();
    await this.plan(db);
    await this.captureBefore(db);
    await db.client.query('SAVEPOINT apply');
    let i = 0;
    while (i < steps.length) {
      const step = steps[i]!;
      const state = this.states.get(step.entity)!;
      this.deadline.check();
      if (!this.active(state)) {
        i += 1;
        continue;
      }
      this.options.onProgress?.({ entity: step.entity, phase: step.kind });
      const phase = this.phaseStart();
      const started = performance.now();
      try {
        outcomes[i] = await this.runStep(db, step, state, parents);
        const { skippedRows: _rows, ...counts } = outcomes[i]!;
        this.phaseDone(phase, { phase: step.kind, entity: step.entity, rows: counts });
        i += 1;
      } catch (caught) {
        const error = toMeterSyncError(caught, step.entity);
        this.phaseDone(phase, { phase: step.kind, entity: step.entity, rows: {}, error: error.code });
        if (error.code === 'CONNECTION_LOST') throw error;
        this.markFailed(state, error);
        failedHere.add(step.entity);
        // The run starts its apply again as a run without this entity would. Entities that failed on
        // the old plan and whose rows it bore on (its descendants, its ancestors' other descendants:
        // a child's guard tripped by the parent's deletes) run again too; the bound ends a pair of
        // entities failing each other in turn, with both failed.
        restarts += 1;
        if (restarts <= this.order.length ** 2) {
          for (const name of relativesOf(step.entity, this.order, parentsOf)) {
            if (failedHere.delete(name)) this.reopen(this.states.get(name)!);
          }
        }
        await db.client.query('ROLLBACK TO SAVEPOINT apply');
        await this.plan(db);
        await this.captureBefore(db);
        await db.client.query('SAVEPOINT apply');
        outcomes = [];
        i = 0;
      } finally {
        state.result.durationMs += performance.now() - started;
      }
    }
    steps.forEach((step, index) => {
      const outcome = outcomes[index];
      const state = this.states.get(step.entity)!;
      if (!outcome || state.failed) return;
      const { skippedRows, ...counts } = outcome;
      Object.assign(state.result, counts);
      if (skippedRows && skippedRows.length > 0) {
        Object.assign(state.result, skippedSample(skippedRows));
        state.skips = skippedRows;
      }
    });
    for (const state of this.states.values()) {
      if (this.active(state)) state.result.unchanged += state.knownEqual;
    }
  }

  private async runStep(
    db: SiteDatabase,
    step: Step,
    state: EntityState,
    parents: ParentLookup,
  ): Promise<StepOutcome> {
    const e = state.resolved!;
    const plan = state.plan;
    if (!plan) throw new MeterSyncError('INTERNAL_ERROR', `${step.entity} was not planned`);
    const { counts } = plan;
    if (step.kind === 'delete') {
      // The guard weighs what the remote means to delete, pinned rows too: a remote that returns
      // nothing trips it whether or not rows outside the run hold some of the site's rows. Emptying
      // a table is guarded however small it is: a small site is still a site.
      if (!this.options.allowMassDelete && counts.intended > 0) {
        const siteRows = state.siteRows ?? (await db.countRows(e));
        const ratio = this.options.maxDeleteRatio ?? DEFAULT_MAX_DELETE_RATIO;
        const minRows = this.options.massDeleteMinRows ?? MASS_DELETE_MIN_ROWS;
        if (counts.intended >= siteRows || (siteRows >= minRows && counts.intended > ratio * siteRows))
          throw new MassDeleteGuardError(step.entity, counts.intended, siteRows, ratio);
      }
      const removed = counts.deletes > 0 ? await db.deleteGone(e, plan.tables) : 0;
      return { deleted: removed - counts.bounces };
    }
    const { total, applicable, skipped } = await db.countApplicable(e, parents);
    const sample = this.skipSample();
    const remembered = state.remembered;
    const kept = remembered?.kept ?? 0;
    let skippedRows = skipped !== undefined ? await db.sampleSkipped(e, parents, skipped, sample) : [];
    if (remembered && kept > 0) {
      // The parents are as the run leaves them now: a remembered skip stands if one is not on the site.
      const onSite = (name: string) => ({ entity: parents(name), staged: false });
      const standing = await db.sampleRemembered(e, onSite, remembered.compared, sample);
      skippedRows = firstByKey(e.meta.keyColumns, [...skippedRows, ...standing], sample);
    }
    if (counts.pinnedUnstaged > 0 && skippedRows.length < sample)
      skippedRows.push(...(await db.samplePinned(e, plan.tables, sample - skippedRows.length)));
    const { inserted, updated } = await this.upsert(db, e, skipped);
    if (remembered) await db.rememberSkips(e, remembered.compared, skipped);
    // Bounced rows were deleted and are inserted again: on the site they are updated or unchanged.
    // Pinned rows stay as they are: unchanged, and their deletes skipped.
    return {
      inserted: inserted - counts.bounces,
      updated: updated + counts.changedBounces,
      unchanged: applicable - inserted - updated + (counts.bounces - counts.changedBounces) + counts.pinned,
      skipped: total - applicable + counts.pinnedUnstaged + kept,
      skippedRows,
    };
  }

  /** How many skipped rows a step names. A plan lists one more than it shows, to know that it left some out. */
  private skipSample(): number {
    return this.options.changes ? this.options.changes.max + 1 : SKIPPED_KEY_SAMPLE;
  }

  /**
   * The upsert of a step, of the staged rows but those `skipped`. The server does not always say
   * which row it refused: then it is looked for.
   */
  private async upsert(
    db: SiteDatabase,
    e: ResolvedEntity,
    skipped: string | undefined,
  ): Promise<WriteCounts> {
    await db.client.query('SAVEPOINT upsert_step');
    try {
      const counts = await db.upsertApplicable(e, skipped);
      await db.client.query('RELEASE SAVEPOINT upsert_step');
      return counts;
    } catch (caught) {
      const error = toMeterSyncError(caught, e.meta.name);
      if (error.code !== 'SITE_REJECTED_ROW') throw error;
      await db.client.query('ROLLBACK TO SAVEPOINT upsert_step');
      const key = await findRejectedRow(db.client, e, applicableRows(e, skipped));
      throw key === undefined ? error : new MeterSyncError(error.code, error.message, key);
    }
  }

  /** A plan keeps the site rows the apply may change as they were, to list the changes after it. */
  private async captureBefore(db: SiteDatabase): Promise<void> {
    if (!this.options.changes) return;
    for (const state of this.states.values()) {
      if (this.active(state) && state.plan) await db.captureBefore(state.resolved!, state.plan.tables);
    }
  }

  /**
   * A plan's row-level changes, read off the site as the apply left it (the transaction then rolls
   * back): what differs from the rows captured before it, then the skips. `max` per entity.
   */
  private async listChanges(db: SiteDatabase, max: number): Promise<void> {
    for (const state of this.states.values()) {
      const result = state.result;
      let changes: RowChange[] = [];
      if (!state.failed && state.resolved) {
        if (state.loaded) changes = await db.listLoaded(state.resolved, max + 1);
        else if (this.active(state) && state.plan)
          changes = await db.listChanges(state.resolved, state.plan.tables, max + 1);
      }
      const skips = (state.skips ?? []).map(
        (row): RowChange => ({ op: 'skip', key: row.keyValues, reason: row.reason }),
      );
      const all = [...changes.slice(0, max), ...skips].slice(0, max);
      const total = result.inserted + result.updated + result.deleted + result.skipped;
      result.changes = all;
      result.changesTruncated = total > all.length;
    }
  }

  /** Forgets a failure met while applying a plan that no longer holds: the entity runs again. */
  private reopen(state: EntityState): void {
    state.failed = false;
    const { remoteRows, durationMs } = state.result;
    state.result = { ...emptyEntityResult(state.meta.name), remoteRows, durationMs };
  }

  private markFailed(state: EntityState, failure: MeterSyncError): void {
    // A statement cancelled at the deadline failed because of it, whatever the server called it.
    const error = this.deadline.expired ? this.deadline.error() : failure;
    state.failed = true;
    const { remoteRows, durationMs } = state.result;
    state.result = {
      ...emptyEntityResult(state.meta.name, 'failed'),
      remoteRows,
      durationMs,
      error: report(error),
    };
  }

  private results(): EntityResult[] {
    return this.order.map((name) => {
      const result = this.states.get(name)!.result;
      return { ...result, durationMs: Math.round(result.durationMs) };
    });
  }

  /**
   * The whole run failed: nothing was committed. Once the entities were being worked on, every
   * entity reports the run's error; before (a connection, the schema, the tenant, a site that is
   * the remote), none ran.
   */
  private failRun(error: MeterSyncError): SyncResult {
    // A site that is the remote is refused as a whole, once the remote's session says so.
    if (!this.entitiesStarted || error instanceof SiteIsRemoteError)
      return this.finish('failed', [], report(error));
    for (const state of this.states.values()) {
      if (!state.failed) this.markFailed(state, error);
    }
    return this.finish('failed', this.results(), report(error));
  }

  private finish(status: SyncResult['status'], entities: EntityResult[], error?: ErrorReport): SyncResult {
    return {
      ok: status === 'ok',
      status,
      ...(this.options.siteId !== undefined ? { siteId: this.options.siteId } : {}),
      tenantId: this.options.tenantId,
      dryRun: this.dryRun,
      startedAt: this.startedAt.toISOString(),
      durationMs: Math.round(performance.now() - this.t0),
      ...(this.rebindFrom !== undefined && status !== 'failed'
        ? { tenantChange: { fromTenantId: this.rebindFrom, toTenantId: this.options.tenantId } }
        : {}),
      entities,
      ...(error ? { error } : {}),
    };
  }
}

/** The first `limit` rows in the byte order of their keys' text, the order every skip sample is in. */
function firstByKey(keys: readonly string[], rows: readonly SkippedRow[], limit: number): SkippedRow[] {
  const bytes = (row: SkippedRow, key: string) => Buffer.from(row.keyValues[key] ?? '');
  return [...rows]
    .sort((a, b) => {
      for (const key of keys) {
        const order = Buffer.compare(bytes(a, key), bytes(b, key));
        if (order !== 0) return order;
      }
      return 0;
    })
    .slice(0, limit);
}

/** Syncs one site; never throws for what goes wrong in the databases: the result says it. */
export async function performSync(options: SyncOptions): Promise<SyncResult> {
  return new SyncRun(options).run();
}

/** Syncs a single entity (seed tasks 6-7): a run whose only entity is this one. */
export async function syncEntity(
  options: Omit<SyncOptions, 'entities'>,
  entity: string,
): Promise<EntityResult> {
  const result = await performSync({ ...options, entities: [entity] });
  return (
    result.entities[0] ?? {
      ...emptyEntityResult(entity, 'failed'),
      ...(result.error ? { error: result.error } : {}),
    }
  );
}
