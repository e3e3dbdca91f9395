/**
 * The site side: catalog lookups, the run lock, staging remote rows, and the set-based writes.
 * It implements the generic row functions of the seed (get, upsert, delete by key) on the same
 * SQL the engine uses, so there is one way to write a row.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Client, escapeIdentifier } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { RowChange } from '../engine/sync-result';
import type { EntityMetadata, ParentReference } from '../entities';
import { SiteSchemaError } from '../errors';
import { arrayLiteral, booleanArrayLiteral } from './array-literal';
import { copyOut } from './copy-out';
import type { KeyHashDiff } from './key-hash-merge';
import { formatKey, type Row, TEXT_TYPES } from './rows';
import { keyValuesOf, parentMissing, type SkippedRow } from './skipped-rows';
import {
  applicableRows,
  applySql,
  type BucketFingerprint,
  type Buckets,
  bucketValues,
  changeSql,
  deleteListed,
  fingerprintMemorySql,
  fingerprintSql,
  type GoneParts,
  INTEGER_TYPES,
  keyAndReferenceColumns,
  type ParentLookup,
  type ParentState,
  type PlannedParent,
  type PlanTables,
  planSql,
  type Region,
  type ResolvedEntity,
  regionSql,
  rowHash,
  sampleSql,
  selectRows,
  siteSql,
  skippedSql,
  unnestSource,
  unpackFingerprints,
  upsertFrom,
} from './sync-sql';

// Any constant works; it only has to be the same for every run against one site database.
export const SITE_LOCK_KEY = '7305818813071261000';
const ROW_BATCH = 5_000;
/** Bytes per row assumed for a table the server has not counted yet. */
const ROW_BYTES_GUESS = 128;

export type { SkippedRow } from './skipped-rows';

interface ForeignKey {
  name: string;
  definition: string;
}

/** How long a first load waits for the locks that setting its foreign keys aside takes (site readers of its tables). */
const SUSPEND_LOCK_TIMEOUT = '2s';
const INSUFFICIENT_PRIVILEGE = '42501';
const LOCK_NOT_AVAILABLE = '55P03';

export interface WriteCounts {
  inserted: number;
  updated: number;
}

/** What a plan's `gone` table holds (planSql.goneCounts). */
export interface GoneCounts {
  /** Rows the remote means to delete (bounces aside), pinned or not: what the mass-delete guard weighs. */
  intended: number;
  /** Rows the delete step removes, bounces included. */
  deletes: number;
  /** Rows removed for good: not pinned, not bounced. */
  dead: number;
  /** Rows removed and inserted again (their parent row is); `changedBounces` of them with new text. */
  bounces: number;
  changedBounces: number;
  /** Deletes skipped because rows the run keeps reference them; `pinnedUnstaged` of them gone from the remote. */
  pinned: number;
  pinnedUnstaged: number;
  /** Pinned rows of any kind, bounces included: they pin the parent rows they reference. */
  pinnedAll: number;
}

export interface TableShape {
  bytes: number;
  rows: number;
  /** The first and last value of an integer first key column. */
  keys?: { lo: bigint; hi: bigint };
}

/** A site sample (see `sampleSql`): its first-key range, row count, and keys and hashes as array text. */
export interface SiteSample {
  lo: string;
  hi: string;
  rows: number;
  keys: string[];
  hashes: string;
}

export interface KeyDiff {
  region: Region & { kind: 'keys' };
  /** Keys to fetch from the remote: new or changed rows. */
  fetch: number;
  /** Differing keys that the site holds (changed, or only on the site). */
  onSite: number;
  /** The remote's rows in the region. */
  remoteRows: number;
}

/**
 * What a kept fingerprint was computed from: the key, each column with its type on the site, and
 * the row hash itself, so that a release that hashes rows differently never trusts an older one.
 */
function tableSignature(e: ResolvedEntity): string {
  return JSON.stringify([e.meta.keyColumns, e.meta.columns.map((c) => [c, e.types[c]]), rowHash(e, 't')]);
}

