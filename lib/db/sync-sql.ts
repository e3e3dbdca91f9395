/**
 * All SQL the engine runs against the site and the remote, generated from entity metadata in
 * this one module. Identifiers are always quoted; values are always parameters (the tenant id
 * reaches COPY through a transaction-local setting, since COPY takes no parameters).
 */
import { escapeIdentifier as q } from 'pg';
import type { EntityMetadata, ParentReference } from '../entities';
import { replaceParameter } from '../entities/sql-code';
import { arrayLiteral } from './array-literal';
import { WRITE_NOTE_TRIGGER } from './site-schema-sql';

/** An entity bound to one site database: its quoted table and each column's base type there. */
export interface ResolvedEntity {
  readonly meta: EntityMetadata;
  /** Quoted table name. */
  readonly table: string;
  /** Column → site base type (`format_type(atttypid, NULL)`): typmods are left to assignment, so an over-long value fails instead of being cut. */
  readonly types: Readonly<Record<string, string>>;
  /** Quoted temporary table holding this run's remote rows as text, when the entity is in the run. */
  readonly stage: string;
  /** The rows this run compares; outside it, site and remote were proved equal. All when absent. */
  readonly region?: Region;
}

/**
 * A parent as a child's statements see it: its site table. The upsert steps run parent-first, after
 * every delete, so when a child's step checks its parents, the parent tables already hold what the
 * run leaves there (DESIGN §3.5).
 */
export type ParentLookup = (name: string) => ResolvedEntity;

/** A parent as a child's comparison sees it: its site table, and whether the run staged rows of it (its upsert may bring them). */
export type ParentState = (name: string) => { readonly entity: ResolvedEntity; readonly staged: boolean };

export const TENANT_SETTING = 'meter_sync.tenant_id';
// A sub-select, so that the server reads the setting once per statement instead of once per row.
const TENANT_FROM_SETTING = `(SELECT current_setting('${TENANT_SETTING}')::integer)`;

function list(columns: readonly string[], alias?: string): string {
  return columns.map((c) => (alias ? `${alias}.${q(c)}` : q(c))).join(', ');
}

function nonKeyColumns(meta: EntityMetadata): string[] {
  return meta.columns.filter((c) => !meta.keyColumns.includes(c));
}

/** `t.k = s.k::type` for every key column: `s` holds text, `t` is the typed site table. */
function keyMatch(e: ResolvedEntity, t: string, s: string): string {
  return e.meta.keyColumns.map((k) => `${t}.${q(k)} = ${s}.${q(k)}::${e.types[k]}`).join(' AND ');
}

/** `a.k = b.k` for every key column, both sides typed (the site table, a plan table). */
function typedKeyMatch(e: ResolvedEntity, a: string, b: string): string {
  return e.meta.keyColumns.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');
}

/** The staged key columns of `s`, cast to the site's types and named as the key. */
function typedStageKeys(e: ResolvedEntity, s: string): string {
  return e.meta.keyColumns.map((k) => `${s}.${q(k)}::${e.types[k]} AS ${q(k)}`).join(', ');
}

/** `p.key = c.column` for each column pair of a parent reference; `cast` casts the child side (staged text). */
function referenceMatch(
  reference: ParentReference,
  parent: ResolvedEntity,
  p: string,
  c: string,
  cast: boolean,
): string {
  return Object.entries(reference.columns)
    .map(([child, key]) => `${p}.${q(key)} = ${c}.${q(child)}${cast ? `::${parent.types[key]}` : ''}`)
    .join(' AND ');
}

// ---- remote ---------------------------------------------------------------------------------

/** The tenant's slice of an entity on the remote; `tenant` is the SQL that yields the tenant id. */
function remoteSlice(meta: EntityMetadata, tenant: string): string {
  if (meta.remoteQuery !== undefined) {
    // Only the parameter in the query's code: a '$1' inside a literal or a comment stays as it is.
    const query = replaceParameter(meta.remoteQuery, '$1', tenant);
    return `SELECT ${list(meta.columns, 'r')} FROM (${query}) AS r`;
  }
  // The registry refuses an entity with neither a tenant column nor a query.
  return `SELECT ${list(meta.columns)} FROM ${q(meta.table)} WHERE ${q(meta.tenantColumn!)} = ${tenant}`;
}

/** The column a versioned slice (`versionedSlice`) gives each row's xmin in. */
const VERSION_COLUMN = 'meter_sync_xmin';
/** Horizons further back than this many transactions are not counted from: xids are 32 bits on the page. */
const MAX_HORIZON_AGE = 2 ** 30;

/**
 * Whether the remote's slice of an entity is its table's rows of the tenant: then each row's xmin
 * tells whether it was written since an earlier snapshot (`remoteBucketsSince`). A query's rows
 * carry no xmin, and an entity with parents keeps a fingerprint other than the remote's.
 */
export const remoteVersioned = (meta: EntityMetadata): boolean =>
  meta.remoteQuery === undefined && meta.tenantColumn !== undefined && (meta.parents ?? []).length === 0;

/** The name of a `remoteVersioned` entity's table, as its horizon (`remoteHorizon`) looks it up. */
export const remoteTableName = (meta: EntityMetadata): string => q(meta.table);

/** `remoteSlice` of a `remoteVersioned` entity, with each row's xmin. */
function versionedSlice(meta: EntityMetadata, tenant: string): string {
  return `SELECT ${list(meta.columns)}, xmin AS ${q(VERSION_COLUMN)} FROM ${q(meta.table)} WHERE ${q(meta.tenantColumn!)} = ${tenant}`;
}

/**
 * What a later run counts new rows from: the server (its start, so a restart, a restored backup or
 * another server ends it), the database and the table (`table` its name), and this snapshot. NULL
 * unless the name is a table's, plain or partitioned: a view's or a foreign table's rows carry no xmin.
 */
const remoteHorizon = (table: string) =>
  `(SELECT extract(epoch FROM pg_postmaster_start_time())::text || '/' || d.oid || '/' || c.oid
     FROM pg_database AS d, pg_class AS c
     WHERE d.datname = current_database() AND c.oid = to_regclass(${table}) AND c.relkind IN ('r', 'p'))
   || '@' || pg_current_snapshot()::text`;

/** The entities' metadata by name: parents' slices are part of a child's first load. */
export type MetadataLookup = (name: string) => EntityMetadata;

/** `p.key = c.column` for each column pair of a parent reference, both sides as the remote has them. */
function remoteReferenceMatch(reference: ParentReference, p: string, c: string): string {
  return Object.entries(reference.columns)
    .map(([child, key]) => `${p}.${q(key)} = ${c}.${q(child)}`)
    .join(' AND ');
}

/**
 * For a row `c<depth>` of a slice: each parent is in its own loadable slice. Semi-joins the remote
 * hashes; aliases carry the depth, so that a grandparent's condition never names a child's row.
 */
function parentsInSlices(
  meta: EntityMetadata,
  metaOf: MetadataLookup,
  tenant: string,
  depth: number,
): string {
  return (meta.parents ?? [])
    .map((reference) => {
      const parent = loadableSlice(metaOf(reference.entity), metaOf, tenant, depth + 1);
      return `EXISTS (SELECT 1 FROM (${parent}) AS p${depth} WHERE ${remoteReferenceMatch(reference, `p${depth}`, `c${depth}`)})`;
    })
    .join(' AND ');
}

/**
 * The slice rows a first load of the entity and its parents keeps: those whose parents are all in
 * what the first load of each parent keeps, read from the same snapshot (DESIGN §3.5).
 */
function loadableSlice(meta: EntityMetadata, metaOf: MetadataLookup, tenant: string, depth = 0): string {
  const slice = remoteSlice(meta, tenant);
  if ((meta.parents ?? []).length === 0) return slice;
  return `SELECT * FROM (${slice}) AS c${depth} WHERE ${parentsInSlices(meta, metaOf, tenant, depth)}`;
}

/** Key columns and the columns that reference parents, each once, in that order. */
export function keyAndReferenceColumns(meta: EntityMetadata): string[] {
  const references = (meta.parents ?? []).flatMap((p) => Object.keys(p.columns));
  return [...new Set([...meta.keyColumns, ...references])];
}

/** Orders text by its bytes, whatever the database's collation: the same order on every server. */
const byBytes = (columns: readonly string[], alias: string) =>
  columns.map((c) => `${alias}.${q(c)} COLLATE "C"`).join(', ');

