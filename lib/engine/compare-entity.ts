/**
 * Decides how much of an entity a run has to move, and stages exactly that (DESIGN §6):
 *
 * 1. An empty site table is filled by a straight COPY pipe, when the entity has no parents or its
 *    parents were all filled so in the run: the remote keeps back the rows whose parents that load
 *    left out (orphans, rows of other tenants' parents), and names some of them.
 * 2. A large table with integer keys is sampled: a short key range compared key by key. Changes
 *    in it mean changes everywhere, and every key is compared at once (step 4, whole table).
 * 3. Otherwise both sides compute, at once, a row count and an xor of 64-bit row hashes per
 *    bucket (key ranges of an integer first key, else key hashes): all equal means nothing
 *    changed, for a scan on each side and at most about 20 KB. A table whose fingerprint an
 *    earlier run kept, and that no one has written since, is not scanned: the remote's
 *    fingerprints are compared with the kept ones (perform-sync keeps them), plus, for an entity
 *    with parents, the skips the site remembers that still stand (they depend on the parents, so
 *    they are read again in every run; the kept fingerprint is the table's alone).
 * 4. Differing buckets holding few rows are staged whole. Otherwise both sides' key hashes of the
 *    differing buckets (of all, when most differ) are compared key by key (dense integer keys by
 *    slot, as they come; other integer keys merged in key order; other keys diffed by the site),
 *    and only the rows whose hash differs are fetched; when most differ, the region is staged
 *    whole. The rows of a few key ranges are found through the key's index on both sides.
 *
 * Whatever is not staged was proved equal, so the apply steps leave it alone and count it as
 * unchanged, whatever the run does to the entity's parents: the plan (plan-run.ts) finds the
 * children of the parent rows it removes, and a row skipped for want of a parent differs from the
 * site, so it is staged again in the run that brings the parent.
 */

import { Readable } from 'node:stream';
import { arrayLiteral } from '../db/array-literal';
import {
  canMergeKeys,
  compareKeyHashesBySlot,
  compareKeyHashesInTable,
  keySlots,
  mergeKeyHashes,
  type TableKey,
  tableKeyOf,
  tableKeys,
} from '../db/key-hash-merge';
import type { RemoteSnapshot } from '../db/remote-database';
import type { KeptFingerprint, SiteDatabase, TableShape } from '../db/site-database';
import { parentMissing, type SkippedRow } from '../db/skipped-rows';
import {
  BOUNDED_TYPES,
  type BucketFingerprint,
  type Buckets,
  bigIntToUuid,
  bucketValues,
  fingerprintSql,
  keySetting,
  MASK_SETTING,
  type MetadataLookup,
  type ParentState,
  packFingerprints,
  RANGES_HI_SETTING,
  RANGES_LO_SETTING,
  REGION_SETTING,
  type Region,
  type RemoteRegion,
  type ResolvedEntity,
  regionSql,
  remoteSql,
  remoteTableName,
  remoteVersioned,
  rowsCounted,
  sampleSql,
  unpackFingerprints,
  uuidToBigInt,
} from '../db/sync-sql';

export type Comparison =
  /**
   * Site and remote hold the same rows: nothing to apply. `skipped` remote rows are skips the site
   * remembers from earlier runs that still stand; `skips` names the first of them.
   */
  | {
      readonly mode: 'equal';
      readonly rows: number;
      readonly skipped: number;
      readonly skips: readonly SkippedRow[];
      readonly memo?: FingerprintMemo;
    }
  /**
   * The site table was empty and has been filled straight from the remote: `rows` of the slice's
   * `remoteRows`; the others lack a parent, and `skips` names the first of them.
   */
  | {
      readonly mode: 'loaded';
      readonly rows: number;
      readonly remoteRows: number;
      readonly skips: readonly SkippedRow[];
    }
  /** `staged` remote rows are in the stage table; `knownEqual` site rows were proved equal. */
  | {
      readonly mode: 'staged';
      readonly region: Region;
      readonly staged: number;
      readonly knownEqual: number;
      /** The site table's rows when the comparison counted them (not when staging everything). */
      readonly siteRows?: number;
      /**
       * For an entity with parents: the region whose remembered skips the run decides again (the
       * differing buckets), and how many outside it still stand, skipped again without staging.
       */
      readonly remembered?: RememberedSkips;
      readonly memo?: FingerprintMemo;
    };

/**
 * The fingerprint a run may keep for the runs after it (migration 6): the remote's, which is the
 * site's once the run has made its rows equal, and the site snapshot it holds against.
 */
export interface FingerprintMemo {
  readonly buckets: Buckets;
  readonly packed: string;
  readonly snapshot: string;
  /** The remote snapshot the fingerprint is the remote's at, for a `remoteVersioned` entity. */
  readonly remoteHorizon?: string;
  /** The site's fingerprints were an earlier run's: an equal table keeps that one. */
  readonly remembered: boolean;
}

export interface RememberedSkips {
  readonly compared: Region;
  readonly kept: number;
}