/**
 * A table's fingerprint as a run keeps it; `remoteHorizon` when it is the remote's too, as of that
 * remote snapshot (sync-sql's `remoteBucketsSince` counts the rows written after it).
 */
export interface KeptFingerprint {
  readonly buckets: Buckets;
  readonly packed: string;
  readonly remoteHorizon?: string;
}

/** Buckets as kept with a fingerprint: JSON, the range's bigints as text. */
function formatBuckets(buckets: Buckets): string {
  return JSON.stringify(buckets, (_, value) => (typeof value === 'bigint' ? String(value) : value));
}

function parseBuckets(text: string): Buckets {
  const b = JSON.parse(text) as {
    kind: string;
    lo?: string;
    hi?: string;
    width?: string;
    bounds?: string[];
    mask?: number;
  };
  if (b.kind === 'range')
    return { kind: 'range', lo: BigInt(b.lo!), hi: BigInt(b.hi!), width: BigInt(b.width!) };
  if (b.kind === 'bounds') return { kind: 'bounds', bounds: b.bounds! };
  return { kind: 'hash', mask: b.mask! };
}

function temporaryName(purpose: string, e: ResolvedEntity): string {
  return `pg_temp.${escapeIdentifier(`meter_sync_${purpose}_${e.meta.name}`)}`;
}

/** What an upsert step applies of the stage: `skipped` names the table of the keys it skips, if any. */
export interface Applicability {
  readonly total: number;
  readonly applicable: number;
  readonly skipped?: string;
}

function count(value: unknown): number {
  return Number(value ?? 0);
}

export class SiteDatabase {
  constructor(readonly client: Client) {}

  /** Binds an entity to this site: its table must exist with every declared column. */
  async resolve(meta: EntityMetadata, stageName = `meter_sync_stage_${meta.name}`): Promise<ResolvedEntity> {
    const table = escapeIdentifier(meta.table);
    const { rows } = await this.client.query<{ name: string; type: string }>(siteSql.columnTypes, [table]);
    if (rows.length === 0) {
      throw new SiteSchemaError(
        'SITE_SCHEMA_MISMATCH',
        `${meta.name}: table ${table} does not exist on the site`,
      );
    }
    const types: Record<string, string> = {};
    for (const row of rows) types[row.name] = row.type;
    const missing = meta.columns.filter((c) => !(c in types));
    if (missing.length > 0) {
      throw new SiteSchemaError(
        'SITE_SCHEMA_MISMATCH',
        `${meta.name}: site table ${table} has no column ${missing.join(', ')}`,
      );
    }
    return { meta, table, types, stage: `pg_temp.${escapeIdentifier(stageName)}` };
  }

  /** Takes the run lock for the current transaction; false when another run holds it. */
  async tryLock(): Promise<boolean> {
    const { rows } = await this.client.query<{ locked: boolean }>(siteSql.tryLock, [SITE_LOCK_KEY]);
    return rows[0]?.locked === true;
  }

  /** The tenant the site is bound to, or undefined before the first run that committed (DESIGN §3.11). */
  async boundTenant(): Promise<number | undefined> {
    const { rows } = await this.client.query<{ tenant_id: number }>(siteSql.boundTenant);
    return rows[0]?.tenant_id;
  }

  /** Binds the site to a tenant, in the run's transaction: it commits with the rows of that tenant. */
  async bindTenant(tenantId: number): Promise<void> {
    await this.client.query(siteSql.bindTenant, [tenantId]);
  }

  /** Fills the entity's stage table from a COPY text stream; returns the number of rows. */
  async stage(e: ResolvedEntity, source: Readable): Promise<number> {
    await this.client.query(siteSql.createStage(e));
    const sink = this.client.query(copyFrom(siteSql.copyIntoStage(e)));
    await pipeline(source, sink);
    // Temporary tables are never analyzed automatically; the plans below join on them.
    await this.client.query(siteSql.analyzeStage(e));
    return sink.rowCount;
  }

  async countRows(e: ResolvedEntity): Promise<number> {
    const { rows } = await this.client.query(siteSql.countRows(e));
    return count(rows[0]?.rows);
  }