export const remoteSql = {
  beginSnapshot: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  setTenant: `SELECT set_config('${TENANT_SETTING}', $1, true)`,
  /** Streams the slice in COPY text format: the server's own text for every value. */
  copySlice: (meta: EntityMetadata) => `COPY (${remoteSlice(meta, TENANT_FROM_SETTING)}) TO STDOUT`,
  /**
   * A first load of an entity whose parents were all first loaded in the run: the slice rows whose
   * parents that load kept, in COPY text format. The others are skipped; `sampleUnloadable` names some.
   */
  copyLoadable: (meta: EntityMetadata, metaOf: MetadataLookup) =>
    `COPY (${loadableSlice(meta, metaOf, TENANT_FROM_SETTING)}) TO STDOUT`,
  /**
   * The slice rows that a first load skips: how many (`skipped`, on each row), and the first `$2`
   * of them in the byte order of their keys' text, with key and reference columns as text, for each
   * parent reference (`m0`, `m1`, …) whether its parent is missing, and the row's hash (`h`, as the
   * fingerprints compute it) for the site to remember. `$1` is the tenant id. One scan of the slice.
   */
  unloadable: (e: ResolvedEntity, metaOf: MetadataLookup) => {
    const { meta } = e;
    const tenant = '$1::integer';
    // Each parent's loadable slice joined once: under NOT or OR an EXISTS stays a subplan, which
    // the planner may run once per row (two index probes for each of 100,000 associations: 310-370
    // ms, against 45-60 for the joins). No DISTINCT, which keeps the planner from joining the
    // parent's table itself: the parent was just loaded from these rows into a table keyed by what
    // the reference names, so no key repeats. A NULL reference finds no parent, as with EXISTS.
    const parents = (meta.parents ?? []).map((reference, i) => {
      const parent = loadableSlice(metaOf(reference.entity), metaOf, tenant, 1);
      const keys = Object.values(reference.columns);
      return {
        join: `LEFT JOIN (SELECT ${keys.map((key) => `p.${q(key)}`).join(', ')} FROM (${parent}) AS p) AS p${i}
              ON ${remoteReferenceMatch(reference, `p${i}`, 'c0')}`,
        missing: `p${i}.${q(keys[0]!)} IS NULL`,
      };
    });
    const columns = keyAndReferenceColumns(meta);
    return `SELECT ${columns.map((c) => `x.${q(c)}::text AS ${q(c)}`).join(', ')}${parents.map((_, i) => `, x.m${i}`).join('')}, x.h, x.skipped
      FROM (SELECT c0.*, ${parents.map((p, i) => `${p.missing} AS m${i}, `).join('')}${rowHash(e, 'c0')} AS h, count(*) OVER () AS skipped
            FROM (${remoteSlice(meta, tenant)}) AS c0
            ${parents.map((p) => p.join).join('\n            ')}
            WHERE ${parents.map((p) => p.missing).join(' OR ')}
            ORDER BY ${meta.keyColumns.map((k) => `c0.${q(k)}::text COLLATE "C"`).join(', ')} LIMIT $2) AS x
      ORDER BY ${meta.keyColumns.map((k) => `x.${q(k)}::text COLLATE "C"`).join(', ')}`;
  },
  /** The slice in no order (to count or probe it); `$1` is the tenant id. */
  slice: (meta: EntityMetadata) => remoteSlice(meta, '$1::integer'),
  /** The slice as rows, in key order; `$1` is the tenant id. */
  selectSlice: (meta: EntityMetadata) =>
    `SELECT * FROM (${remoteSlice(meta, '$1::integer')}) AS slice ORDER BY ${list(meta.keyColumns)}`,
};

// ---- site: catalog, lock, staging -------------------------------------------------------------

