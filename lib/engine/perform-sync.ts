/**
 * performSync: makes one site database equal to its tenant's slice of the remote, for every
 * entity of the run, in one site transaction (DESIGN §3). It knows nothing of AWS.
 *
 * 1. Lock the site (a second concurrent run returns `locked` and touches nothing).
 * 2. Read every entity from one read-only remote snapshot into temporary stage tables.
 * 3. Apply: deletes child-first, upserts parent-first, a savepoint before each step. An entity
 *    that fails is rolled back alone: back to its first step, then the steps after it run again
 *    as a run without it would, and its children see the parent rows the site has.
 * 4. Record the run in `sync_run` and commit, or roll back everything for a dry run.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from 'pg';
import { type ConnectOptions, connect, type DatabaseTarget } from '../db/connect';
import { RemoteSnapshot } from '../db/remote-database';
import { SiteDatabase } from '../db/site-database';
import type { ParentLookup, ResolvedEntity } from '../db/sync-sql';
import { defaultRegistry, type EntityMetadata, type EntityRegistry } from '../entities';
import { MassDeleteGuardError, MeterSyncError, SiteSchemaError, toMeterSyncError } from '../errors';
import { firstStepIndex, planSteps, type Step } from './plan-steps';
import { recordRun } from './record-run';
import {
  type EntityResult,
  type ErrorReport,
  emptyEntityResult,
  runStatus,
  type SyncResult,
} from './sync-result';

export const DEFAULT_MAX_DELETE_RATIO = 0.5;
/** Below this many site rows an entity is too small for a ratio to mean anything. */
export const MASS_DELETE_MIN_ROWS = 20;
const SKIPPED_KEY_SAMPLE = 5;

export interface ProgressEvent {
  entity: string;
  phase: 'read' | 'delete' | 'upsert';
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
  registry?: EntityRegistry;
  connectOptions?: ConnectOptions;
  onProgress?: (event: ProgressEvent) => void;
}

interface EntityState {
  readonly meta: EntityMetadata;
  resolved?: ResolvedEntity;
  result: EntityResult;
  failed: boolean;
}

interface StepOutcome {
  deleted?: number;
  inserted?: number;
  updated?: number;
  unchanged?: number;
  skipped?: number;
  skippedKeys?: string[];
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
}

class SyncRun {
  private readonly registry: EntityRegistry;
  private readonly states = new Map<string, EntityState>();
  /** Entities of this run in parent-first order. */
  private readonly order: string[];
  private readonly startedAt = new Date();
  private readonly t0 = performance.now();

  constructor(private readonly options: SyncOptions) {
    checkOptions(options);
    this.registry = options.registry ?? defaultRegistry;
    this.order = this.registry.select(options.entities).map((meta) => meta.name);
    for (const name of this.order) {
      const meta = this.registry.get(name);
      this.states.set(name, { meta, result: emptyEntityResult(name), failed: false });
    }
  }

  async run(): Promise<SyncResult> {
    let site: Client | undefined;
    let remote: Client | undefined;
    try {
      site = await connect(this.options.site, 'site', this.options.connectOptions);
      const db = new SiteDatabase(site);
      await site.query('BEGIN');
      if (!(await db.tryLock())) {
        await site.query('ROLLBACK');
        return this.finish('locked', [], {
          code: 'SITE_LOCKED',
          message: 'another meter-sync run holds this site; nothing was done',
        });
      }
      if (!(await db.isMigrated())) {
        throw new SiteSchemaError(
          'SITE_NOT_MIGRATED',
          'the site database has no meter-sync schema: run `meter-sync migrate` first',
        );
      }
      const parentsOutsideRun = await this.resolveEntities(db);
      remote = await connect(this.options.remote, 'remote', this.options.connectOptions);
      await this.stageFromRemote(db, remote);
      await remote.end();
      remote = undefined;
      await this.applySteps(db, parentsOutsideRun);
      const result = this.finish(runStatus(this.results()), this.results());
      if (this.options.dryRun) {
        await site.query('ROLLBACK');
      } else {
        await recordRun(site, result);
        await site.query('COMMIT');
      }
      return this.finish(result.status, result.entities);
    } catch (error) {
      await site?.query('ROLLBACK').catch(() => {});
      return this.failRun(toMeterSyncError(error));
    } finally {
      await remote?.end().catch(() => {});
      await site?.end().catch(() => {});
    }
  }

  /** Binds each entity of the run, and each parent outside it, to the site's catalog. */
  private async resolveEntities(db: SiteDatabase): Promise<Map<string, ResolvedEntity>> {
    for (const state of this.states.values()) {
      try {
        state.resolved = await db.resolve(state.meta);
      } catch (error) {
        this.markFailed(state, toMeterSyncError(error));
      }
    }
    const outside = new Map<string, ResolvedEntity>();
    for (const state of this.states.values()) {
      for (const parent of state.meta.parents ?? []) {
        if (this.states.has(parent.entity) || outside.has(parent.entity)) continue;
        try {
          outside.set(parent.entity, await db.resolve(this.registry.get(parent.entity)));
        } catch (error) {
          this.markFailed(state, toMeterSyncError(error));
        }
      }
    }
    return outside;
  }