  /**
   * How many staged rows there are, and how many of them have all their parents on the site now;
   * `skipped`, when some have not: the table of their keys, which the step's other statements join.
   */
  async countApplicable(e: ResolvedEntity, parents: ParentLookup): Promise<Applicability> {
    const { rows } = await this.client.query(applySql.countStaged(e));
    const total = count(rows[0]?.total);
    if ((e.meta.parents ?? []).length === 0 || total === 0) return { total, applicable: total };
    // Made after the apply's savepoint: a step planned again (after a failed one) rolled it back.
    const table = temporaryName('skipped', e);
    const created = await this.client.query(applySql.createSkipped(e, parents, table));
    const skipped = created.rowCount ?? 0;
    return skipped === 0
      ? { total, applicable: total }
      : { total, applicable: total - skipped, skipped: table };
  }

  /** The first staged rows (in key order) the step skips, and which parent is missing. */
  async sampleSkipped(
    e: ResolvedEntity,
    parents: ParentLookup,
    skipped: string,
    limit: number,
  ): Promise<SkippedRow[]> {
    const { rows } = await this.client.query<Row>({
      text: applySql.sampleSkipped(e, parents, skipped),
      values: [limit],
      types: TEXT_TYPES,
    });
    return rows.map((row) => parentMissing(e.meta, row));
  }

  async upsertApplicable(e: ResolvedEntity, skipped: string | undefined): Promise<WriteCounts> {
    return this.writeCounts(upsertFrom(e, applicableRows(e, skipped)));
  }

  // ---- the plan of a run (DESIGN §3.5, §3.12, §3.13; sync-sql's planSql) ----

  /** For the rest of the run's transaction (planSql.noMergeJoins says why). */
  async preferKeyProbes(): Promise<void> {
    await this.client.query(planSql.noMergeJoins);
  }

  planTables(e: ResolvedEntity): PlanTables {
    return {
      skip: temporaryName('skip', e),
      gone: temporaryName('gone', e),
      added: temporaryName('added', e),
      pins: temporaryName('pins', e),
      before: temporaryName('before', e),
    };
  }

  /** Drops what an earlier plan of the entity left, so that it is planned afresh. */
  async dropPlan(t: PlanTables, { pins }: { pins: boolean }): Promise<void> {
    await this.client.query(planSql.drop([t.skip, t.gone, t.added, ...(pins ? [t.pins] : [])]));
  }

  /** Creates the entity's (empty) `pins` table, in place of one an earlier plan left. */
  async createPins(e: ResolvedEntity, t: PlanTables): Promise<void> {
    await this.client.query(planSql.drop([t.pins]));
    await this.client.query(planSql.createPins(e, t));
  }

  /** Stages the site rows outside the compared region that reference `parent` rows the run removes; returns how many. */
  async stageChildrenOfGone(
    e: ResolvedEntity,
    reference: ParentReference,
    parentTables: PlanTables,
  ): Promise<number> {
    const result = await this.client.query(planSql.stageChildrenOfGone(e, reference, parentTables));
    const rows = result.rowCount ?? 0;
    if (rows > 0) await this.client.query(siteSql.analyzeStage(e));
    return rows;
  }

  /** Creates the plan's `skip` table; returns its rows. */
  async createSkip(
    e: ResolvedEntity,
    t: PlanTables,
    parents: readonly { reference: ParentReference; parent: PlannedParent }[],
  ): Promise<number> {
    const result = await this.client.query(planSql.createSkip(e, t.skip, parents));
    await this.client.query(planSql.analyze(t.skip));
    return result.rowCount ?? 0;
  }

  /** Creates the plan's `gone` table, with the pins found so far. */
  async createGone(e: ResolvedEntity, t: PlanTables, parts: GoneParts, pins: boolean): Promise<void> {
    for (const sql of planSql.createGone(e, t, parts)) await this.client.query(sql);
    if (pins) await this.client.query(planSql.applyPins(e, t));
    await this.client.query(planSql.analyze(t.gone));
  }

  async markChangedBounces(e: ResolvedEntity, t: PlanTables): Promise<void> {
    const sql = planSql.markChangedBounces(e, t);
    if (sql) await this.client.query(sql);
  }