export const siteSql = {
  /** Transaction-scoped, so a crashed run can never leave a site locked. */
  tryLock: 'SELECT pg_try_advisory_xact_lock($1::bigint) AS locked',
  columnTypes: `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type
    FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
  tableExists: 'SELECT to_regclass($1) IS NOT NULL AS present',
  /** The run's transaction (64-bit id) and its backend, read before COMMIT (commit-outcome). */
  pendingCommit: 'SELECT pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid',
  /**
   * Ends the backend `$2` if it still runs transaction `$1` (its 32-bit id in pg_stat_activity),
   * never a later session that got the same pid; waits up to `$3` ms for it to be gone.
   */
  endPendingCommit: `SELECT pg_terminate_backend(pid, $3) FROM pg_stat_activity
    WHERE pid = $2 AND backend_xid::text = (($1::text)::numeric % 4294967296)::text`,
  commitStatus: 'SELECT pg_xact_status($1::xid8) AS status',

  createStage: (e: ResolvedEntity) =>
    `CREATE TEMPORARY TABLE ${e.stage} (${e.meta.columns.map((c) => `${q(c)} text`).join(', ')}) ON COMMIT DROP`,
  copyIntoStage: (e: ResolvedEntity) => `COPY ${e.stage} (${list(e.meta.columns)}) FROM STDIN`,
  /** Statistics of the columns the plans join on (the key, the references to parents): a sixth of the time of all. */
  analyzeStage: (e: ResolvedEntity) => {
    const references = (e.meta.parents ?? []).flatMap((p) => Object.keys(p.columns));
    return `ANALYZE ${e.stage} (${list([...new Set([...e.meta.keyColumns, ...references])])})`;
  },
  countRows: (e: ResolvedEntity) => `SELECT count(*) AS rows FROM ${e.table}`,
  /** The table's foreign keys, as the server would write them again (`$1` the quoted table). */
  foreignKeys: `SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
    WHERE conrelid = to_regclass($1) AND contype = 'f' ORDER BY conname`,
  dropConstraints: (e: ResolvedEntity, names: readonly string[]) =>
    `ALTER TABLE ${e.table} ${names.map((name) => `DROP CONSTRAINT ${q(name)}`).join(', ')}`,
  /** Each definition as `foreignKeys` read it: the server's own SQL, not a value. */
  addConstraints: (e: ResolvedEntity, constraints: readonly { name: string; definition: string }[]) =>
    `ALTER TABLE ${e.table} ${constraints.map((c) => `ADD CONSTRAINT ${q(c.name)} ${c.definition}`).join(', ')}`,
  /** The tenant the site is bound to (migration 5), none before its first run. */
  boundTenant: 'SELECT tenant_id FROM meter_sync_site',
  bindTenant: `INSERT INTO meter_sync_site (tenant_id) VALUES ($1)
    ON CONFLICT (singleton) DO UPDATE SET tenant_id = excluded.tenant_id, bound_at = excluded.bound_at`,
  lockTimeout: `SELECT current_setting('lock_timeout') AS value`,
  setLockTimeout: `SELECT set_config('lock_timeout', $1, true)`,
};

// ---- site: which staged rows a step applies ----------------------------------------------------

/** True for a staged row `s` of `e` whose parents are all on the site: semi-joins the planner can hash. */
function parentsOnSite(e: ResolvedEntity, parents: ParentLookup, s = 's'): string {
  const conditions = (e.meta.parents ?? []).map((reference) => {
    const parent = parents(reference.entity);
    return `EXISTS (SELECT 1 FROM ${parent.table} AS p WHERE ${referenceMatch(reference, parent, 'p', s, true)})`;
  });
  return conditions.length > 0 ? conditions.join(' AND ') : 'TRUE';
}

/**
 * The staged rows of `e` that its upsert step applies: all but those `skipped`, a table of the
 * keys of the staged rows whose parents are not all on the site (`applySql.createSkipped`).
 */
export function applicableRows(e: ResolvedEntity, skipped?: string): string {
  if (skipped === undefined) return `SELECT s.* FROM ${e.stage} AS s`;
  return `SELECT s.* FROM ${e.stage} AS s
    WHERE NOT EXISTS (SELECT 1 FROM ${skipped} AS k WHERE ${stagedKeyMatch(e, 'k', 's')})`;
}

/** Staged keys (text) matched as they are. */
const stagedKeyMatch = (e: ResolvedEntity, a: string, b: string) =>
  e.meta.keyColumns.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');

export const applySql = {
  countStaged: (e: ResolvedEntity) => `SELECT count(*) AS total FROM ${e.stage}`,
  /**
   * The keys of the staged rows whose parents are not all on the site now, in a table the step's
   * statements then join (`table`): the parents are probed once a row, not once a statement.
   */
  createSkipped: (e: ResolvedEntity, parents: ParentLookup, table: string) =>
    `CREATE TEMPORARY TABLE ${table} ON COMMIT DROP AS SELECT ${list(e.meta.keyColumns, 's')}
      FROM ${e.stage} AS s WHERE NOT (${parentsOnSite(e, parents)})`,
  /**
   * The first staged rows in key order that the step skips (`skipped`, as `createSkipped` made
   * it), and for each parent reference (`m0`, `m1`, …) whether that parent is missing: probes of
   * those few rows only.
   */
  sampleSkipped: (e: ResolvedEntity, parents: ParentLookup, skipped: string) => {
    const keys = e.meta.keyColumns;
    const missing = (e.meta.parents ?? []).map((reference, i) => {
      const parent = parents(reference.entity);
      return `NOT EXISTS (SELECT 1 FROM ${parent.table} AS p WHERE ${referenceMatch(reference, parent, 'p', 'x', true)}) AS m${i}`;
    });
    return `SELECT ${list(keyAndReferenceColumns(e.meta), 'x')}${missing.map((m) => `, ${m}`).join('')}
      FROM (SELECT s.* FROM ${e.stage} AS s
            WHERE EXISTS (SELECT 1 FROM ${skipped} AS k WHERE ${stagedKeyMatch(e, 'k', 's')})
            ORDER BY ${byBytes(keys, 's')} LIMIT $1) AS x
      ORDER BY ${byBytes(keys, 'x')}`;
  },
};

// ---- site: the plan of a run (DESIGN §3.5, §3.12, §3.13) ----------------------------------------

/**
 * The temporary tables in which a run plans one entity's steps before any of them runs. Each holds
 * keys typed as on the site, and only rows that change: what a step costs follows the change.
 *
 * - `skip`: staged rows whose parents will not all be on the site after the run.
 * - `gone`: site rows the delete step removes: gone from the remote slice (in the compared region),
 *   skipped, or children of a parent row the run removes. `bounce` marks a row the run deletes only
 *   to insert it again once its parents are in place (it references a parent row that is deleted or
 *   bounced itself); `changed`, whether its text changes; `pinned`, why a row must stay: rows the
 *   run does not change (outside the run, of a failed entity) still reference it.
 * - `added`: keys the upsert step inserts (staged, applied, not on the site yet).
 * - `pins`: the pinned keys and their reasons, kept while the plan is computed again.
 */
export interface PlanTables {
  readonly skip: string;
  readonly gone: string;
  readonly added: string;
  readonly pins: string;
  /** A plan's copy of the site rows the apply may change, as they were (changeSql). */
  readonly before: string;
}

/** How the plan of a child sees one of its parents. */
export type PlannedParent =
  /** The run changes the parent: its plan says which keys go and which come. */
  | {
      readonly kind: 'planned';
      readonly entity: ResolvedEntity;
      readonly tables: PlanTables;
      /** Whether `added` holds rows; whether `gone` holds rows that are deleted and stay deleted. */
      readonly adds: boolean;
      readonly deletes: boolean;
    }
  /** The run leaves the parent as the site has it. */
  | { readonly kind: 'site'; readonly entity: ResolvedEntity };

/** The parts of `gone`, each a SELECT of (key, staged, bounce) over the site table `t`. */
export interface GoneParts {
  /** The entity's compared region: site rows whose key is not staged (gone from the remote). */
  absent: boolean;
  /** Whether a `skip` table exists: site rows whose staged row is skipped. */
  skipped: boolean;
  /** References to parents whose `gone` rows the children follow. */
  cascades: readonly { reference: ParentReference; tables: PlanTables }[];
}

const UNPINNED = 'g.pinned IS NULL';

export const planSql = {
  /**
   * For the plan and the apply steps: a few keys against a large table are probed through its index,
   * many are hashed. A merge join would walk the index from the first key to the last, and with
   * statistics a run or two old the planner takes it for a few keys spread over the table (seen:
   * 50,769 index rows read to delete 10).
   */
  noMergeJoins: `SELECT set_config('enable_mergejoin', 'off', true)`,
  createPins: (e: ResolvedEntity, t: PlanTables) =>
    `CREATE TEMPORARY TABLE ${t.pins} (${e.meta.keyColumns.map((k) => `${q(k)} ${e.types[k]}`).join(', ')}, reason text NOT NULL) ON COMMIT DROP`,
  drop: (tables: readonly string[]) => `DROP TABLE IF EXISTS ${tables.join(', ')}`,
  analyze: (table: string) => `ANALYZE ${table}`,
  /**
   * Copies into the stage the site rows outside the compared region that reference rows a parent
   * removes. Being outside the region they equal the remote's, so their text is the remote's: the
   * plan then treats them like any staged row (skipped, or deleted and inserted again).
   */
  stageChildrenOfGone: (e: ResolvedEntity, reference: ParentReference, t: PlanTables) => {
    const region = e.region ?? { kind: 'all' };
    const outside = region.kind === 'none' ? '' : `AND NOT (${inRegion(e, region, 't')})`;
    const refs = Object.entries(reference.columns);
    return `INSERT INTO ${e.stage} (${list(e.meta.columns)})
      SELECT ${e.meta.columns.map((c) => `t.${q(c)}::text`).join(', ')} FROM ${e.table} AS t
      WHERE (${refs.map(([child]) => `t.${q(child)}`).join(', ')}) IN (SELECT ${refs.map(([, key]) => `g.${q(key)}`).join(', ')} FROM ${t.gone} AS g WHERE ${UNPINNED})
        ${outside}
        AND NOT EXISTS (SELECT 1 FROM ${e.stage} AS s WHERE ${keyMatch(e, 't', 's')})`;
  },
  /** The staged rows a parent will be missing for, one branch per way it can be missing (UNION: no OR for the planner to fail on). */
  createSkip: (
    e: ResolvedEntity,
    skip: string,
    parents: readonly { reference: ParentReference; parent: PlannedParent }[],
  ) => {
    const keys = typedStageKeys(e, 's');
    const branches = parents.flatMap(({ reference, parent }) => {
      const match = (alias: string) => referenceMatch(reference, parent.entity, alias, 's', true);
      const notOnSite = `NOT EXISTS (SELECT 1 FROM ${parent.entity.table} AS p WHERE ${match('p')})`;
      if (parent.kind === 'site') return [`SELECT ${keys} FROM ${e.stage} AS s WHERE ${notOnSite}`];
      const notAdded = parent.adds
        ? ` AND NOT EXISTS (SELECT 1 FROM ${parent.tables.added} AS n WHERE ${match('n')})`
        : '';
      const branches = [`SELECT ${keys} FROM ${e.stage} AS s WHERE ${notOnSite}${notAdded}`];
      if (parent.deletes)
        branches.push(
          `SELECT ${keys} FROM ${e.stage} AS s WHERE EXISTS (SELECT 1 FROM ${parent.tables.gone} AS g WHERE ${match('g')} AND ${UNPINNED} AND NOT g.bounce)`,
        );
      return branches;
    });
    return `CREATE TEMPORARY TABLE ${skip} ON COMMIT DROP AS ${branches.join('\nUNION\n')}`;
  },
  createGone: (e: ResolvedEntity, t: PlanTables, parts: GoneParts) => {
    const keys = list(e.meta.keyColumns, 't');
    const branches: string[] = [];
    if (parts.absent)
      branches.push(
        `SELECT ${keys}, false AS staged, false AS bounce FROM ${e.table} AS t WHERE ${absent(e)}`,
      );
    if (parts.skipped)
      branches.push(
        `SELECT ${keys}, true AS staged, false AS bounce FROM ${e.table} AS t WHERE (${keys}) IN (SELECT ${list(e.meta.keyColumns, 'k')} FROM ${t.skip} AS k)`,
      );
    for (const { reference, tables } of parts.cascades) {
      const refs = Object.entries(reference.columns);
      branches.push(`SELECT ${keys}, true AS staged, true AS bounce FROM ${e.table} AS t
        WHERE (${refs.map(([child]) => `t.${q(child)}`).join(', ')}) IN (SELECT ${refs.map(([, key]) => `g.${q(key)}`).join(', ')} FROM ${tables.gone} AS g WHERE ${UNPINNED})`);
    }
    const columns = e.meta.keyColumns.map((k) => `${q(k)} ${e.types[k]}`).join(', ');
    // A row met by a branch that deletes it for good (gone from the remote, skipped) is no bounce.
    const select =
      branches.length === 0
        ? ''
        : ` INSERT INTO ${t.gone} (${list(e.meta.keyColumns)}, staged, bounce)
            SELECT ${list(e.meta.keyColumns)}, bool_or(staged), bool_and(bounce)
            FROM (${branches.join('\nUNION ALL\n')}) AS c GROUP BY ${list(e.meta.keyColumns)}`;
    return [
      `CREATE TEMPORARY TABLE ${t.gone} (${columns}, staged boolean NOT NULL, bounce boolean NOT NULL,
        changed boolean NOT NULL DEFAULT false, pinned text) ON COMMIT DROP`,
      ...(select ? [select] : []),
    ];
  },
  /** Marks the bounced rows whose text changes: the run counts them as updated, the others as unchanged. */
  markChangedBounces: (e: ResolvedEntity, t: PlanTables) => {
    const others = nonKeyColumns(e.meta);
    if (others.length === 0) return undefined;
    return `UPDATE ${t.gone} AS g SET changed = true FROM ${e.table} AS t, ${e.stage} AS s
      WHERE g.bounce AND ${typedKeyMatch(e, 't', 'g')} AND ${keyMatch(e, 't', 's')}
        AND ROW(${others.map((c) => `t.${q(c)}::text`).join(', ')}) IS DISTINCT FROM ROW(${others.map((c) => `s.${q(c)}`).join(', ')})`;
  },
  applyPins: (e: ResolvedEntity, t: PlanTables) =>
    `UPDATE ${t.gone} AS g SET pinned = p.reason FROM ${t.pins} AS p WHERE ${typedKeyMatch(e, 'g', 'p')}`,
  /**
   * Pins the rows of `gone` that rows of a child still reference: all its site rows (`pinnedOnly`
   * false: a child the run leaves as it is), or only those the child's own plan pins. `$1` is the reason.
   */
  pinReferenced: (
    e: ResolvedEntity,
    t: PlanTables,
    child: ResolvedEntity,
    reference: ParentReference,
    childPins?: PlanTables,
  ) => {
    const match = Object.entries(reference.columns)
      .map(([column, key]) => `c.${q(column)} = g.${q(key)}`)
      .join(' AND ');
    const rows = childPins
      ? `${child.table} AS c JOIN ${childPins.gone} AS cg ON ${typedKeyMatch(child, 'c', 'cg')} AND cg.pinned IS NOT NULL`
      : `${child.table} AS c`;
    return `WITH found AS (
        UPDATE ${t.gone} AS g SET pinned = $1 WHERE ${UNPINNED} AND EXISTS (SELECT 1 FROM ${rows} WHERE ${match})
        RETURNING ${list(e.meta.keyColumns, 'g')})
      INSERT INTO ${t.pins} (${list(e.meta.keyColumns)}, reason) SELECT ${list(e.meta.keyColumns, 'f')}, $1 FROM found AS f`;
  },
  goneCounts: (t: PlanTables) =>
    `SELECT count(*) FILTER (WHERE NOT bounce) AS intended,
       count(*) FILTER (WHERE pinned IS NULL) AS deletes,
       count(*) FILTER (WHERE pinned IS NULL AND NOT bounce) AS dead,
       count(*) FILTER (WHERE pinned IS NULL AND bounce) AS bounces,
       count(*) FILTER (WHERE pinned IS NULL AND bounce AND changed) AS changed_bounces,
       count(*) FILTER (WHERE pinned IS NOT NULL AND NOT bounce) AS pinned,
       count(*) FILTER (WHERE pinned IS NOT NULL AND NOT bounce AND NOT staged) AS pinned_unstaged,
       count(*) FILTER (WHERE pinned IS NOT NULL) AS pinned_all
     FROM ${t.gone}`,
  /** The staged keys the upsert step inserts: applied, and not on the site yet. */
  createAdded: (e: ResolvedEntity, t: PlanTables, withSkip: boolean) =>
    `CREATE TEMPORARY TABLE ${t.added} ON COMMIT DROP AS
     SELECT ${typedStageKeys(e, 's')} FROM ${e.stage} AS s
     WHERE NOT EXISTS (SELECT 1 FROM ${e.table} AS t WHERE ${keyMatch(e, 't', 's')})${
       withSkip ? ` AND NOT EXISTS (SELECT 1 FROM ${t.skip} AS k WHERE ${keyMatch(e, 'k', 's')})` : ''
     }`,
  /** The delete step: the planned rows, found by key. */
  deleteGone: (e: ResolvedEntity, t: PlanTables) =>
    `DELETE FROM ${e.table} AS t WHERE (${list(e.meta.keyColumns, 't')}) IN (SELECT ${list(e.meta.keyColumns, 'g')} FROM ${t.gone} AS g WHERE ${UNPINNED})`,
  /** The first pinned rows in key order that the remote no longer has: deletes the run skips. */
  samplePinned: (e: ResolvedEntity, t: PlanTables) =>
    `SELECT ${list(e.meta.keyColumns)}, pinned AS reason FROM ${t.gone}
     WHERE pinned IS NOT NULL AND NOT bounce AND NOT staged ORDER BY ${list(e.meta.keyColumns)} LIMIT $1`,
};

// ---- site: a plan's row-level changes (the `plan` operation) ----------------------------------

/** The aliases of a change row: key `k<i>`, column values `b<i>` before (in `before`), `a<i>` after. */
const beforeKey = (i: number) => q(`k${i}`);
const beforeColumn = (i: number) => q(`b${i}`);

export const changeSql = {
  /**
   * Copies, before the apply, the site rows it may change: those of staged keys (upserts) and of
   * the plan's `gone` rows (deletes). Bounded by the change: rows proved equal are not touched.
   * Typed values, so that they are listed in the server's output text, as the site holds them.
   */
  captureBefore: (e: ResolvedEntity, t: PlanTables) => {
    const keys = e.meta.keyColumns;
    const select = `SELECT ${keys.map((k, i) => `t.${q(k)} AS ${beforeKey(i)}`).join(', ')}, ${e.meta.columns.map((c, i) => `t.${q(c)} AS ${beforeColumn(i)}`).join(', ')}
      FROM ${e.table} AS t`;
    return `CREATE TEMPORARY TABLE ${t.before} ON COMMIT DROP AS
      ${select} WHERE (${list(keys, 't')}) IN (SELECT ${typedStageKeys(e, 's')} FROM ${e.stage} AS s)
      UNION ALL
      ${select} WHERE (${list(keys, 't')}) IN (SELECT ${list(keys, 'g')} FROM ${t.gone} AS g)
        AND NOT EXISTS (SELECT 1 FROM ${e.stage} AS s WHERE ${keyMatch(e, 't', 's')})`;
  },
  /**
   * After the apply (in the plan's rolled-back transaction): each key whose site row differs, as
   * text (as the apply compares), from the one captured before; in key order, `$1` at most.
   */
  listChanges: (e: ResolvedEntity, t: PlanTables) => {
    const keys = e.meta.keyColumns;
    const before = e.meta.columns.map((_, i) => `b.${beforeColumn(i)}`);
    const after = e.meta.columns.map((c) => `a.${q(c)}`);
    const asText = (values: string[]) => values.map((v) => `${v}::text`).join(', ');
    return `WITH keys AS (
        SELECT ${keys.map((_, i) => beforeKey(i)).join(', ')} FROM ${t.before}
        UNION
        SELECT ${keys.map((k, i) => `s.${q(k)}::${e.types[k]} AS ${beforeKey(i)}`).join(', ')} FROM ${e.stage} AS s)
      SELECT ${keys.map((_, i) => `c.${beforeKey(i)}`).join(', ')},
        b.${beforeKey(0)} IS NOT NULL AS was_present, a.${q(keys[0]!)} IS NOT NULL AS is_present,
        ${before.join(', ')}, ${after.map((a, i) => `${a} AS ${q(`a${i}`)}`).join(', ')}
      FROM keys AS c
        LEFT JOIN ${t.before} AS b ON ${keys.map((_, i) => `b.${beforeKey(i)} = c.${beforeKey(i)}`).join(' AND ')}
        LEFT JOIN ${e.table} AS a ON ${keys.map((k, i) => `a.${q(k)} = c.${beforeKey(i)}`).join(' AND ')}
      WHERE ROW(${asText(before)}) IS DISTINCT FROM ROW(${asText(after)})
      ORDER BY ${keys.map((_, i) => `c.${beforeKey(i)}`).join(', ')} LIMIT $1`;
  },
  /** An entity loaded straight into its empty table: its rows are the inserts, in key order, `$1` at most. */
  listLoaded: (e: ResolvedEntity) =>
    `SELECT ${e.meta.keyColumns.map((k, i) => `${q(k)} AS ${beforeKey(i)}`).join(', ')}, false AS was_present, true AS is_present,
       ${e.meta.columns.map((c, i) => `${q(c)} AS ${q(`a${i}`)}`).join(', ')}
     FROM ${e.table} ORDER BY ${list(e.meta.keyColumns)} LIMIT $1`,
};

// ---- site: writes (shared by the staged engine and the row-level SyncDatabase functions) -----

/**
 * Upserts the rows of `source` (a SELECT of text columns named like the entity's), writing a row
 * only when its text form really differs, and counts what it did in the server.
 */
export function upsertFrom(e: ResolvedEntity, source: string): string {
  const columns = e.meta.columns;
  const values = columns.map((c) => `s.${q(c)}::${e.types[c]}`).join(', ');
  const others = nonKeyColumns(e.meta);
  const onConflict =
    others.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${others.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}
         WHERE ROW(${others.map((c) => `t.${q(c)}::text`).join(', ')})
           IS DISTINCT FROM ROW(${others.map((c) => `EXCLUDED.${q(c)}::text`).join(', ')})`;
  // xmax is 0 on a freshly inserted row version and set on one written by DO UPDATE.
  return `WITH written AS (
      INSERT INTO ${e.table} AS t (${list(columns)})
      SELECT ${values} FROM (${source}) AS s
      ON CONFLICT (${list(e.meta.keyColumns)}) ${onConflict}
      RETURNING (t.xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM written`;
}