/**
 * Buckets of the fingerprint: about `BUCKET_ROWS` rows each, so that a few changes narrow the
 * comparison to a few hundred rows each, at most `MAX_BUCKETS`, so that the remote's fingerprints
 * of all of them stay under 20 KB, and at least `MIN_BUCKETS`.
 */
const BUCKET_ROWS = 256;
const MIN_BUCKETS = 64;
const MAX_BUCKETS = 1_024;
/** More differing buckets than this share: changes are everywhere, compare every key. */
const BROAD_CHANGE_SHARE = 0.5;
/** Differing buckets holding at most this many rows are staged whole. */
const SMALL_REGION_ROWS = 2_000;
/** When more than this share of a region's rows changed, fetching by key costs more than it saves. */
const MAX_FETCH_SHARE = 0.5;
/**
 * A first load remembers at most this many of the rows it skipped (more cost their transfer on
 * every first load of a broken slice); the others are found again by the next run's comparison.
 */
const MAX_REMEMBERED_SKIPS = 100_000;
/** The remote's work_mem for the sort of a merge or the joins of a first load's kept-back rows, for the rest of the snapshot. */
const REMOTE_SORT_MEMORY = '64MB';
/** Differing keys kept in memory at most; beyond, the region is staged whole. */
const MAX_KEPT_KEYS = 500_000;
/**
 * Tables from this size on are sampled before they are fingerprinted: a key range of
 * `SAMPLE_ROWS` site rows compared key by key costs milliseconds, and when it holds
 * `SAMPLE_BROAD_CHANGES` changes or more, the buckets would almost all differ, so the keys are
 * compared at once and the fingerprint scan is saved.
 *
 * A uuid key's rows lie in the table in the order they came, not the key's: each row of a key
 * range is on a page of its own, so a range of 4,096 cost 110 ms on each side, in every run of
 * a million-row table (bench 7c, 7d). Its sample is a quarter of that, for the same rate of
 * change (2 of 1,024).
 */
const SAMPLE_MIN_BYTES = 16 * 1024 * 1024;
const SAMPLE_ROWS = 4_096;
const SAMPLE_BROAD_CHANGES = 8;
const SCATTERED_SAMPLE_ROWS = 1_024;
/** The sample starts at a random point of the first 90% of the key range: new rows go at its end. */
const SAMPLE_SPAN = 0.9;
/**
 * How long a kept fingerprint of the site is trusted in place of a scan of its table. Writes end it
 * at once (they are noted by a trigger); the limit bounds what a write no trigger saw (one made
 * with the trigger disabled, then enabled again) can leave unrepaired.
 */
const REMEMBER_SECONDS = 3_600;

interface DifferingBucket {
  b: number;
  remoteRows: number;
  siteRows: number;
}

interface CompareContext {
  site: SiteDatabase;
  remote: RemoteSnapshot;
  tenantId: number;
  /** Stage the whole slice, proving nothing equal (a first load the site refused, staged to find the row). */
  stageAll?: boolean;
  /** Whether an entity was filled straight from the remote in this run (mode `loaded`). */
  loaded: (name: string) => boolean;
  metaOf: MetadataLookup;
  /** How many skipped rows a first load names. */
  skipSample: number;
  /** The parents as the comparison of a child sees them: whether the skips the site remembers still stand. */
  parents: ParentState;
}

function differingBuckets(
  site: ReadonlyMap<number, BucketFingerprint>,
  remote: ReadonlyMap<number, BucketFingerprint>,
): DifferingBucket[] {
  const differing: DifferingBucket[] = [];
  for (const b of new Set([...site.keys(), ...remote.keys()])) {
    const s = site.get(b);
    const r = remote.get(b);
    if (s?.n !== r?.n || s?.x !== r?.x) differing.push({ b, remoteRows: r?.n ?? 0, siteRows: s?.n ?? 0 });
  }
  return differing;
}

const sum = (buckets: readonly DifferingBucket[], side: 'remoteRows' | 'siteRows') =>
  buckets.reduce((total, d) => total + d[side], 0);

async function stageAll(ctx: CompareContext, e: ResolvedEntity, siteRows?: number): Promise<Comparison> {
  const staged = await ctx.remote.copyOut(remoteSql.copySlice(e.meta), e.meta.name, (rows) =>
    ctx.site.stage(e, rows),
  );
  return {
    mode: 'staged',
    region: { kind: 'all' },
    staged,
    knownEqual: 0,
    ...(siteRows === undefined ? {} : { siteRows }),
  };
}

/**
 * A first load into the empty table. Its parents, if any, were loaded from the same snapshot, so
 * the remote knows which rows their site tables hold: the slice's others are skipped.
 */
