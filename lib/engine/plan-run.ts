/**
 * planRun: decides, before any apply step runs, what each entity's delete step removes and which of
 * its staged rows its upsert step will skip, from small tables of the keys that change (DESIGN §3.5,
 * §3.12, §3.13). What it costs follows the change: a parent row the run removes costs its children
 * on the site (found through their foreign-key index), a parent row it adds costs the staged
 * children that reference it, and a parent row it only updates costs no child at all.
 *
 * 1. Parent-first, for each entity the run changes: stage the site rows outside the compared region
 *    that reference parent rows the run removes (they were proved equal to the remote); find the
 *    staged rows a parent will be missing for (`skip`); the site rows to delete (`gone`): gone from
 *    the remote, skipped, or children of removed parent rows, some of them only to be inserted
 *    again (`bounce`) because their parent row is; and the keys the upsert will add (`added`).
 * 2. Child-first, pin the rows that must stay: rows the run does not change (an entity outside the
 *    run, or one that failed) still reference them, or rows pinned themselves do. A pinned delete
 *    is skipped and counted, never refused by the site's foreign keys.
 * 3. While step 2 pinned something new, plan again: a parent row that stays keeps its children.
 */
import type { GoneCounts, SiteDatabase } from '../db/site-database';
import type { GoneParts, PlannedParent, PlanTables, ResolvedEntity } from '../db/sync-sql';
import type { EntityMetadata, EntityRegistry, ParentReference } from '../entities';
import { MeterSyncError, toMeterSyncError } from '../errors';

/** How the run treats an entity of the registry while it is planned. */
export type PlanRole =
  /** The run compares and writes it; `siteRows` is what the comparison counted, when it did. */
  | { readonly kind: 'active'; readonly entity: ResolvedEntity; readonly siteRows?: number }
  /** Proved equal to the remote (or loaded into an empty table): nothing to apply unless a parent removes rows. */
  | { readonly kind: 'settled'; readonly entity: ResolvedEntity }
  /** Keeps what the site has: outside the run, or failed. `entity` is its site table, when it has one. */
  | { readonly kind: 'kept'; readonly why: 'outside' | 'failed'; readonly entity?: ResolvedEntity };

export interface RunPlanContext {
  readonly site: SiteDatabase;
  readonly registry: EntityRegistry;
  /** The entities of the run, parent first. */
  readonly order: readonly string[];
  role(name: string): PlanRole;
  /** A settled entity whose rows reference parent rows the run removes: to be planned with an empty stage. */
  activate(name: string): Promise<void>;
  /** `rows` site rows proved equal were copied into the entity's stage: no longer counted as known equal. */
  staged(name: string, rows: number): void;
  /** Throws past the run's deadline. */
  checkDeadline(): void;
}

export interface EntityPlan {
  readonly tables: PlanTables;
  readonly counts: GoneCounts;
  /** Rows of `added`. */
  readonly added: number;
}

/** Planning an entity failed; the run fails that entity and plans again without it. */
export class EntityPlanError extends Error {
  constructor(
    readonly entity: string,
    readonly error: MeterSyncError,
  ) {
    super(error.message);
    this.name = 'EntityPlanError';
  }
}

const NO_GONE: GoneCounts = {
  intended: 0,
  deletes: 0,
  dead: 0,
  bounces: 0,
  changedBounces: 0,
  pinned: 0,
  pinnedUnstaged: 0,
  pinnedAll: 0,
};

function keptReason(child: string, why: 'outside' | 'failed'): string {
  return why === 'outside'
    ? `referenced by ${child} rows outside this run`
    : `referenced by ${child} rows kept because ${child} failed`;
}

class RunPlanner {
  private readonly plans = new Map<string, EntityPlan>();
  /** Pinned keys found so far, per entity (its `pins` table exists once the entity has any). */
  private readonly pins = new Map<string, number>();
  constructor(private readonly ctx: RunPlanContext) {}

  async plan(): Promise<Map<string, EntityPlan>> {
    // Each iteration pins at least one more row, so this ends; the bound is only a guard.
    for (let iteration = 0; iteration < 1_000; iteration++) {
      for (const name of this.ctx.order) await this.planEntity(name);
      if (!(await this.pinReferencedRows())) return this.plans;
    }
    throw new MeterSyncError('INTERNAL_ERROR', 'the plan of the run did not settle');
  }

  private meta(name: string): EntityMetadata {
    return this.ctx.registry.get(name);
  }

  /** Entities of the run, not failed, that reference `name`. */
  private childrenInRun(name: string): string[] {
    return this.ctx.order.filter(
      (child) =>
        (this.meta(child).parents ?? []).some((p) => p.entity === name) &&
        this.ctx.role(child).kind !== 'kept',
    );
  }

  private plannedParent(reference: ParentReference): PlannedParent | undefined {
    const role = this.ctx.role(reference.entity);
    const plan = this.plans.get(reference.entity);
    if (role.kind === 'active' && plan)
      return {
        kind: 'planned',
        entity: role.entity,
        tables: plan.tables,
        adds: plan.added > 0,
        deletes: plan.counts.dead > 0,
      };
    return undefined;
  }