/** True for a site row `t` of the entity's compared region whose key is not staged. */
function absent(e: ResolvedEntity): string {
  const stage = `SELECT * FROM ${e.stage}`;
  if (e.region?.kind === 'keys') {
    // The region's keys not staged, found among the few region and staged rows first: the planner
    // then probes the table for those instead of joining every row of it.
    const keys = list(e.meta.keyColumns, 'd');
    return `(${list(e.meta.keyColumns, 't')}) IN (SELECT ${keys} FROM ${e.region.table} AS d
      WHERE NOT EXISTS (SELECT 1 FROM (${stage}) AS s WHERE ${keyMatch(e, 'd', 's')}))`;
  }
  const region = e.region && e.region.kind !== 'all' ? `${inRegion(e, e.region, 't')} AND ` : '';
  return `${region}NOT EXISTS (SELECT 1 FROM (${stage}) AS s WHERE ${keyMatch(e, 't', 's')})`;
}

/** Deletes the site rows whose key is among the rows of `remove`. */
export function deleteListed(e: ResolvedEntity, remove: string): string {
  return `DELETE FROM ${e.table} AS t WHERE EXISTS (SELECT 1 FROM (${remove}) AS s WHERE ${keyMatch(e, 't', 's')})`;
}

/** Rows given as one text array parameter per column ($1, $2, …), as a SELECT of text columns. */
export function unnestSource(columns: readonly string[]): string {
  const params = columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
  return `SELECT * FROM unnest(${params}) AS u(${list(columns)})`;
}

export function selectRows(e: ResolvedEntity): string {
  return `SELECT ${list(e.meta.columns)} FROM ${e.table} ORDER BY ${list(e.meta.keyColumns)}`;
}

// ---- fingerprints and regions (DESIGN §6) ----------------------------------------------------

/**
 * The hash of a value `v` with seed `seed`, for types whose text form is a function of what their
 * hash functions see: equal hashes then mean equal text (but for chance), and a value is hashed
 * without being written as text, the larger part of the cost. Only hash functions that every
 * supported server version has (PostgreSQL 14 and later) are used: both servers must agree.
 */
const VALUE_HASHES: Readonly<Record<string, (v: string, seed: number) => string>> = {
  smallint: (v, seed) => `hashint2extended(${v}, ${seed})`,
  integer: (v, seed) => `hashint4extended(${v}, ${seed})`,
  bigint: (v, seed) => `hashint8extended(${v}, ${seed})`,
  boolean: (v, seed) => `hashint4extended(${v}::integer, ${seed})`,
  uuid: (v, seed) => `uuid_hash_extended(${v}, ${seed})`,
  'timestamp without time zone': (v, seed) => `timestamp_hash_extended(${v}, ${seed})`,
  // In UTC, which has no hour twice: two instants are never one local time. The zone as an
  // interval, not as the name 'UTC', which the server looks up again for every row: 40% of the
  // column's cost (30 ms a million rows).
  'timestamp with time zone': (v, seed) => `timestamp_hash_extended(${v} AT TIME ZONE INTERVAL '0', ${seed})`,
};

/**
 * A column's hash in a row: by value where `VALUE_HASHES` knows its type, else by its text (jsonb,
 * numeric, floats, text under any collation, dates…), so that every difference the apply path would
 * write is seen. (numeric's own hash sees neither its sign nor its display scale, 1.5 against
 * 1.50, and its text costs no more than the checks that would make up for it.) Seeded by the
 * column's place, so that two columns never trade values unseen; a NULL is the seed itself.
 */
function columnHash(e: ResolvedEntity, column: string, alias: string, seed: number): string {
  const type = e.types[column]!;
  const value = `${alias}.${q(column)}::${type}`;
  const byValue = VALUE_HASHES[type];
  const text = type === 'text' ? value : `${value}::text`;
  const hash = byValue ? byValue(value, seed) : `hashtextextended(${text} COLLATE "C", ${seed})`;
  return `coalesce(${hash}, ${seed})`;
}

/**
 * A 64-bit hash of a row, computed the same way on both sides from the site's column types: the
 * columns' hashes combined by xor, then hashed once more, so that rows of one bucket trading a
 * value still change the bucket's xor. A third cheaper than `hash_record_extended` over the row,
 * which builds a record for each row first.
 */
export function rowHash(e: ResolvedEntity, alias: string): string {
  const columns = e.meta.columns.map((c, i) => columnHash(e, c, alias, i + 1));
  return `hashint8extended(${columns.join(' # ')}, 0)`;
}

/**
 * How both sides put rows into fingerprint buckets, agreed before they scan.
 *
 * - `range`: for an integer first key column, ranges of it: bucket b holds the keys from
 *   lo + b * width to lo + (b + 1) * width - 1, keys below lo and above hi (the last key of the
 *   last bucket) falling into the first and the last bucket. The rows of a few buckets are then
 *   found through the key's index on both sides, not by a scan.
 * - `hash`: any other key: the key's hash, masked (a power of two minus one).
 */