async function load(ctx: CompareContext, e: ResolvedEntity): Promise<Comparison> {
  const { site, remote } = ctx;
  const { meta } = e;
  if ((meta.parents ?? []).length === 0) {
    const rows = await remote.copyOut(remoteSql.copySlice(meta), meta.name, (stream) =>
      site.loadDirect(e, stream),
    );
    return { mode: 'loaded', rows, remoteRows: rows, skips: [] };
  }
  // The remote finds the rows it kept back (hashing the parents' keys and the slice in memory: at
  // 4 MB the slice's hash spilled to disk) as soon as its COPY is over, while the site still
  // writes the last rows (of a million associations, the last half second) and then checks
  // them against its foreign keys.
  const [rows, unloadable = []] = await remote.copyOutThen(
    remoteSql.copyLoadable(meta, ctx.metaOf),
    meta.name,
    (stream) => site.loadDirect(e, stream),
    () =>
      remote
        .setSetting('work_mem', REMOTE_SORT_MEMORY)
        .then(() =>
          remote.queryText(
            remoteSql.unloadable(e, ctx.metaOf),
            [ctx.tenantId, Math.max(ctx.skipSample, MAX_REMEMBERED_SKIPS)],
            meta.name,
          ),
        ),
  );
  await site.rememberLoadSkips(e, unloadable);
  const remoteRows = rows + Number(unloadable[0]?.skipped ?? 0);
  const skips = unloadable.slice(0, ctx.skipSample).map((row) => parentMissing(meta, row));
  return { mode: 'loaded', rows, remoteRows, skips };
}

/**
 * The site's fingerprints, and how many standing skips each bucket counts: the kept ones when
 * `kept` (plus the standing skips of an entity with parents, read without the table), else the
 * table's scan (with those skips).
 */
async function siteFingerprints(
  ctx: CompareContext,
  e: ResolvedEntity,
  buckets: Buckets,
  kept: string | undefined,
): Promise<{ fingerprints: Map<number, BucketFingerprint>; remembered: Map<number, number> }> {
  const hasParents = (e.meta.parents ?? []).length > 0;
  if (hasParents)
    return kept === undefined
      ? ctx.site.bucketFingerprintsWithSkips(e, buckets, ctx.parents)
      : withSkips(unpackFingerprints(kept), await ctx.site.standingSkipFingerprints(e, buckets, ctx.parents));
  const fingerprints =
    kept === undefined ? await ctx.site.bucketFingerprints(e, buckets) : unpackFingerprints(kept);
  return { fingerprints, remembered: new Map() };
}

interface RemoteFingerprints {
  readonly fingerprints: Map<number, BucketFingerprint>;
  /** The slice's first and last key, for range buckets. */
  readonly lo: string | null;
  readonly hi: string | null;
  /** This snapshot, for a later run to count new rows from (`remoteVersioned` entities). */
  readonly horizon?: string;
  /** The kept fingerprints are still the remote's, as of their horizon: nothing was written since. */
  readonly asKept: boolean;
}

interface PackedRow {
  packed: string | null;
  lo: string | null;
  hi: string | null;
  horizon?: string;
}

/**
 * The remote's fingerprints. A slice read from its table alone, whose fingerprint an earlier run
 * kept with its snapshot, hashes only the rows written since (`fromHorizon`); other slices, and
 * that one when its horizon proves nothing, hash every row.
 */
async function remoteFingerprints(
  ctx: CompareContext,
  e: ResolvedEntity,
  buckets: Buckets,
  kept: KeptFingerprint | undefined,
  siteKeys: { lo: bigint; hi: bigint } | undefined,
): Promise<RemoteFingerprints> {
  const values = [ctx.tenantId, ...bucketValues(buckets)];
  if (!remoteVersioned(e.meta)) {
    const [row] = await ctx.remote.query<PackedRow>(
      fingerprintSql.remoteBuckets(e, buckets.kind),
      values,
      e.meta.name,
    );
    return { ...outerKeys(row), fingerprints: unpackFingerprints(row?.packed ?? null), asKept: true };
  }
  const horizon = kept?.remoteHorizon?.match(HORIZON);
  const since = horizon && (await fromHorizon(ctx, e, buckets, kept!, horizon, siteKeys));
  if (since) return since;
  const [row] = await ctx.remote.query<PackedRow>(
    fingerprintSql.remoteBuckets(e, buckets.kind, true),
    [...values, remoteTableName(e.meta)],
    e.meta.name,
  );
  return {
    ...outerKeys(row),
    fingerprints: unpackFingerprints(row?.packed ?? null),
    ...(row?.horizon ? { horizon: row.horizon } : {}),
    asKept: false,
  };
}

const outerKeys = (row: PackedRow | undefined) => ({ lo: row?.lo ?? null, hi: row?.hi ?? null });

/** A horizon (sync-sql's `remoteHorizon`): its server, database and table, then its snapshot. */
const HORIZON = /^([^@]+)@(\d+:\d+:[\d,]*)$/;

/**
 * The remote's fingerprints from the kept ones (the remote's at the horizon's snapshot) and the
 * rows written since. A bucket's rows older than the horizon were all in that snapshot, so when
 * there are as many as it counted, they are the same rows: the bucket is the kept one with the
 * new rows' hashes added. Where there are fewer (rows updated or deleted since), the bucket's rows
 * are hashed again, found by their key ranges when buckets are ranges. Undefined when the horizon
 * proves nothing: another server, database or table, or a snapshot not later than it.
 */