  private async planEntity(name: string): Promise<void> {
    const meta = this.meta(name);
    const references = meta.parents ?? [];
    // Parents whose removed rows (for good, or to insert them again) this entity's rows follow.
    const removing = references.filter((r) => (this.plans.get(r.entity)?.counts.deletes ?? 0) > 0);
    let role = this.ctx.role(name);
    if (role.kind === 'settled' && removing.length > 0) {
      await this.ctx.activate(name);
      role = this.ctx.role(name);
    }
    if (role.kind !== 'active') return;
    this.ctx.checkDeadline();
    const e = role.entity;
    const { site } = this.ctx;
    const tables = site.planTables(e);
    let staged = 0;
    await site.client.query('SAVEPOINT plan_entity');
    try {
      // What an earlier iteration or an earlier plan of the run left.
      await site.dropPlan(tables, { pins: false });
      const region = e.region ?? { kind: 'all' };
      const cascades: GoneParts['cascades'][number][] = [];
      for (const reference of removing) {
        const parent = this.plannedParent(reference)!;
        if (parent.kind !== 'planned') continue;
        cascades.push({ reference, tables: parent.tables });
        if (region.kind !== 'all') staged += await site.stageChildrenOfGone(e, reference, parent.tables);
      }
      const hasRows = role.siteRows !== 0;
      const children = this.childrenInRun(name).length > 0;
      const withSkip = references.length > 0 && (hasRows || children);
      if (withSkip) {
        const parents = references.map((reference) => ({
          reference,
          parent: this.plannedParent(reference) ?? {
            kind: 'site' as const,
            entity: this.siteParent(reference),
          },
        }));
        await site.createSkip(e, tables, parents);
      }
      const pinned = (this.pins.get(name) ?? 0) > 0;
      await site.createGone(
        e,
        tables,
        { absent: hasRows && region.kind !== 'none', skipped: withSkip && hasRows, cascades },
        pinned,
      );
      let counts = hasRows || cascades.length > 0 ? await site.goneCounts(tables) : NO_GONE;
      if (counts.bounces > 0) {
        await site.markChangedBounces(e, tables);
        counts = await site.goneCounts(tables);
      }
      const added = children ? await site.createAdded(e, tables, withSkip) : 0;
      await site.client.query('RELEASE SAVEPOINT plan_entity');
      this.plans.set(name, { tables, counts, added });
    } catch (error) {
      await site.client.query('ROLLBACK TO SAVEPOINT plan_entity').catch(() => {});
      throw new EntityPlanError(name, toMeterSyncError(error, name));
    }
    if (staged > 0) this.ctx.staged(name, staged);
  }

  /** A parent the run leaves as the site has it: its site table, as the run resolved it. */
  private siteParent(reference: ParentReference): ResolvedEntity {
    const role = this.ctx.role(reference.entity);
    if (role.entity) return role.entity;
    throw new MeterSyncError('INTERNAL_ERROR', `parent ${reference.entity} was not resolved`);
  }

  /**
   * Child-first: pins the rows of each entity's `gone` that rows staying on the site reference.
   * Returns whether anything new was pinned.
   */
  private async pinReferencedRows(): Promise<boolean> {
    let pinnedAny = false;
    for (const name of [...this.ctx.order].reverse()) {
      const plan = this.plans.get(name);
      const role = this.ctx.role(name);
      if (!plan || role.kind !== 'active' || plan.counts.deletes === 0) continue;
      let pinned = 0;
      for (const child of this.ctx.registry.entities) {
        for (const reference of (child.parents ?? []).filter((p) => p.entity === name)) {
          const childRole = this.ctx.role(child.name);
          const childPlan = this.plans.get(child.name);
          let reason: string;
          let childTable: ResolvedEntity;
          let childTables: PlanTables | undefined;
          if (childRole.kind === 'kept' && childRole.entity) {
            reason = keptReason(child.name, childRole.why);
            childTable = childRole.entity;
          } else if (childRole.kind === 'active' && childPlan && childPlan.counts.pinnedAll > 0) {
            reason = `referenced by ${child.name} rows this run keeps`;
            childTable = childRole.entity;
            childTables = childPlan.tables;
          } else continue;
          if (!this.pins.has(name)) {
            await this.ctx.site.createPins(role.entity, plan.tables);
            this.pins.set(name, 0);
          }
          const found = await this.ctx.site.pinReferenced(
            role.entity,
            plan.tables,
            childTable,
            reference,
            reason,
            childTables,
          );
          pinned += found;
        }
      }
      if (pinned > 0) {
        pinnedAny = true;
        this.pins.set(name, (this.pins.get(name) ?? 0) + pinned);
        // Its parents, next in this pass, look at what it pins now.
        this.plans.set(name, { ...plan, counts: await this.ctx.site.goneCounts(plan.tables) });
      }
    }
    return pinnedAny;
  }
}

/** Plans every entity the run changes (see the file's comment); a new call plans afresh. */
export function planRun(ctx: RunPlanContext): Promise<Map<string, EntityPlan>> {
  return new RunPlanner(ctx).plan();
}