  /** Pins the `gone` rows that rows of `child` reference (all its rows, or those its plan pins); returns how many. */
  async pinReferenced(
    e: ResolvedEntity,
    t: PlanTables,
    child: ResolvedEntity,
    reference: ParentReference,
    reason: string,
    childTables?: PlanTables,
  ): Promise<number> {
    const result = await this.client.query(planSql.pinReferenced(e, t, child, reference, childTables), [
      reason,
    ]);
    return result.rowCount ?? 0;
  }

  async goneCounts(t: PlanTables): Promise<GoneCounts> {
    const { rows } = await this.client.query(planSql.goneCounts(t));
    const r = rows[0] ?? {};
    return {
      intended: count(r.intended),
      deletes: count(r.deletes),
      dead: count(r.dead),
      bounces: count(r.bounces),
      changedBounces: count(r.changed_bounces),
      pinned: count(r.pinned),
      pinnedUnstaged: count(r.pinned_unstaged),
      pinnedAll: count(r.pinned_all),
    };
  }

  /** Creates the plan's `added` table; returns its rows. */
  async createAdded(e: ResolvedEntity, t: PlanTables, withSkip: boolean): Promise<number> {
    const result = await this.client.query(planSql.createAdded(e, t, withSkip));
    await this.client.query(planSql.analyze(t.added));
    return result.rowCount ?? 0;
  }

  /** The delete step: removes the planned rows; returns how many. */
  async deleteGone(e: ResolvedEntity, t: PlanTables): Promise<number> {
    const result = await this.client.query(planSql.deleteGone(e, t));
    return result.rowCount ?? 0;
  }

  /** The first deletes the plan skips because rows the run keeps reference them, with the reason. */
  async samplePinned(e: ResolvedEntity, t: PlanTables, limit: number): Promise<SkippedRow[]> {
    const { rows } = await this.client.query<Row>({
      text: planSql.samplePinned(e, t),
      values: [limit],
      types: TEXT_TYPES,
    });
    return rows.map((row) => ({
      key: formatKey(e.meta.keyColumns, row),
      keyValues: keyValuesOf(e.meta, row),
      reason: String(row.reason),
    }));
  }

  // ---- a plan's row-level changes (sync-sql's changeSql) ----

  /** Copies the site rows the apply may change, as they are before it (after each plan of the run). */
  async captureBefore(e: ResolvedEntity, t: PlanTables): Promise<void> {
    await this.client.query(planSql.drop([t.before]));
    await this.client.query(changeSql.captureBefore(e, t));
  }

  /** After the apply: the rows it inserted, updated or deleted, in key order, `limit` at most. */
  async listChanges(e: ResolvedEntity, t: PlanTables, limit: number): Promise<RowChange[]> {
    return this.changes(e, changeSql.listChanges(e, t), limit);
  }

  /** An entity loaded straight into its empty table: every row an insert. */
  async listLoaded(e: ResolvedEntity, limit: number): Promise<RowChange[]> {
    return this.changes(e, changeSql.listLoaded(e), limit);
  }

  private async changes(e: ResolvedEntity, text: string, limit: number): Promise<RowChange[]> {
    const { rows } = await this.client.query<Row>({ text, values: [limit], types: TEXT_TYPES });
    const { keyColumns, columns } = e.meta;
    return rows.map((row) => {
      const key = Object.fromEntries(keyColumns.map((k, i) => [k, row[`k${i}`] ?? null]));
      const was = row.was_present === 't';
      const is = row.is_present === 't';
      const values = columns.map((c, i) => ({
        column: c,
        site: was ? (row[`b${i}`] ?? null) : null,
        remote: is ? (row[`a${i}`] ?? null) : null,
      }));
      const op = !was ? 'insert' : !is ? 'delete' : 'update';
      const shown = op === 'update' ? values.filter((v) => v.site !== v.remote) : values;
      return {
        op,
        key,
        columns: Object.fromEntries(shown.map((v) => [v.column, { site: v.site, remote: v.remote }])),
      };
    });
  }