async function fromHorizon(
  ctx: CompareContext,
  e: ResolvedEntity,
  buckets: Buckets,
  kept: KeptFingerprint,
  [horizon, source, snapshot]: RegExpMatchArray,
  siteKeys: { lo: bigint; hi: bigint } | undefined,
): Promise<RemoteFingerprints | undefined> {
  // Its xmin is read only from the very table the horizon was taken of: a view of the same name has none.
  const [current] = await ctx.remote.query<{ horizon: string | null }>(
    fingerprintSql.remoteHorizon(),
    [remoteTableName(e.meta)],
    e.meta.name,
  );
  if (current?.horizon?.match(HORIZON)?.[1] !== source) return undefined;
  const [row] = await ctx.remote.query<PackedRow & { fresh: string | null; usable: boolean }>(
    fingerprintSql.remoteBucketsSince(e, buckets.kind),
    [ctx.tenantId, ...bucketValues(buckets), remoteTableName(e.meta), snapshot],
    e.meta.name,
  );
  if (!row?.horizon || row.usable !== true || row.horizon.match(HORIZON)?.[1] !== source) return undefined;
  const now = unpackFingerprints(row.packed);
  const fresh = new Map(
    (row.fresh ?? '')
      .split(',')
      .filter(Boolean)
      .map((p) => p.split(':').map(Number) as [number, number]),
  );
  const before = unpackFingerprints(kept.packed);
  const fingerprints = new Map<number, BucketFingerprint>();
  const rehash: number[] = [];
  for (const [b, all] of now) {
    const added = fresh.get(b) ?? 0;
    const was = before.get(b) ?? { n: 0, x: 0n };
    if (all.n - added === was.n) fingerprints.set(b, { n: all.n, x: was.x ^ all.x });
    else rehash.push(b);
  }
  const keys = outerKeys(row);
  if (rehash.length > 0) {
    const region = await remoteBucketRegion(ctx, rehash, buckets, keys, siteKeys);
    const [again] = await ctx.remote.query<PackedRow>(
      fingerprintSql.remoteRegionBuckets(e, buckets.kind, region),
      bucketValues(buckets),
      e.meta.name,
    );
    const hashed = unpackFingerprints(again?.packed ?? null);
    for (const b of rehash) {
      const f = hashed.get(b);
      if (f) fingerprints.set(b, f);
    }
  }
  const asKept = rehash.length === 0 && fresh.size === 0 && now.size === before.size;
  return { ...keys, fingerprints, horizon: asKept ? horizon : row.horizon, asKept };
}

/** A table's kept fingerprints with its standing skips added (into `table`), and how many of those each bucket holds. */
function withSkips(
  table: Map<number, BucketFingerprint>,
  skips: ReadonlyMap<number, BucketFingerprint>,
): { fingerprints: Map<number, BucketFingerprint>; remembered: Map<number, number> } {
  const remembered = new Map<number, number>();
  for (const [b, skip] of skips) {
    const rows = table.get(b);
    table.set(b, rows ? { n: rows.n + skip.n, x: rows.x ^ skip.x } : skip);
    remembered.set(b, skip.n);
  }
  return { fingerprints: table, remembered };
}

/**
 * The fingerprints of a table equal to the remote but for its standing skips: the remote's with
 * the skips taken away, or undefined when a skip is not among the remote's rows (the table is
 * then not what the skips say, and nothing is kept).
 */
export function withoutSkips(
  remote: ReadonlyMap<number, BucketFingerprint>,
  skips: ReadonlyMap<number, BucketFingerprint>,
): Map<number, BucketFingerprint> | undefined {
  const table = new Map(remote);
  for (const [b, skip] of skips) {
    const rows = table.get(b);
    if (!rows || rows.n < skip.n) return undefined;
    const left = { n: rows.n - skip.n, x: rows.x ^ skip.x };
    if (left.n === 0 && left.x !== 0n) return undefined;
    if (left.n === 0) table.delete(b);
    else table.set(b, left);
  }
  return table;
}

/** A staged comparison of an entity with parents decides again the remembered skips of the region it compared. */
function remembering(comparison: Comparison, e: ResolvedEntity, compared: Region, kept = 0): Comparison {
  if (comparison.mode !== 'staged' || (e.meta.parents ?? []).length === 0) return comparison;
  return { ...comparison, remembered: { compared, kept } };
}