export type Buckets =
  | { readonly kind: 'range'; readonly lo: bigint; readonly hi: bigint; readonly width: bigint }
  /**
   * `bounds`: for a uuid first key column, the site's keys cut at sorted bounds (taken from a
   * sample of its pages): bucket b holds the keys from bounds[b - 1] up to, not including,
   * bounds[b], the outer buckets open. Like ranges, a few buckets are then found through the index.
   */
  | { readonly kind: 'bounds'; readonly bounds: readonly string[] }
  | { readonly kind: 'hash'; readonly mask: number };

/** The first key types bucketed by `bounds`: ordered the same on every server, whatever the collation. */
export const BOUNDED_TYPES = new Set(['uuid']);

/** The values a bucket expression takes as parameters or settings, in the order `bucketOf` uses them. */
export function bucketValues(buckets: Buckets): string[] {
  switch (buckets.kind) {
    case 'range':
      return [String(buckets.lo), String(buckets.hi), String(buckets.width)];
    case 'bounds':
      return [arrayLiteral(buckets.bounds)];
    case 'hash':
      return [String(buckets.mask)];
  }
}

/** The number of values `bucketValues` gives for a kind of buckets. */
export const bucketValueCount = (kind: Buckets['kind']) => (kind === 'range' ? 3 : 1);

/** A uuid as the 128-bit number it is, and back: the bounds of a region's ranges are computed on. */
export function uuidToBigInt(uuid: string): bigint {
  return BigInt(`0x${uuid.replace(/-/g, '')}`);
}

export function bigIntToUuid(value: bigint): string {
  const hex = value.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The bucket of a row `alias`; `values` are SQL expressions of the `bucketValues` (`bucketParameters`). */
export function bucketOf(
  e: ResolvedEntity,
  alias: string,
  kind: Buckets['kind'],
  values: readonly string[],
): string {
  const [first, ...more] = e.meta.keyColumns;
  if (kind === 'bounds') {
    const type = e.types[first!]!;
    // width_bucket binary-searches the bounds with the type's own order: 0 below the first.
    return `width_bucket(${alias}.${q(first!)}::${type}, (${values[0]})::${type}[])`;
  }
  if (kind === 'range') {
    const [lo, hi, width] = values;
    // Clamped first, so that the subtraction never overflows: hi - lo fits a bigint by construction.
    return `((least(greatest(${alias}.${q(first!)}::bigint, ${lo}), ${hi}) - ${lo}) / ${width})::integer`;
  }
  const [mask] = values;
  // One integer key hashes as a bigint: a third of the cost of hashing a record.
  if (more.length === 0 && INTEGER_TYPES.has(e.types[first!]!))
    return `(hashint8extended(${alias}.${q(first!)}::bigint, 0) & ${mask})::integer`;
  const key = e.meta.keyColumns.map((k) => `${alias}.${q(k)}::${e.types[k]}`).join(', ');
  return `(hash_record_extended(ROW(${key}), 0) & ${mask})::integer`;
}

export const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);

/** The type of a region's key ranges: the first key's, any integer as bigint. */
function rangeType(e: ResolvedEntity): string {
  const type = e.types[e.meta.keyColumns[0]!]!;
  return INTEGER_TYPES.has(type) ? 'bigint' : type;
}

/** The rows of an entity that a run compares and may write; the rest were proved equal. */
export type Region =
  /** Everything: the site rows are compared with a full stage. */
  | { readonly kind: 'all' }
  /** The site rows in these key-hash buckets (a temporary table of bucket numbers). */
  | { readonly kind: 'buckets'; readonly table: string; readonly mask: number }
  /** The site rows whose first key column lies in these ranges (a temporary table of `lo`, `hi`). */
  | { readonly kind: 'ranges'; readonly table: string }
  /** The site rows with these keys (a temporary table of keys). */
  | { readonly kind: 'keys'; readonly table: string }
  /** None: every site row was proved equal (a plan may still stage rows outside it). */
  | { readonly kind: 'none' };

function checkMask(mask: number): string {
  // The mask is computed by the engine, never taken from input; it is an integer by construction.
  if (!Number.isSafeInteger(mask) || mask < 0) throw new Error(`bad bucket mask ${mask}`);
  return String(mask);
}

/** The first key column of `alias`, cast to the site's type for a remote row (a no-op that keeps its index usable). */
function firstKey(e: ResolvedEntity, alias: string, remote = false): string {
  const [first] = e.meta.keyColumns;
  return `${alias}.${q(first!)}${remote ? `::${e.types[first!]}` : ''}`;
}

/** The site rows `alias` whose first key lies in the ranges of `table`, as a join (no range overlaps another). */
// LATERAL and OFFSET 0 (which keeps the planner from flattening it): each range is a scan of its
// own, through the key's index. As a plain join, the planner, which cannot know how wide the ranges
// are, may instead test every row of the table against every range.
function siteRanges(e: ResolvedEntity, table: string, alias: string): string {
  return `${table} AS g CROSS JOIN LATERAL (SELECT * FROM ${e.table} AS ${alias}
    WHERE ${firstKey(e, alias)} BETWEEN g.lo AND g.hi OFFSET 0) AS ${alias}`;
}

/** The site rows `t` of a region, as a FROM clause (with its WHERE). */
function siteRegionRows(e: ResolvedEntity, region: Region): string {
  return region.kind === 'ranges'
    ? `FROM ${siteRanges(e, region.table, 't')}`
    : `FROM ${e.table} AS t WHERE ${inRegion(e, region, 't')}`;
}

/** True for a site row `t` that lies in the region the run compares. */
export function inRegion(e: ResolvedEntity, region: Region, t: string): string {
  switch (region.kind) {
    case 'all':
      return 'TRUE';
    case 'none':
      return 'FALSE';
    case 'buckets':
      return `${bucketOf(e, t, 'hash', [checkMask(region.mask)])} IN (SELECT b FROM ${region.table})`;
    case 'ranges':
      // The rows of the ranges are found through the key's index first; a correlated EXISTS would
      // make the planner test every row of the table against every range.
      return `${firstKey(e, t)} IN (SELECT ${firstKey(e, 'u')} FROM ${siteRanges(e, region.table, 'u')})`;
    case 'keys': {
      const match = e.meta.keyColumns.map((k) => `d.${q(k)} = ${t}.${q(k)}`).join(' AND ');
      return `EXISTS (SELECT 1 FROM ${region.table} AS d WHERE ${match})`;
    }
  }
}

export interface BucketFingerprint {
  n: number;
  x: bigint;
}

const parameters = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `$${from + i}::bigint`);

/** The placeholders of the `bucketValues` of a kind, from `$from` on. */
const bucketParameters = (kind: Buckets['kind'], from: number) =>
  kind === 'bounds' ? [`$${from}::text[]`] : parameters(from, bucketValueCount(kind));

/**
 * Fingerprint rows `(b, n, x)` of `source` packed into one base64 text of 14 bytes per bucket
 * (number, count, xor): these bytes cross the network on every run, a thousand buckets in 19 KB
 * instead of 60 KB of rows. `extra` adds output columns aggregated over the rows of `source`.
 */
function packed(source: string, extra = ''): string {
  return `SELECT encode(string_agg(int2send(b::smallint) || int4send(n::integer) || int8send(x), ''), 'base64') AS packed${extra}
     FROM (${source}) AS g`;
}