  // ---- fingerprints and regions (DESIGN §6) ----

  async isEmpty(e: ResolvedEntity): Promise<boolean> {
    const { rows } = await this.client.query(regionSql.siteIsEmpty(e));
    return rows[0]?.empty === true;
  }

  /** Row count and xor of row hashes per bucket of the whole table. */
  async bucketFingerprints(e: ResolvedEntity, buckets: Buckets): Promise<Map<number, BucketFingerprint>> {
    const { rows } = await this.client.query(
      fingerprintSql.siteBuckets(e, buckets.kind),
      bucketValues(buckets),
    );
    return unpackFingerprints(rows[0]?.packed ?? null);
  }

  /**
   * `bucketFingerprints` of the table and the skips the site remembers that still stand, with how
   * many of those each bucket holds.
   */
  async bucketFingerprintsWithSkips(
    e: ResolvedEntity,
    buckets: Buckets,
    parents: ParentState,
  ): Promise<{ fingerprints: Map<number, BucketFingerprint>; remembered: Map<number, number> }> {
    const { rows } = await this.client.query(fingerprintSql.siteBucketsWithSkips(e, buckets.kind, parents), [
      ...bucketValues(buckets),
      e.meta.name,
    ]);
    const remembered = new Map<number, number>();
    for (const entry of String(rows[0]?.remembered ?? '').split(',')) {
      const [b, r] = entry.split(':');
      if (r !== undefined) remembered.set(Number(b), Number(r));
    }
    return { fingerprints: unpackFingerprints(rows[0]?.packed ?? null), remembered };
  }

  /**
   * The per-bucket fingerprints of the skips the site remembers that still stand, alone: what a
   * kept fingerprint of the table leaves out (compare-entity adds them; perform-sync takes them
   * away from the remote's before keeping one).
   */
  async standingSkipFingerprints(
    e: ResolvedEntity,
    buckets: Buckets,
    parents: ParentState,
  ): Promise<Map<number, BucketFingerprint>> {
    const { rows } = await this.client.query(fingerprintSql.standingSkipBuckets(e, buckets.kind, parents), [
      ...bucketValues(buckets),
      e.meta.name,
    ]);
    return unpackFingerprints(rows[0]?.packed ?? null);
  }

  private keeping: Promise<boolean> | undefined;

  /**
   * Whether the role may read and keep fingerprints (migration 6's tables): a role granted only
   * what older builds needed still syncs, scanning every table as they did.
   */
  keepsFingerprints(): Promise<boolean> {
    this.keeping ??= this.client
      .query<{ may: boolean }>(fingerprintMemorySql.mayKeep)
      .then(({ rows }) => rows[0]?.may === true);
    return this.keeping;
  }

  /**
   * The fingerprint of the table an earlier run kept, when it can still be trusted (sync-sql's
   * fingerprintMemorySql), and the snapshot a fingerprint kept by this run is taken after;
   * `noted` is false when the table has no trigger noting its writes (none is then kept).
   */
  async rememberedFingerprint(
    e: ResolvedEntity,
    maxAgeSeconds: number,
  ): Promise<{ snapshot: string; noted: boolean; remembered?: KeptFingerprint }> {
    const { rows } = await this.client.query(fingerprintMemorySql.read, [
      e.meta.name,
      e.table,
      tableSignature(e),
      maxAgeSeconds,
    ]);
    const row = rows[0] ?? {};
    const noted = row.noted === true;
    // Without its trigger on, a table's writes go unnoted: what was kept proves nothing.
    const kept = noted
      ? (row.remembered as { buckets: string; packed: string; horizon: string | null } | null)
      : null;
    if (!kept) return { snapshot: String(row.snapshot), noted };
    const remembered: KeptFingerprint = {
      buckets: parseBuckets(kept.buckets),
      packed: kept.packed,
      ...(kept.horizon ? { remoteHorizon: kept.horizon } : {}),
    };
    return { snapshot: String(row.snapshot), noted, remembered };
  }