export async function compareEntity(ctx: CompareContext, e: ResolvedEntity): Promise<Comparison> {
  const { site } = ctx;
  const all: Region = { kind: 'all' };
  if (ctx.stageAll) return remembering(await stageAll(ctx, e), e, all);
  if ((e.meta.parents ?? []).every((p) => ctx.loaded(p.entity)) && (await site.isEmpty(e)))
    return load(ctx, e);
  const shape = await site.tableShape(e);
  if (await changedThroughout(ctx, e, shape))
    return remembering(
      inMemory(e, shape) ? await mergeKeys(ctx, e, all, shape) : await diffKeys(ctx, e, all),
      e,
      all,
    );

  // One scan on each side at once; equal buckets everywhere end it here, which is most runs. A
  // table may have its fingerprint from the run before: then only the remote scans, and the site
  // adds to the kept one the skips it remembers that still stand (read without the table).
  const memory = (await site.keepsFingerprints())
    ? await site.rememberedFingerprint(e, REMEMBER_SECONDS)
    : undefined;
  const kept = memory?.remembered;
  const buckets = kept?.buckets ?? (await chooseBuckets(site, e, shape));
  const [siteSide, remoteSide] = await Promise.all([
    siteFingerprints(ctx, e, buckets, kept?.packed),
    remoteFingerprints(ctx, e, buckets, kept, shape.keys),
  ]);
  const siteBuckets = siteSide.fingerprints;
  const remembered = (b: number) => siteSide.remembered.get(b) ?? 0;
  const remoteBuckets = remoteSide.fingerprints;
  const allRemembered = [...siteSide.remembered.values()].reduce((total, r) => total + r, 0);
  // The table's rows: the buckets count the remembered skips too.
  const siteRows = rowsCounted(siteBuckets) - allRemembered;
  const memo: FingerprintMemo | undefined = memory?.noted
    ? {
        buckets,
        packed: packFingerprints(remoteBuckets),
        snapshot: memory.snapshot,
        // Kept again when the remote's horizon moved: the next run then hashes fewer rows.
        remembered: kept !== undefined && remoteSide.asKept,
        ...(remoteSide.horizon === undefined ? {} : { remoteHorizon: remoteSide.horizon }),
      }
    : undefined;
  const differing = differingBuckets(siteBuckets, remoteBuckets);
  if (differing.length === 0) {
    const skips =
      allRemembered > 0 ? await site.sampleRemembered(e, ctx.parents, { kind: 'none' }, ctx.skipSample) : [];
    return { mode: 'equal', rows: siteRows, skipped: allRemembered, skips, ...(memo ? { memo } : {}) };
  }

  const occupied = new Set([...siteBuckets.keys(), ...remoteBuckets.keys()]);
  // Changes in most buckets: every key is compared, those of the equal buckets too. Streaming
  // them costs less than finding the differing buckets' rows range by range on both sides: for a
  // slice joined to its parents, once per range (fleet churn: 83 ms against 33 ms for the whole).
  const broad = differing.length > BROAD_CHANGE_SHARE * occupied.size;
  const rememberedInRegion = broad
    ? allRemembered
    : differing.reduce((total, d) => total + remembered(d.b), 0);
  const counts = broad
    ? { siteRows, siteInRegion: siteRows, remoteInRegion: rowsCounted(remoteBuckets) }
    : {
        siteRows,
        siteInRegion: sum(differing, 'siteRows') - rememberedInRegion,
        remoteInRegion: sum(differing, 'remoteRows'),
      };
  const region: Region = broad ? all : await bucketRegion(ctx, e, differing, buckets, remoteSide, shape.keys);
  // A few changes: their buckets' rows are fewer than the keys would be to compare.
  const staged =
    !broad && Math.max(counts.siteInRegion, counts.remoteInRegion) <= SMALL_REGION_ROWS
      ? await stageRegion(ctx, e, region, counts)
      : await compareKeys(ctx, e, region, shape, counts);
  const comparison = remembering(staged, e, region, allRemembered - rememberedInRegion);
  return memo && comparison.mode === 'staged' ? { ...comparison, memo } : comparison;
}

/** Key ranges of an integer first key column, when its values span less than this. */
const MAX_RANGE_SPAN = 2n ** 62n;
const MAX_KEY = 2n ** 63n - 1n;

/** A power of two: about `BUCKET_ROWS` rows a bucket, within the bounds. */
function bucketCount(rows: number): number {
  let buckets = MIN_BUCKETS;
  while (buckets < MAX_BUCKETS && buckets * BUCKET_ROWS < rows) buckets *= 2;
  return buckets;
}

/**
 * Ranges of the first key when it is an integer, bounds from a sample of the site's keys when it
 * is a uuid (both found by index later), else key hashes.
 */
async function chooseBuckets(site: SiteDatabase, e: ResolvedEntity, shape: TableShape): Promise<Buckets> {
  const count = bucketCount(shape.rows);
  const { keys } = shape;
  if (keys !== undefined && keys.hi - keys.lo < MAX_RANGE_SPAN) {
    const n = BigInt(count);
    const width = (keys.hi - keys.lo + n) / n;
    const hi = keys.lo + width * n - 1n;
    return { kind: 'range', lo: keys.lo, hi: hi > MAX_KEY ? MAX_KEY : hi, width };
  }
  if (BOUNDED_TYPES.has(e.types[e.meta.keyColumns[0]!]!)) {
    const bounds = await sampledBounds(site, e, shape.rows, count);
    if (bounds.length > 0) return { kind: 'bounds', bounds };
  }
  return { kind: 'hash', mask: count - 1 };
}