export const fingerprintSql = {
  /** Packed row counts and xors of row hashes per bucket of the site table; the parameters are the `bucketValues`. */
  siteBuckets: (e: ResolvedEntity, kind: Buckets['kind']) =>
    packed(`SELECT b, count(*) AS n, bit_xor(h) AS x FROM (
       SELECT ${bucketOf(e, 't', kind, bucketParameters(kind, 1))} AS b, ${rowHash(e, 't')} AS h
       FROM ${e.table} AS t) AS f
     GROUP BY b`),
  /**
   * `siteBuckets` of the site table and the skips it remembers that still stand (`skippedSql`), so
   * that a remote row skipped in an earlier run counts as the site's when it has not changed; and
   * how many of those each bucket holds, as `b:r,…`. The entity's name follows the bucket values.
   */
  siteBucketsWithSkips: (e: ResolvedEntity, kind: Buckets['kind'], parents: ParentState) => {
    const values = bucketParameters(kind, 1);
    const name = `$${values.length + 1}`;
    return packed(
      `SELECT b, count(*) AS n, bit_xor(h) AS x, sum(r) AS r FROM (
         SELECT ${bucketOf(e, 't', kind, values)} AS b, ${rowHash(e, 't')} AS h, 0 AS r FROM ${e.table} AS t
         UNION ALL
         ${standingSkips(e, kind, parents, values, name)}) AS f
       GROUP BY b`,
      `, string_agg(b || ':' || r, ',') FILTER (WHERE r > 0) AS remembered`,
    );
  },
  /**
   * The skips alone of `siteBucketsWithSkips`: what a table whose own fingerprint was kept adds to
   * it, read from the skips the site remembers, never from the table. Same parameters.
   */
  standingSkipBuckets: (e: ResolvedEntity, kind: Buckets['kind'], parents: ParentState) => {
    const values = bucketParameters(kind, 1);
    return packed(
      `SELECT b, count(*) AS n, bit_xor(h) AS x FROM (${standingSkips(e, kind, parents, values, `$${values.length + 1}`)}) AS f
       GROUP BY b`,
    );
  },
  /**
   * The same of the remote slice (`$1` is the tenant id, then the `bucketValues`); with range
   * buckets also the slice's first and last key, so that the outer ranges have bounds. With
   * `horizon`, for a slice read from its table alone (`remoteVersioned`), also the horizon that a
   * later run's `remoteBucketsSince` counts from (`remoteHorizon`): the table's name follows.
   */
  remoteBuckets: (e: ResolvedEntity, kind: Buckets['kind'], horizon = false) => {
    const key = kind === 'range' ? firstKey(e, 'r', true) : 'NULL::bigint';
    const values = bucketParameters(kind, 2);
    return packed(
      `SELECT b, count(*) AS n, bit_xor(h) AS x, min(k) AS lo, max(k) AS hi FROM (
       SELECT ${bucketOf(e, 'r', kind, values)} AS b, ${rowHash(e, 'r')} AS h, ${key} AS k
       FROM (${remoteSlice(e.meta, '$1::integer')}) AS r) AS f
     GROUP BY b`,
      `, min(lo)::text AS lo, max(hi)::text AS hi${horizon ? `, ${remoteHorizon(`$${values.length + 2}`)} AS horizon` : ''}`,
    );
  },
  /**
   * The remote's fingerprints against the ones of an earlier run's snapshot: every row of the slice
   * is counted, but only the rows written since that snapshot's horizon (their xmin not before its
   * xmin) are hashed, which is most of the scan's cost. Per bucket the packed `(b, n, x)` give all
   * rows and the xor of the new ones; `fresh` lists the buckets holding new rows as `b:count,…`.
   * `usable` is false when the snapshots say this one is not later than the earlier one (a replica
   * behind the server that gave it) or the horizon is too old for 32-bit xids to compare: the
   * counts then prove nothing. Parameters as `remoteBuckets` with a horizon, then the earlier snapshot.
   */
  remoteBucketsSince: (e: ResolvedEntity, kind: Buckets['kind']) => {
    const key = kind === 'range' ? firstKey(e, 'r', true) : 'NULL::bigint';
    const values = bucketParameters(kind, 2);
    const table = `$${values.length + 2}`;
    const was = `$${values.length + 3}::pg_snapshot`;
    // age() of an xid counts back from one point fixed for the transaction: a row is older than
    // the horizon when its xmin is further back than the horizon's. A frozen row keeps its xmin.
    const old = `age(r.${q(VERSION_COLUMN)}) > (SELECT age(pg_snapshot_xmin(${was})::xid))`;
    return packed(
      `SELECT b, count(*) AS n, coalesce(bit_xor(h), 0) AS x, count(h) AS c, min(k) AS lo, max(k) AS hi FROM (
       SELECT ${bucketOf(e, 'r', kind, values)} AS b, CASE WHEN ${old} THEN NULL ELSE ${rowHash(e, 'r')} END AS h, ${key} AS k
       FROM (${versionedSlice(e.meta, '$1::integer')}) AS r) AS f
     GROUP BY b`,
      `, min(lo)::text AS lo, max(hi)::text AS hi, ${remoteHorizon(table)} AS horizon,
       string_agg(b || ':' || c, ',') FILTER (WHERE c > 0) AS fresh,
       (SELECT pg_snapshot_xmax(pg_current_snapshot()) >= pg_snapshot_xmax(${was})
          AND pg_snapshot_xmax(pg_current_snapshot())::text::numeric - pg_snapshot_xmin(${was})::text::numeric < ${MAX_HORIZON_AGE}
          AND NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(pg_current_snapshot()) AS x
            WHERE x < pg_snapshot_xmax(${was}) AND pg_visible_in_snapshot(x, ${was}))) AS usable`,
    );
  },
  /** The horizon this snapshot would keep (`remoteHorizon`; `$1` the table's name): a kept one's source is checked against it before any row is read. */
  remoteHorizon: (): string => `SELECT ${remoteHorizon('$1')} AS horizon`,
  /** `remoteBuckets` of the rows of a region only (the settings name it, as for COPY); the parameters are the `bucketValues`. */
  remoteRegionBuckets: (e: ResolvedEntity, kind: Buckets['kind'], region: RemoteRegion) =>
    packed(`SELECT b, count(*) AS n, bit_xor(h) AS x FROM (
       SELECT ${bucketOf(e, 'r', kind, bucketParameters(kind, 1))} AS b, ${rowHash(e, 'r')} AS h
       ${remoteRegionRows(e, region)}) AS f
     GROUP BY b`),
  createBucketTable: (table: string) =>
    `CREATE TEMPORARY TABLE ${table} (b integer PRIMARY KEY) ON COMMIT DROP`,
  fillBucketTable: (table: string) => `INSERT INTO ${table} (b) SELECT unnest($1::integer[])`,
  /** Ranges of the first key, of its type (bigint for any integer), bounds inclusive. */
  createRangeTable: (e: ResolvedEntity, table: string) => {
    const type = rangeType(e);
    return `CREATE TEMPORARY TABLE ${table} ON COMMIT DROP AS SELECT * FROM unnest($1::${type}[], $2::${type}[]) AS g (lo, hi)`;
  },
};

/** A fingerprint's signature as kept: the table's columns and types (`$3`), and the server's major version, whose hash functions made it. */
const SIGNATURE = `($3 || '@' || current_setting('server_version_num')::integer / 10000)`;

/**
 * Migration 6's tables and what a run does to them: keeps fingerprints, and forgets the writes
 * noted once seen. A role without these privileges still syncs, scanning every table.
 */
export const KEPT_FINGERPRINT_PRIVILEGES: Readonly<Record<string, readonly string[]>> = {
  meter_sync_fingerprint: ['SELECT', 'INSERT', 'UPDATE'],
  meter_sync_table_write: ['SELECT', 'DELETE'],
};

/**
 * The fingerprints a site remembers (migration 6). `$1` the entity, `$2` its table (for
 * `to_regclass`), `$3` its signature. A remembered one is given only while it can be trusted: the
 * same table made the same way on the same server major version, younger than `$4` seconds, and
 * no write to the table since by a transaction its snapshot did not see, other than the one that
 * kept it; and only while the table's trigger is on (`noted`). The snapshot given is this
 * statement's: what a fingerprint kept later in the run saw at most.
 */
export const fingerprintMemorySql = {
  mayKeep: `SELECT coalesce(${Object.entries(KEPT_FINGERPRINT_PRIVILEGES)
    .map(([table, privileges]) => `has_table_privilege(to_regclass('${table}'), '${privileges.join(', ')}')`)
    .join(' AND ')}, false) AS may`,
  read: `SELECT pg_current_snapshot()::text AS snapshot,
      EXISTS (SELECT 1 FROM pg_trigger AS g
        WHERE g.tgrelid = to_regclass($2) AND g.tgname = '${WRITE_NOTE_TRIGGER}' AND g.tgenabled = 'A') AS noted,
      (SELECT json_build_object('buckets', f.buckets, 'packed', f.packed, 'horizon', f.remote_horizon)
        FROM meter_sync_fingerprint AS f
        WHERE f.entity = $1 AND f.table_oid = to_regclass($2) AND f.signature = ${SIGNATURE}
          AND f.recorded_at > now() - make_interval(secs => $4)
          AND NOT EXISTS (SELECT 1 FROM meter_sync_table_write AS w
            WHERE w.table_oid = f.table_oid AND w.xid IS DISTINCT FROM f.writer
              AND NOT pg_visible_in_snapshot(w.xid, f.snapshot::pg_snapshot))) AS remembered`,
  /**
   * Keeps a fingerprint (`$4` the buckets as JSON, `$5` packed, `$6` the snapshot it was taken
   * after, `$7` the remote's horizon when the fingerprint is also the remote's), this transaction as its writer.
   */
  keep: `INSERT INTO meter_sync_fingerprint AS f (entity, table_oid, signature, buckets, packed, snapshot, writer, recorded_at, remote_horizon)
    VALUES ($1, to_regclass($2), ${SIGNATURE}, $4, $5, $6::pg_snapshot::text, pg_current_xact_id(), now(), $7)
    ON CONFLICT (entity) DO UPDATE SET table_oid = EXCLUDED.table_oid, signature = EXCLUDED.signature,
      buckets = EXCLUDED.buckets, packed = EXCLUDED.packed, snapshot = EXCLUDED.snapshot,
      writer = EXCLUDED.writer, recorded_at = EXCLUDED.recorded_at, remote_horizon = EXCLUDED.remote_horizon`,
  /**
   * Forgets the writes of committed transactions that no fingerprint needs: those its snapshot
   * saw, or its own. Those it did not see stay, so that it stays untrusted until it is replaced.
   */
  forgetWrites: `DELETE FROM meter_sync_table_write AS w
    WHERE pg_visible_in_snapshot(w.xid, pg_current_snapshot())
      AND NOT EXISTS (SELECT 1 FROM meter_sync_fingerprint AS f
        WHERE f.table_oid = w.table_oid AND w.xid IS DISTINCT FROM f.writer
          AND NOT pg_visible_in_snapshot(w.xid, f.snapshot::pg_snapshot))`,
};

/** Bytes per bucket of the packed fingerprints: int2 number, int4 count, int8 xor. */
const PACKED_BUCKET = 14;

/** The rows the buckets of a fingerprint count. */
export const rowsCounted = (buckets: ReadonlyMap<number, BucketFingerprint>): number =>
  [...buckets.values()].reduce((total, f) => total + f.n, 0);

/** Packs fingerprints as `packed` does (the buckets in any order). */
export function packFingerprints(buckets: ReadonlyMap<number, BucketFingerprint>): string {
  const bytes = Buffer.alloc(buckets.size * PACKED_BUCKET);
  let at = 0;
  for (const [b, { n, x }] of buckets) {
    bytes.writeInt16BE(b, at);
    bytes.writeInt32BE(n, at + 2);
    bytes.writeBigInt64BE(BigInt.asIntN(64, x), at + 6);
    at += PACKED_BUCKET;
  }
  return bytes.toString('base64');
}

/** Parses packed fingerprints (see `packed`). */
export function unpackFingerprints(packed: string | null): Map<number, BucketFingerprint> {
  const bytes = Buffer.from(packed ?? '', 'base64');
  const buckets = new Map<number, BucketFingerprint>();
  for (let at = 0; at + PACKED_BUCKET <= bytes.length; at += PACKED_BUCKET)
    buckets.set(bytes.readInt16BE(at), { n: bytes.readInt32BE(at + 2), x: bytes.readBigInt64BE(at + 6) });
  return buckets;
}