  private async stageFromRemote(db: SiteDatabase, remote: Client): Promise<void> {
    const snapshot = await RemoteSnapshot.open(remote, this.options.tenantId);
    for (const name of this.order) {
      const state = this.states.get(name)!;
      if (state.failed || !state.resolved) continue;
      if (snapshot.broken) {
        this.markFailed(
          state,
          new MeterSyncError(
            'REMOTE_READ_FAILED',
            `${name}: not read, an earlier remote read broke the connection`,
          ),
        );
        continue;
      }
      this.options.onProgress?.({ entity: name, phase: 'read' });
      const started = performance.now();
      await db.client.query('SAVEPOINT stage');
      try {
        const resolved = state.resolved;
        state.result.remoteRows = await snapshot.readSlice(state.meta, (rows) => db.stage(resolved, rows));
        await db.client.query('RELEASE SAVEPOINT stage');
      } catch (error) {
        await db.client.query('ROLLBACK TO SAVEPOINT stage');
        this.markFailed(state, toMeterSyncError(error));
      }
      state.result.durationMs += performance.now() - started;
    }
    await snapshot.close();
  }

  private parentLookup(outside: ReadonlyMap<string, ResolvedEntity>): ParentLookup {
    return (name) => {
      const state = this.states.get(name);
      if (state?.resolved && !state.failed) return { kind: 'planned', entity: state.resolved };
      const entity = state?.resolved ?? outside.get(name);
      if (!entity) throw new MeterSyncError('INTERNAL_ERROR', `parent ${name} was not resolved`);
      return { kind: 'site', entity };
    };
  }

  private async applySteps(db: SiteDatabase, outside: ReadonlyMap<string, ResolvedEntity>): Promise<void> {
    const steps = planSteps(this.order);
    const first = firstStepIndex(steps);
    const parents = this.parentLookup(outside);
    let outcomes: (StepOutcome | undefined)[] = [];
    let i = 0;
    while (i < steps.length) {
      const step = steps[i]!;
      const state = this.states.get(step.entity)!;
      if (state.failed) {
        i += 1;
        continue;
      }
      this.options.onProgress?.({ entity: step.entity, phase: step.kind });
      const started = performance.now();
      await db.client.query(`SAVEPOINT step_${i}`);
      try {
        outcomes[i] = await this.runStep(db, step, state.resolved!, parents);
        i += 1;
      } catch (caught) {
        const error = toMeterSyncError(caught, step.entity);
        if (error.code === 'CONNECTION_LOST') throw error;
        // Undo everything since this entity's first step; the steps after it run again without it.
        const restart = first.get(step.entity)!;
        await db.client.query(`ROLLBACK TO SAVEPOINT step_${restart}`);
        this.markFailed(state, error);
        outcomes = outcomes.slice(0, restart);
        i = restart;
      } finally {
        state.result.durationMs += performance.now() - started;
      }
    }
    steps.forEach((step, index) => {
      const outcome = outcomes[index];
      const state = this.states.get(step.entity)!;
      if (!outcome || state.failed) return;
      Object.assign(state.result, { ...outcome, skippedKeys: undefined });
      if (outcome.skippedKeys && outcome.skippedKeys.length > 0)
        state.result.skippedKeys = outcome.skippedKeys;
    });
  }

  private async runStep(
    db: SiteDatabase,
    step: Step,
    e: ResolvedEntity,
    parents: ParentLookup,
  ): Promise<StepOutcome> {
    if (step.kind === 'delete') {
      const siteRows = await db.countRows(e);
      const deleted = await db.deleteNotApplicable(e, parents);
      const ratio = this.options.maxDeleteRatio ?? DEFAULT_MAX_DELETE_RATIO;
      if (!this.options.allowMassDelete && siteRows >= MASS_DELETE_MIN_ROWS && deleted > ratio * siteRows) {
        throw new MassDeleteGuardError(step.entity, deleted, siteRows, ratio);
      }
      return { deleted };
    }
    const { total, applicable } = await db.countApplicable(e, parents);
    const skippedKeys = total > applicable ? await db.sampleSkipped(e, parents, SKIPPED_KEY_SAMPLE) : [];
    const { inserted, updated } = await db.upsertApplicable(e, parents);
    return {
      inserted,
      updated,
      unchanged: applicable - inserted - updated,
      skipped: total - applicable,
      skippedKeys,
    };
  }

  private markFailed(state: EntityState, error: MeterSyncError): void {
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

  /** The whole run failed: nothing was committed, so every entity reports the run's error. */
  private failRun(error: MeterSyncError): SyncResult {
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
      dryRun: this.options.dryRun === true,
      startedAt: this.startedAt.toISOString(),
      durationMs: Math.round(performance.now() - this.t0),
      entities,
      ...(error ? { error } : {}),
    };
  }
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