/** Sampled keys a bound apart: enough that the buckets they cut hold about as many rows each. */
const KEYS_PER_BOUND = 8;

/** `count - 1` sorted distinct first keys cutting the site's table in about equal parts, from a sample of its pages. */
async function sampledBounds(
  site: SiteDatabase,
  e: ResolvedEntity,
  rows: number,
  count: number,
): Promise<string[]> {
  const percent = Math.min(100, (100 * KEYS_PER_BOUND * count) / Math.max(rows, 1));
  const sample = await site.sampleFirstKeys(e, percent);
  const bounds: string[] = [];
  for (let i = 1; i < count; i++) {
    const key = sample[Math.floor((i * sample.length) / count)];
    if (key !== undefined && key !== bounds.at(-1)) bounds.push(key);
  }
  return bounds;
}

/** Sorted bucket numbers as runs of adjacent ones: the first and last of each. */
function adjacentRuns(numbers: readonly number[]): [number, number][] {
  const sorted = [...numbers].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    runs.push([sorted[i]!, sorted[j]!]);
    i = j + 1;
  }
  return runs;
}

/**
 * The key ranges of some range buckets, adjacent ones joined. The outer buckets reach the outer
 * keys of both sides: the remote's (`remote`) came with its fingerprints, the site's are its table's
 * now (`site`), which reach beyond the buckets when they are kept from an earlier run.
 */
function keyRanges(
  buckets: Buckets & { kind: 'range' | 'bounds' },
  numbers: readonly number[],
  remote: { lo: string | null; hi: string | null } | undefined,
  site: { lo: bigint; hi: bigint } | undefined,
): { lo: string[]; hi: string[] } {
  const runs = adjacentRuns(numbers);
  if (buckets.kind === 'bounds') return boundedRanges(buckets.bounds, runs);
  const lows = [buckets.lo, site?.lo ?? buckets.lo, remote?.lo == null ? buckets.lo : BigInt(remote.lo)];
  const highs = [buckets.hi, site?.hi ?? buckets.hi, remote?.hi == null ? buckets.hi : BigInt(remote.hi)];
  const first = lows.reduce((a, b) => (b < a ? b : a));
  const last = highs.reduce((a, b) => (b > a ? b : a));
  const lastBucket = Number((buckets.hi - buckets.lo) / buckets.width);
  return {
    lo: runs.map(([b]) => String(b === 0 ? first : buckets.lo + BigInt(b) * buckets.width)),
    hi: runs.map(([, b]) =>
      String(b === lastBucket ? last : buckets.lo + BigInt(b + 1) * buckets.width - 1n),
    ),
  };
}

const MAX_UUID = 2n ** 128n - 1n;

/**
 * The inclusive uuid ranges of runs of `bounds` buckets: bucket b holds bounds[b - 1] up to, not
 * including, bounds[b]; the outer ones reach the first and the last uuid.
 */
function boundedRanges(
  bounds: readonly string[],
  runs: readonly [number, number][],
): { lo: string[]; hi: string[] } {
  return {
    lo: runs.map(([b]) => bigIntToUuid(b === 0 ? 0n : uuidToBigInt(bounds[b - 1]!))),
    hi: runs.map(([, b]) => bigIntToUuid(b >= bounds.length ? MAX_UUID : uuidToBigInt(bounds[b]!) - 1n)),
  };
}

const keyTypes = (e: ResolvedEntity) => e.meta.keyColumns.map((k) => e.types[k]!);

/**
 * Where a sample of the keys starts: a random point of the first 90% of an integer key's range
 * (new rows go at its end), of a uuid's whole space; none for other keys.
 */
function sampleStart(e: ResolvedEntity, shape: TableShape): string | undefined {
  // In millionths, so that bigints stay exact.
  const at = BigInt(Math.floor(Math.random() * SAMPLE_SPAN * 1_000_000));
  const { keys } = shape;
  if (keys !== undefined && canMergeKeys(keyTypes(e)))
    return String(keys.lo + ((keys.hi - keys.lo) * at) / 1_000_000n);
  if (BOUNDED_TYPES.has(keyTypes(e)[0]!)) return bigIntToUuid((MAX_UUID * at) / 1_000_000n);
  return undefined;
}

/**
 * True when a sample of the table's keys shows changes spread so widely that the fingerprint
 * buckets would nearly all differ: only for large tables with integer keys (which can be merged) or uuid keys.
 */