  /** Keeps the table's fingerprint, as its rows stand at the end of this transaction, for the runs after it. */
  async keepFingerprint(e: ResolvedEntity, kept: KeptFingerprint & { snapshot: string }): Promise<void> {
    await this.client.query(fingerprintMemorySql.keep, [
      e.meta.name,
      e.table,
      tableSignature(e),
      formatBuckets(kept.buckets),
      kept.packed,
      kept.snapshot,
      kept.remoteHorizon ?? null,
    ]);
  }

  /** Forgets the noted writes no kept fingerprint needs. */
  async forgetWrites(): Promise<void> {
    await this.client.query(fingerprintMemorySql.forgetWrites);
  }

  // ---- the skips the site remembers (sync-sql's skippedSql) ----

  /** The first remembered skips outside `compared` that still stand, in the byte order of their keys. */
  async sampleRemembered(
    e: ResolvedEntity,
    parents: ParentState,
    compared: Region,
    limit: number,
  ): Promise<SkippedRow[]> {
    const { rows } = await this.client.query<Row>({
      text: skippedSql.sample(e, parents, compared),
      values: [e.meta.name, limit],
      types: TEXT_TYPES,
    });
    return rows.map((row) => parentMissing(e.meta, row));
  }

  /**
   * After the entity's upsert: the skips of its compared region are the staged rows it skipped
   * (`skipped`: their keys' table, when there are any; none, and nothing is scanned).
   */
  async rememberSkips(e: ResolvedEntity, compared: Region, skipped: string | undefined): Promise<void> {
    await this.client.query(skippedSql.forget(e, compared), [e.meta.name]);
    if (skipped !== undefined) await this.client.query(skippedSql.rememberStaged(e, skipped), [e.meta.name]);
  }

  /** After a first load: its skips are those the remote listed (key and reference columns as text, and hash). */
  async rememberLoadSkips(e: ResolvedEntity, rows: readonly Row[]): Promise<void> {
    await this.client.query(skippedSql.forgetAll, [e.meta.name]);
    if (rows.length === 0) return;
    const columns = keyAndReferenceColumns(e.meta);
    await this.client.query(skippedSql.rememberListed(e), [
      e.meta.name,
      ...columns.map((c) => rows.map((row) => row[c] ?? null)),
      rows.map((row) => row.h),
    ]);
  }

  /** The rows of some key-hash buckets, as a region. */
  async createBucketRegion(e: ResolvedEntity, buckets: readonly number[], mask: number): Promise<Region> {
    const table = temporaryName('buckets', e);
    await this.client.query(fingerprintSql.createBucketTable(table));
    await this.client.query(fingerprintSql.fillBucketTable(table), [buckets]);
    return { kind: 'buckets', table, mask };
  }

  /** The rows whose first key lies in some ranges (bounds as decimal text, inclusive), as a region. */
  async createRangeRegion(e: ResolvedEntity, lo: readonly string[], hi: readonly string[]): Promise<Region> {
    const table = temporaryName('ranges', e);
    await this.client.query(fingerprintSql.createRangeTable(e, table), [arrayLiteral(lo), arrayLiteral(hi)]);
    await this.client.query(`ANALYZE ${table}`);
    return { kind: 'ranges', table };
  }

  /**
   * The keys and row hashes of up to `rows` site rows from the first key `from` on, as text
   * parameters for the remote's side of the sample; none when no row lies there.
   */
  async sampleRows(e: ResolvedEntity, from: string, rows: number): Promise<SiteSample | undefined> {
    const { rows: found } = await this.client.query({
      text: sampleSql.siteRows(e),
      values: [String(from), rows],
    });
    const sample = found[0];
    if (sample === undefined) return undefined;
    const keys = e.meta.keyColumns.map((_, i) => String(sample[`k${i}`]));
    return { lo: sample.lo, hi: sample.hi, rows: count(sample.rows), keys, hashes: sample.h };
  }

  /** The first keys of a sample of the table's pages (`percent` of them), sorted, as text. */
  async sampleFirstKeys(e: ResolvedEntity, percent: number): Promise<string[]> {
    const { rows } = await this.client.query<{ k: string }>(sampleSql.firstKeys(e), [percent]);
    return rows.map((row) => row.k);
  }