/**
 * A sample of an entity with an integer first key column: the site rows of a short key range
 * compared key by key with the remote's, to tell a change spread over the whole table (compare
 * every key at once) from a few changes (fingerprint buckets first). Only the count comes back.
 */
export const sampleSql = {
  /**
   * The site table's size on disk, its row count as last estimated by the server (-1 before its
   * first ANALYZE) and its first and last first key (through the key's index): what sizes the
   * sample and the buckets, never a result. ORDER BY, not min/max: every key type has a btree
   * order, not every one an aggregate (there is no min(uuid)).
   */
  tableShape: (e: ResolvedEntity) => {
    const first = q(e.meta.keyColumns[0]!);
    return `SELECT pg_relation_size(c.oid) AS bytes, c.reltuples AS rows,
      (SELECT ${first} FROM ${e.table} ORDER BY ${first} LIMIT 1)::text AS lo,
      (SELECT ${first} FROM ${e.table} ORDER BY ${first} DESC LIMIT 1)::text AS hi
      FROM pg_class c WHERE c.oid = to_regclass($1)`;
  },
  /** The first key of the rows of a sample of `$1` percent of the table's pages, sorted, as text. */
  firstKeys: (e: ResolvedEntity) => {
    const first = q(e.meta.keyColumns[0]!);
    return `SELECT s.k::text AS k FROM (SELECT t.${first} AS k FROM ${e.table} AS t TABLESAMPLE SYSTEM ($1)) AS s
      WHERE s.k IS NOT NULL ORDER BY s.k`;
  },
  /**
   * The site's keys and row hashes of up to `$2` rows from the first key `$1` on, with their range
   * of first keys, as text ready to be passed to `compareRemote`.
   */
  siteRows: (e: ResolvedEntity) => {
    const [first] = e.meta.keyColumns;
    const k = `t.${q(first!)}`;
    // ORDER BY, not min/max, which a uuid has not.
    return `WITH s AS (SELECT ${k} AS k FROM ${e.table} AS t WHERE ${k} >= $1::${rangeType(e)}
        ORDER BY ${list(e.meta.keyColumns, 't')} LIMIT $2),
      span AS (SELECT (SELECT k FROM s ORDER BY k LIMIT 1) AS lo, (SELECT k FROM s ORDER BY k DESC LIMIT 1) AS hi)
    SELECT span.lo::text AS lo, span.hi::text AS hi, count(*) AS rows,
      ${e.meta.keyColumns.map((c, i) => `coalesce(array_agg(t.${q(c)})::text, '{}') AS k${i}`).join(', ')},
      coalesce(array_agg(${rowHash(e, 't')})::text, '{}') AS h
    FROM span, ${e.table} AS t WHERE ${k} BETWEEN span.lo AND span.hi GROUP BY span.lo, span.hi`;
  },
  /**
   * How many keys of the remote slice in the range `$2`–`$3` of the first key column differ from
   * the site's sample (one array parameter per key column, then the hashes); `$1` is the tenant id.
   */
  compareRemote: (e: ResolvedEntity) => {
    const keys = e.meta.keyColumns;
    const [first] = keys;
    const n = keys.length;
    const arrays = [...keys.map((k, i) => `$${i + 4}::${e.types[k]}[]`), `$${n + 4}::bigint[]`];
    return `SELECT count(*) FILTER (WHERE r.h IS DISTINCT FROM s.h) AS differing, count(*) AS rows
      FROM (SELECT ${keys.map((k) => `r.${q(k)}::${e.types[k]} AS ${q(k)}`).join(', ')}, ${rowHash(e, 'r')} AS h
            FROM (${remoteSlice(e.meta, '$1::integer')}) AS r
            WHERE r.${q(first!)}::${e.types[first!]} BETWEEN $2 AND $3) AS r
      FULL JOIN unnest(${arrays.join(', ')}) AS s (${list(keys)}, h)
        ON ${keys.map((k) => `r.${q(k)} = s.${q(k)}`).join(' AND ')}`;
  },
};

/** Settings through which COPY statements on the remote receive their values. */
export const REGION_SETTING = 'meter_sync.region';
export const MASK_SETTING = 'meter_sync.mask';
export const RANGES_LO_SETTING = 'meter_sync.ranges_lo';
export const RANGES_HI_SETTING = 'meter_sync.ranges_hi';
export const keySetting = (i: number) => `meter_sync.key_${i}`;

/** Which rows of the slice a remote COPY reads: all, or those of the region the settings name. */
export type RemoteRegion = 'all' | 'buckets' | 'ranges';

/** The slice's rows `r` in the region the settings name, as a FROM clause (with its WHERE). */
function remoteRegionRows(e: ResolvedEntity, region: RemoteRegion): string {
  const slice = `(${remoteSlice(e.meta, TENANT_FROM_SETTING)}) AS r`;
  switch (region) {
    case 'all':
      return `FROM ${slice}`;
    case 'buckets': {
      // A sub-select, not `= ANY (array)`: the planner hashes it instead of scanning the array per row.
      const mask = `(SELECT current_setting('${MASK_SETTING}')::bigint)`;
      return `FROM ${slice} WHERE ${bucketOf(e, 'r', 'hash', [mask])} IN (SELECT unnest(current_setting('${REGION_SETTING}')::integer[]))`;
    }
    case 'ranges': {
      // Each range a LATERAL scan of its own, so that the key's index finds its rows (see siteRanges).
      const type = rangeType(e);
      const ranges = `unnest(current_setting('${RANGES_LO_SETTING}')::${type}[], current_setting('${RANGES_HI_SETTING}')::${type}[])`;
      return `FROM ${ranges} AS g (lo, hi) CROSS JOIN LATERAL (SELECT * FROM ${slice}
        WHERE ${firstKey(e, 'r', true)} BETWEEN g.lo AND g.hi OFFSET 0) AS r`;
    }
  }
}

/** A key column as a binary key-hash comparison reads it: a uuid as it is, any integer as a bigint. */
function binaryKey(e: ResolvedEntity, k: string, alias: string, remote: boolean): string {
  const type = e.types[k]!;
  if (type === 'uuid') return `${alias}.${q(k)}::uuid`;
  return remote ? `${alias}.${q(k)}::${type}::bigint` : `${alias}.${q(k)}::bigint`;
}

export const regionSql = {
  setSetting: 'SELECT set_config($1, $2, true)',
  /** The slice's rows in the region the settings name. */
  copyRegion: (e: ResolvedEntity, region: RemoteRegion) =>
    `COPY (SELECT r.* ${remoteRegionRows(e, region)}) TO STDOUT`,
  /** Key and row hash of the slice's rows in a region, typed as on the site. */
  copyHashes: (e: ResolvedEntity, region: RemoteRegion) =>
    `COPY (SELECT ${e.meta.keyColumns.map((k) => `r.${q(k)}::${e.types[k]}`).join(', ')}, ${rowHash(e, 'r')}
      ${remoteRegionRows(e, region)}) TO STDOUT`,
  /** The slice's rows whose keys are listed, one array setting per key column. */
  copyKeys: (e: ResolvedEntity) => {
    const arrays = e.meta.keyColumns.map((k, i) => `current_setting('${keySetting(i)}')::${e.types[k]}[]`);
    return `COPY (SELECT * FROM (${remoteSlice(e.meta, TENANT_FROM_SETTING)}) AS r
      WHERE (${list(e.meta.keyColumns, 'r')}) IN (SELECT * FROM unnest(${arrays.join(', ')}))) TO STDOUT`;
  },
  /**
   * Key and row hash of the slice's rows in a region, typed as on the site, for a comparison with
   * the site's (see key-hash-merge): binary, every field a bigint but a uuid key; in key order for a merge.
   */
  copyKeyHashes: (e: ResolvedEntity, region: RemoteRegion, inKeyOrder: boolean) => {
    const keys = e.meta.keyColumns.map((k) => binaryKey(e, k, 'r', true)).join(', ');
    const order = inKeyOrder ? ` ORDER BY ${e.meta.keyColumns.map((_, i) => i + 1).join(', ')}` : '';
    return `COPY (SELECT ${keys}, ${rowHash(e, 'r')} ${remoteRegionRows(e, region)}${order}) TO STDOUT (FORMAT binary)`;
  },
  /** The same of the site table's rows in a region. */
  // Ordered by an expression, not the key itself: the site then sorts while the remote sorts, instead
  // of walking its index one row at a time as the merge asks, after the remote's sort is done.
  copySiteKeyHashes: (e: ResolvedEntity, region: Region, inKeyOrder: boolean) => {
    const order = inKeyOrder ? ` ORDER BY ${e.meta.keyColumns.map((k) => `t.${q(k)} + 0`).join(', ')}` : '';
    return `COPY (SELECT ${e.meta.keyColumns.map((k) => binaryKey(e, k, 't', false)).join(', ')}, ${rowHash(e, 't')}
      ${siteRegionRows(e, region)}${order}) TO STDOUT (FORMAT binary)`;
  },
  /**
   * The differing keys a merge found, as a table like `createDiffTable`'s: one array parameter per
   * key column, then whether each key is only on the site, and whether the site has it.
   */
  createDiffTableFrom: (e: ResolvedEntity, diff: string) => {
    const keys = e.meta.keyColumns;
    const arrays = keys.map((k, i) => `$${i + 1}::${e.types[k]}[]`);
    return `CREATE TEMPORARY TABLE ${diff} ON COMMIT DROP AS
      SELECT * FROM unnest(${arrays.join(', ')}, $${keys.length + 1}::boolean[], $${keys.length + 2}::boolean[])
        AS d (${list(keys)}, site_only, on_site)`;
  },
  createHashTable: (e: ResolvedEntity, table: string) =>
    `CREATE TEMPORARY TABLE ${table} (${e.meta.keyColumns.map((k) => `${q(k)} ${e.types[k]}`).join(', ')}, h bigint) ON COMMIT DROP`,
  copyIntoHashTable: (e: ResolvedEntity, table: string) =>
    `COPY ${table} (${list(e.meta.keyColumns)}, h) FROM STDIN`,
  /**
   * The keys whose rows differ between the remote's hashes and the site table within the bucket
   * region: rows only on the site (to delete) and rows to fetch (new or changed).
   */
  createDiffTable: (e: ResolvedEntity, diff: string, hashes: string, buckets: Region) => {
    const keys = e.meta.keyColumns;
    return `CREATE TEMPORARY TABLE ${diff} ON COMMIT DROP AS
      SELECT ${keys.map((k) => `coalesce(h.${q(k)}, t.${q(k)}) AS ${q(k)}`).join(', ')},
             h.h IS NULL AS site_only, t.h IS NOT NULL AS on_site
      FROM ${hashes} AS h
      FULL JOIN (SELECT ${list(keys, 't')}, ${rowHash(e, 't')} AS h FROM ${e.table} AS t WHERE ${inRegion(e, buckets, 't')}) AS t
        ON ${keys.map((k) => `t.${q(k)} = h.${q(k)}`).join(' AND ')}
      WHERE h.h IS DISTINCT FROM t.h`;
  },
  diffCounts: (diff: string) =>
    `SELECT count(*) FILTER (WHERE NOT site_only) AS fetch, count(*) FILTER (WHERE on_site) AS on_site FROM ${diff}`,
  /** The keys to fetch as array literals, one per key column, built by the server. */
  fetchKeyArrays: (e: ResolvedEntity, diff: string) =>
    `SELECT ${e.meta.keyColumns.map((k, i) => `coalesce(array_agg(${q(k)})::text, '{}') AS k${i}`).join(', ')} FROM ${diff} WHERE NOT site_only`,
  /** Straight into the site table, for a first load of an entity without parents. */
  copyIntoTable: (e: ResolvedEntity) => `COPY ${e.table} (${list(e.meta.columns)}) FROM STDIN`,
  siteIsEmpty: (e: ResolvedEntity) => `SELECT NOT EXISTS (SELECT 1 FROM ${e.table}) AS empty`,
};