async function changedThroughout(
  ctx: CompareContext,
  e: ResolvedEntity,
  shape: TableShape,
): Promise<boolean> {
  const from = sampleStart(e, shape);
  if (from === undefined || shape.bytes < SAMPLE_MIN_BYTES) return false;
  const rows = canMergeKeys(keyTypes(e)) ? SAMPLE_ROWS : SCATTERED_SAMPLE_ROWS;
  const sample = await ctx.site.sampleRows(e, from, rows);
  if (sample === undefined || sample.rows < rows / 2) return false;
  const [found] = await ctx.remote.query<{ differing: string }>(
    sampleSql.compareRemote(e),
    [ctx.tenantId, sample.lo, sample.hi, ...sample.keys, sample.hashes],
    e.meta.name,
  );
  return Number(found?.differing ?? 0) >= (SAMPLE_BROAD_CHANGES * rows) / SAMPLE_ROWS;
}

/**
 * The rows of some buckets, on both sides: a table of bucket numbers or key ranges on the site,
 * settings on the remote (COPY statements take no parameters). `remote`: the remote's outer keys;
 * `siteKeys`: the site's.
 */
async function bucketRegion(
  ctx: CompareContext,
  e: ResolvedEntity,
  differing: readonly DifferingBucket[],
  buckets: Buckets,
  remote: { lo: string | null; hi: string | null } | undefined,
  siteKeys: { lo: bigint; hi: bigint } | undefined,
): Promise<Region> {
  const numbers = differing.map((d) => d.b);
  let site: Promise<Region>;
  if (buckets.kind === 'hash') {
    site = ctx.site.createBucketRegion(e, numbers, buckets.mask);
  } else {
    const ranges = keyRanges(buckets, numbers, remote, siteKeys);
    site = ctx.site.createRangeRegion(e, ranges.lo, ranges.hi);
  }
  const [region] = await Promise.all([site, remoteBucketRegion(ctx, numbers, buckets, remote, siteKeys)]);
  return region;
}

/** Names some buckets' rows to the remote's statements, in its settings: their key ranges, or their numbers for hash buckets. */
async function remoteBucketRegion(
  ctx: CompareContext,
  numbers: readonly number[],
  buckets: Buckets,
  remote: { lo: string | null; hi: string | null } | undefined,
  siteKeys: { lo: bigint; hi: bigint } | undefined,
): Promise<RemoteRegion> {
  if (buckets.kind === 'hash') {
    await ctx.remote.setSetting(MASK_SETTING, String(buckets.mask));
    await ctx.remote.setSetting(REGION_SETTING, `{${numbers.join(',')}}`);
    return 'buckets';
  }
  const ranges = keyRanges(buckets, numbers, remote, siteKeys);
  await ctx.remote.setSetting(RANGES_LO_SETTING, arrayLiteral(ranges.lo));
  await ctx.remote.setSetting(RANGES_HI_SETTING, arrayLiteral(ranges.hi));
  return 'ranges';
}

/** How the remote's COPY statements select a region's rows. */
function remoteRegion(region: Region): RemoteRegion {
  if (region.kind === 'keys' || region.kind === 'none')
    throw new Error(`a ${region.kind} region is never read from the remote by buckets`);
  return region.kind;
}

interface RegionCounts {
  siteRows: number;
  siteInRegion: number;
  remoteInRegion: number;
}

/** Stages every remote row of the region (the remote's settings name its buckets). */
async function stageRegion(
  ctx: CompareContext,
  e: ResolvedEntity,
  region: Region,
  counts: RegionCounts,
): Promise<Comparison> {
  if (region.kind === 'all') return stageAll(ctx, e, counts.siteRows);
  const staged = await ctx.remote.copyOut(
    regionSql.copyRegion(e, remoteRegion(region)),
    e.meta.name,
    (rows) => ctx.site.stage(e, rows),
  );
  return {
    mode: 'staged',
    region,
    staged,
    knownEqual: counts.siteRows - counts.siteInRegion,
    siteRows: counts.siteRows,
  };
}

/**
 * Narrows a region to the keys whose row hash differs, and stages only those rows. Integer keys,
 * and a uuid key of up to MAX_TABLE_KEYS rows, are compared from both sides' streams at once
 * (mergeKeys); other keys are diffed by the site from the remote's hashes. When most rows of the region differ, the region is staged whole instead.
 */
function compareKeys(
  ctx: CompareContext,
  e: ResolvedEntity,
  region: Region,
  shape: TableShape,
  counts: RegionCounts,
): Promise<Comparison> {
  return inMemory(e, shape, counts)
    ? mergeKeys(ctx, e, region, shape, counts)
    : diffKeys(ctx, e, region, counts);
}

/**
 * A comparison by table, when the key fits in one (a uuid, one or two integer columns) and its
 * keys are few enough: the key, and how many keys the table is made for.
 */
function tableFor(e: ResolvedEntity, shape: TableShape, known?: RegionCounts): InTable | undefined {
  const key = tableKeyOf(keyTypes(e));
  if (key === undefined) return undefined;
  const keys = tableKeys(known ? Math.max(known.remoteInRegion, known.siteInRegion) : shape.rows);
  return keys === undefined ? undefined : { key, keys };
}

interface InTable {
  readonly key: TableKey;
  readonly keys: number;
}