  /**
   * The table's size on disk, an estimate of its rows (from the size, before any ANALYZE), and its
   * first and last first key when that is an integer column and the table has rows.
   */
  async tableShape(e: ResolvedEntity): Promise<TableShape> {
    const { rows } = await this.client.query(sampleSql.tableShape(e), [e.table]);
    const { bytes, rows: estimate, lo, hi } = rows[0] ?? {};
    const size = count(bytes);
    const shape = {
      bytes: size,
      rows: Number(estimate ?? -1) >= 0 ? Number(estimate) : Math.round(size / ROW_BYTES_GUESS),
    };
    const integerKey = INTEGER_TYPES.has(e.types[e.meta.keyColumns[0]!]!);
    return integerKey && lo != null && hi != null
      ? { ...shape, keys: { lo: BigInt(lo), hi: BigInt(hi) } }
      : shape;
  }

  /** Loads the remote's key and row hashes of a bucket region and keeps the keys that differ. */
  async diffByHashes(e: ResolvedEntity, region: Region, hashes: Readable): Promise<KeyDiff> {
    const hashTable = temporaryName('hashes', e);
    const diff = temporaryName('diff', e);
    await this.client.query(regionSql.createHashTable(e, hashTable));
    const sink = this.client.query(copyFrom(regionSql.copyIntoHashTable(e, hashTable)));
    await pipeline(hashes, sink);
    await this.client.query(`ANALYZE ${hashTable}`);
    await this.client.query(regionSql.createDiffTable(e, diff, hashTable, region));
    await this.client.query(`ANALYZE ${diff}`);
    const { rows } = await this.client.query(regionSql.diffCounts(diff));
    return {
      region: { kind: 'keys', table: diff },
      fetch: count(rows[0]?.fetch),
      onSite: count(rows[0]?.on_site),
      remoteRows: sink.rowCount,
    };
  }

  /**
   * Streams the key and row hash of the region's site rows (in key order if asked) to `consume`.
   * If the consumer gives up, the rest is read and dropped so that the connection stays usable.
   */
  async readKeyHashes<T>(
    e: ResolvedEntity,
    region: Region,
    inKeyOrder: boolean,
    consume: (lines: Readable) => Promise<T>,
  ): Promise<T> {
    // The sort of a million keys and hashes fits in memory this way; the site database is ours.
    if (inKeyOrder) await this.client.query(`SELECT set_config('work_mem', '128MB', true)`);
    const lines = this.client.query(copyOut(regionSql.copySiteKeyHashes(e, region, inKeyOrder)));
    const ended = new Promise<void>((resolve) => {
      lines.once('end', resolve);
      lines.on('error', () => resolve());
    });
    try {
      return await consume(lines);
    } catch (error) {
      lines.resume();
      await ended;
      throw error;
    }
  }

  /** Keeps the keys a merge found different as the region of the apply steps. */
  async createKeyDiff(e: ResolvedEntity, diff: KeyHashDiff): Promise<Region & { kind: 'keys' }> {
    const table = temporaryName('diff', e);
    const keys = [...diff.changed, ...diff.remoteOnly, ...diff.siteOnly];
    const columns = e.meta.keyColumns.map(() => [] as string[]);
    for (const key of keys) {
      const values = columns.length === 1 ? [key] : key.split('\t');
      for (const [i, column] of columns.entries()) column.push(values[i]!);
    }
    const siteOnly = keys.map((_, i) => i >= diff.changed.length + diff.remoteOnly.length);
    const onSite = keys.map((_, i) => i < diff.changed.length || siteOnly[i]!);
    await this.client.query(regionSql.createDiffTableFrom(e, table), [
      ...columns.map(arrayLiteral),
      booleanArrayLiteral(siteOnly),
      booleanArrayLiteral(onSite),
    ]);
    await this.client.query(`ANALYZE ${table}`);
    return { kind: 'keys', table };
  }