// ---- site: naming the row an upsert was refused on ---------------------------------------------

/** Numbers the probe table's rows; a name no entity column is expected to have (checked by the caller). */
export const PROBE_ORDINAL = 'meter_sync_probe_n';

export const probeSql = {
  table: (e: ResolvedEntity) => `pg_temp.${q(`meter_sync_probe_${e.meta.name}`)}`,
  /** The rows a step upserts (`source`, text columns), numbered so that any range can be tried alone. */
  create: (probe: string, source: string) =>
    `CREATE TEMPORARY TABLE ${probe} ON COMMIT DROP AS
     SELECT row_number() OVER () AS ${q(PROBE_ORDINAL)}, s.* FROM (${source}) AS s`,
  count: (probe: string) => `SELECT count(*) AS rows FROM ${probe}`,
  /** The probe's rows numbered `$1` to `$2`, as a source for `upsertFrom`. */
  range: (e: ResolvedEntity, probe: string) =>
    `SELECT ${list(e.meta.columns)} FROM ${probe} WHERE ${q(PROBE_ORDINAL)} BETWEEN $1 AND $2`,
  key: (e: ResolvedEntity, probe: string) =>
    `SELECT ${list(e.meta.keyColumns)} FROM ${probe} WHERE ${q(PROBE_ORDINAL)} = $1`,
  drop: (probe: string) => `DROP TABLE IF EXISTS ${probe}`,
};

// ---- site: the skips a site remembers (DESIGN §3.5, §6) -----------------------------------------

/**
 * A remote row skipped for want of a parent is not on the site, so without more its bucket would
 * differ in every run, and a tenant with a few orphans spread over its associations would compare
 * most of them every time. The site remembers each skipped row's key and reference columns (as
 * text, in `keyAndReferenceColumns` order) and its row hash; the fingerprint counts a remembered
 * skip as a site row while one of its parents is still missing. Nothing rests on the memory being
 * right: a wrong entry makes its bucket differ, and the comparison of that bucket replaces it.
 */
export const SKIPPED_ROWS_TABLE = 'meter_sync_skipped_row';

/** The remembered skips of `e` as rows typed as on the site, with `row` (as stored) and `hash`; `name` is the SQL of the entity's name. */
function rememberedRows(e: ResolvedEntity, name: string): string {
  const columns = keyAndReferenceColumns(e.meta);
  return `SELECT ${columns.map((c, i) => `m.row[${i + 1}]::${e.types[c]} AS ${q(c)}`).join(', ')}, m.row, m.hash
    FROM ${q(SKIPPED_ROWS_TABLE)} AS m WHERE m.entity = ${name}`;
}

/** For a reference of a row `m` (typed): its parent is on the site, or staged when `parents` says so. */
function parentPresent(
  reference: ParentReference,
  parent: ResolvedEntity,
  staged: boolean,
  m: string,
): string {
  const onSite = `EXISTS (SELECT 1 FROM ${parent.table} AS p WHERE ${referenceMatch(reference, parent, 'p', m, false)})`;
  if (!staged) return onSite;
  const match = Object.entries(reference.columns)
    .map(([child, key]) => `ps.${q(key)}::${parent.types[key]} = ${m}.${q(child)}`)
    .join(' AND ');
  return `(${onSite} OR EXISTS (SELECT 1 FROM ${parent.stage} AS ps WHERE ${match}))`;
}

/** The remembered skips of an entity that still stand, as `(b, h, r)`: bucket, row hash, 1. */
function standingSkips(
  e: ResolvedEntity,
  kind: Buckets['kind'],
  parents: ParentState,
  values: readonly string[],
  name: string,
): string {
  return `SELECT ${bucketOf(e, 'm', kind, values)} AS b, m.hash AS h, 1 AS r FROM (${rememberedRows(e, name)}) AS m
         WHERE ${stillSkipped(e, parents, 'm')}`;
}

/** True for a remembered skip `m` that still is one: a parent of it is neither on the site nor staged. */
function stillSkipped(e: ResolvedEntity, parents: ParentState, m: string): string {
  const present = (e.meta.parents ?? []).map((reference) => {
    const { entity, staged } = parents(reference.entity);
    return parentPresent(reference, entity, staged, m);
  });
  return present.length > 0 ? `NOT (${present.join(' AND ')})` : 'FALSE';
}

/** True for a remembered skip `m` (typed, not a site row) in a compared region. */
function inCompared(e: ResolvedEntity, region: Region, m: string): string {
  if (region.kind !== 'ranges') return inRegion(e, region, m);
  return `EXISTS (SELECT 1 FROM ${region.table} AS g WHERE ${firstKey(e, m)} BETWEEN g.lo AND g.hi)`;
}

export const skippedSql = {
  /**
   * The first remembered skips (`$2` of them, in the byte order of their keys' text) that still
   * stand, outside `compared`: key and reference columns as text, and `m0`, `m1`, … whether each
   * parent is missing. `$1` is the entity's name.
   */
  sample: (e: ResolvedEntity, parents: ParentState, compared: Region) => {
    const columns = keyAndReferenceColumns(e.meta);
    const missing = (e.meta.parents ?? []).map((reference, i) => {
      const { entity, staged } = parents(reference.entity);
      return `NOT ${parentPresent(reference, entity, staged, 'm')} AS m${i}`;
    });
    return `SELECT ${columns.map((c) => `m.${q(c)}::text AS ${q(c)}`).join(', ')}, ${missing.join(', ')}
      FROM (${rememberedRows(e, '$1')}) AS m
      WHERE ${stillSkipped(e, parents, 'm')} AND NOT (${inCompared(e, compared, 'm')})
      ORDER BY ${e.meta.keyColumns.map((k) => `m.${q(k)}::text COLLATE "C"`).join(', ')} LIMIT $2`;
  },
  /** Forgets the remembered skips of `e` in the region its comparison compared (`$1` its name): the run decides them again. */
  forget: (e: ResolvedEntity, compared: Region) =>
    `DELETE FROM ${q(SKIPPED_ROWS_TABLE)} AS d WHERE d.entity = $1 AND d.row IN (
      SELECT m.row FROM (${rememberedRows(e, '$1')}) AS m WHERE ${inCompared(e, compared, 'm')})`,
  /** Remembers the staged rows of `e` (`$1` its name) whose parents are not all on the site. */
  /** Remembers the staged rows the step skipped (`skipped`, as `applySql.createSkipped` made it). */
  rememberStaged: (e: ResolvedEntity, skipped: string) =>
    `INSERT INTO ${q(SKIPPED_ROWS_TABLE)} (entity, row, hash)
      SELECT $1, ARRAY[${list(keyAndReferenceColumns(e.meta), 's')}]::text[], ${rowHash(e, 's')}
      FROM ${e.stage} AS s WHERE EXISTS (SELECT 1 FROM ${skipped} AS k WHERE ${stagedKeyMatch(e, 'k', 's')})
      ON CONFLICT (entity, row) DO UPDATE SET hash = EXCLUDED.hash`,
  /** Remembers rows given as one text array per key and reference column, then their hashes (`$1` the entity's name). */
  rememberListed: (e: ResolvedEntity) => {
    const columns = keyAndReferenceColumns(e.meta);
    const arrays = [...columns.map((_, i) => `$${i + 2}::text[]`), `$${columns.length + 2}::bigint[]`];
    return `INSERT INTO ${q(SKIPPED_ROWS_TABLE)} (entity, row, hash)
      SELECT $1, ARRAY[${columns.map((_, i) => `u.c${i}`).join(', ')}]::text[], u.h
      FROM unnest(${arrays.join(', ')}) AS u (${columns.map((_, i) => `c${i}`).join(', ')}, h)
      ON CONFLICT (entity, row) DO UPDATE SET hash = EXCLUDED.hash`;
  },
  forgetAll: `DELETE FROM ${q(SKIPPED_ROWS_TABLE)} WHERE entity = $1`,
};