/** Both sides' key hashes can be compared in this process: integer keys, or a key a table holds (`tableFor`). */
function inMemory(e: ResolvedEntity, shape: TableShape, known?: RegionCounts): boolean {
  return canMergeKeys(keyTypes(e)) || tableFor(e, shape, known) !== undefined;
}

/**
 * Keys of integers, or one uuid key: both sides' key hashes streamed at once and compared. One
 * integer key column whose site keys are dense enough is compared by slot, and a key of 128 bits
 * at most (a uuid, one or two integer columns) in a table, in any order, so that neither server
 * sorts; other keys, and more keys than a table holds, are merged in key order. Without counts,
 * the comparison counts.
 */
async function mergeKeys(
  ctx: CompareContext,
  e: ResolvedEntity,
  region: Region,
  shape: TableShape,
  known?: RegionCounts,
): Promise<Comparison> {
  const keep = known
    ? Math.min(MAX_KEPT_KEYS, Math.ceil(MAX_FETCH_SHARE * known.remoteInRegion) + known.siteInRegion)
    : MAX_KEPT_KEYS;
  const slots =
    e.meta.keyColumns.length === 1 && shape.keys !== undefined
      ? keySlots(shape.keys.lo, shape.keys.hi, shape.rows)
      : undefined;
  const table = slots === undefined ? tableFor(e, shape, known) : undefined;
  const inKeyOrder = slots === undefined && table === undefined;
  // The remote sorts its key hashes in memory instead of in temporary files: a million take 60 MB.
  if (inKeyOrder) await ctx.remote.setSetting('work_mem', REMOTE_SORT_MEMORY);
  const merged = await ctx.remote.copyOut(
    regionSql.copyKeyHashes(e, remoteRegion(region), inKeyOrder),
    e.meta.name,
    (remoteLines) =>
      ctx.site.readKeyHashes(e, region, inKeyOrder, (siteLines) =>
        table !== undefined
          ? compareKeyHashesInTable(remoteLines, siteLines, table.key, table.keys, keep)
          : slots === undefined
            ? mergeKeyHashes(remoteLines, siteLines, e.meta.keyColumns.length, keep)
            : compareKeyHashesBySlot(remoteLines, siteLines, slots, keep),
      ),
  );
  const counts = known ?? {
    siteRows: merged.siteRows,
    siteInRegion: merged.siteRows,
    remoteInRegion: merged.remoteRows,
  };
  const fetch = merged.changed.length + merged.remoteOnly.length;
  if (merged.overflow || fetch > MAX_FETCH_SHARE * counts.remoteInRegion)
    return stageRegion(ctx, e, region, counts);
  const diff = await ctx.site.createKeyDiff(e, merged);
  return stageKeys(ctx, e, diff, fetch, {
    siteRows: counts.siteRows,
    knownEqual: counts.siteRows - merged.changed.length - merged.siteOnly.length,
  });
}

/**
 * Other keys, whose order depends on collations: the site diffs the remote's key hashes. Without
 * counts (the whole table, not fingerprinted), the diff gives them: each key is on both sides, on
 * the remote's alone or on the site's alone, so the site holds the remote's rows less the first
 * (fetched, not on the site) plus the second (on the site, not fetched).
 */
async function diffKeys(
  ctx: CompareContext,
  e: ResolvedEntity,
  region: Region,
  known?: RegionCounts,
): Promise<Comparison> {
  const hashed = await ctx.remote.copyOut(
    regionSql.copyHashes(e, remoteRegion(region)),
    e.meta.name,
    (hashes) => ctx.site.diffByHashes(e, region, hashes),
  );
  const siteRows = known?.siteRows ?? hashed.remoteRows - hashed.fetch + hashed.onSite;
  const counts = known ?? { siteRows, siteInRegion: siteRows, remoteInRegion: hashed.remoteRows };
  if (hashed.fetch > MAX_FETCH_SHARE * counts.remoteInRegion) return stageRegion(ctx, e, region, counts);
  return stageKeys(ctx, e, hashed.region, hashed.fetch, {
    siteRows: counts.siteRows,
    knownEqual: counts.siteRows - hashed.onSite,
  });
}

/** Stages the remote rows of the differing keys that are not only on the site. */
async function stageKeys(
  ctx: CompareContext,
  e: ResolvedEntity,
  diff: Region & { kind: 'keys' },
  fetch: number,
  { siteRows, knownEqual }: { siteRows: number; knownEqual: number },
): Promise<Comparison> {
  const { site, remote } = ctx;
  // Only deletions: nothing to fetch, and the stage stays empty.
  if (fetch === 0)
    return {
      mode: 'staged',
      region: diff,
      staged: await site.stage(e, Readable.from([])),
      knownEqual,
      siteRows,
    };
  const keyArrays = await site.fetchKeyArrays(e, diff);
  for (const [i, array] of keyArrays.entries()) await remote.setSetting(keySetting(i), array);
  const staged = await remote.copyOut(regionSql.copyKeys(e), e.meta.name, (rows) => site.stage(e, rows));
  return { mode: 'staged', region: diff, staged, knownEqual, siteRows };
}