  /** The keys to fetch from the remote, as one array literal per key column (server text). */
  async fetchKeyArrays(e: ResolvedEntity, diff: Region & { kind: 'keys' }): Promise<string[]> {
    const { rows } = await this.client.query({
      text: regionSql.fetchKeyArrays(e, diff.table),
      rowMode: 'array',
    });
    return (rows[0] as string[]).map(String);
  }

  /**
   * A first load: the remote's COPY stream straight into the site table. The table's foreign keys
   * are set aside for the COPY and added back after it, in the same transaction: each then checks
   * every row in one join, where in place it checks them one by one, at three times the cost of
   * the COPY. Where they cannot be set aside (the role does not own the table, or another session
   * holds a lock on it or a parent), they stay and check each row.
   */
  async loadDirect(e: ResolvedEntity, source: Readable): Promise<number> {
    const suspended = await this.suspendForeignKeys(e);
    const sink = this.client.query(copyFrom(regionSql.copyIntoTable(e)));
    await pipeline(source, sink);
    if (suspended.length > 0) await this.client.query(siteSql.addConstraints(e, suspended));
    return sink.rowCount;
  }

  /** Drops the table's foreign keys for the rest of the transaction; returns them, none when it may not. */
  private async suspendForeignKeys(e: ResolvedEntity): Promise<ForeignKey[]> {
    const { rows } = await this.client.query<ForeignKey>(siteSql.foreignKeys, [e.table]);
    if (rows.length === 0) return [];
    const { rows: setting } = await this.client.query<{ value: string }>(siteSql.lockTimeout);
    await this.client.query('SAVEPOINT suspend_foreign_keys');
    try {
      await this.client.query(siteSql.setLockTimeout, [SUSPEND_LOCK_TIMEOUT]);
      await this.client.query(
        siteSql.dropConstraints(
          e,
          rows.map((row) => row.name),
        ),
      );
      await this.client.query('RELEASE SAVEPOINT suspend_foreign_keys');
      await this.client.query(siteSql.setLockTimeout, [setting[0]?.value ?? '0']);
      return rows;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== INSUFFICIENT_PRIVILEGE && code !== LOCK_NOT_AVAILABLE) throw error;
      // Undoes the lock timeout too.
      await this.client.query('ROLLBACK TO SAVEPOINT suspend_foreign_keys');
      return [];
    }
  }

  // ---- the generic row functions (seed tasks 3-5) ----

  /** All site rows of an entity as server text, in key order. */
  async getRows(e: ResolvedEntity): Promise<Row[]> {
    const { rows } = await this.client.query<Row>({ text: selectRows(e), types: TEXT_TYPES });
    return rows;
  }

  /** Inserts or updates rows (composite keys, ON CONFLICT); a row whose text is unchanged is not written. */
  async upsertRows(e: ResolvedEntity, rows: readonly Row[]): Promise<WriteCounts> {
    const total: WriteCounts = { inserted: 0, updated: 0 };
    for (let start = 0; start < rows.length; start += ROW_BATCH) {
      const batch = rows.slice(start, start + ROW_BATCH);
      const params = e.meta.columns.map((c) => batch.map((row) => row[c] ?? null));
      const counts = await this.writeCounts(upsertFrom(e, unnestSource(e.meta.columns)), params);
      total.inserted += counts.inserted;
      total.updated += counts.updated;
    }
    return total;
  }

  /** Deletes the rows with the given keys; returns how many existed. */
  async deleteRows(e: ResolvedEntity, keys: readonly Row[]): Promise<number> {
    let deleted = 0;
    for (let start = 0; start < keys.length; start += ROW_BATCH) {
      const batch = keys.slice(start, start + ROW_BATCH);
      const params = e.meta.keyColumns.map((c) => batch.map((row) => row[c] ?? null));
      const result = await this.client.query(deleteListed(e, unnestSource(e.meta.keyColumns)), params);
      deleted += result.rowCount ?? 0;
    }
    return deleted;
  }

  private async writeCounts(sql: string, params?: unknown[]): Promise<WriteCounts> {
    const { rows } = await this.client.query(sql, params);
    return { inserted: count(rows[0]?.inserted), updated: count(rows[0]?.updated) };
  }
}
