/**
 * Decides how much of an entity a run has to move, and stages exactly that (DESIGN §6):
 *
 * 1. An empty site table of an entity without parents is filled by a straight COPY pipe.
 * 2. Otherwise both sides compute, at once, a row count and an xor of 64-bit row hashes per
 *    coarse key-hash bucket: all equal means nothing changed, for a scan on each side and a few
 *    kilobytes.
 * 3. A few differing coarse buckets: both sides fingerprint only their rows, in fine buckets, and
 *    the remote's rows of the differing fine buckets are staged.
 * 4. Changes in most buckets (or too many rows in the fine ones): both sides' key hashes are
 *    compared key by key, and only the rows whose hash differs are fetched; when most differ, the
 *    region is staged whole.
 *
 * Whatever is not staged was proved equal, so the apply steps leave it alone and count it as
 * unchanged. Shortcuts need parents that this run does not change; otherwise everything is staged.
 */

import { Readable } from 'node:stream';
import { canMergeKeys, mergeKeyHashes } from '../db/key-hash-merge';
import type { RemoteSnapshot } from '../db/remote-database';
import type { SiteDatabase } from '../db/site-database';
import {
  type BucketFingerprint,
  type FingerprintRow,
  fingerprintMap,
  fingerprintSql,
  keySetting,
  MASK_SETTING,
  REGION_SETTING,
  type Region,
  type ResolvedEntity,
  regionSql,
  remoteSql,
} from '../db/sync-sql';

export type Comparison =
  /** Site and remote hold the same rows: nothing to apply. */
  | { readonly mode: 'equal'; readonly rows: number }
  /** The site table was empty and has been filled straight from the remote. */
  | { readonly mode: 'loaded'; readonly rows: number }
  /** `staged` remote rows are in the stage table; `knownEqual` site rows were proved equal. */
  | {
      readonly mode: 'staged';
      readonly region: Region;
      readonly staged: number;
      readonly knownEqual: number;
      /** The site table's rows when the comparison counted them (not when staging everything). */
      readonly siteRows?: number;
    };

/**
 * Every comparison starts from coarse buckets, few enough that the remote's fingerprints of all
 * of them are a few kilobytes; the site fingerprints its rows in fine buckets in the same scan,
 * so that a few differing coarse buckets narrow to a few fine ones at the cost of hashing only
 * their rows again on the remote.
 */
const COARSE_MASK = 63;
const FINE_MASK = 16_383;
/** More differing coarse buckets than this share: changes are everywhere, go to the keys. */
const BROAD_CHANGE_SHARE = 0.5;
/** Differing buckets holding at most this many rows (or share of the table) are staged whole. */
const SMALL_REGION_ROWS = 2_000;
const SMALL_REGION_SHARE = 0.02;
/** When more than this share of a region's rows changed, fetching by key costs more than it saves. */
const MAX_FETCH_SHARE = 0.5;

interface DifferingBucket {
  b: number;
  remoteRows: number;
  siteRows: number;
}

interface CompareContext {
  site: SiteDatabase;
  remote: RemoteSnapshot;
  tenantId: number;
  /** False when a parent is changed by this run: the child must then be compared whole. */
  shortcuts: boolean;
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

export async function compareEntity(ctx: CompareContext, e: ResolvedEntity): Promise<Comparison> {
  const { site, remote } = ctx;
  if (!ctx.shortcuts) return stageAll(ctx, e);
  const name = e.meta.name;
  if ((e.meta.parents ?? []).length === 0 && (await site.isEmpty(e))) {
    const rows = await remote.copyOut(remoteSql.copySlice(e.meta), name, (stream) =>
      site.loadDirect(e, stream),
    );
    return { mode: 'loaded', rows };
  }

  // One scan on each side at once; equal coarse buckets everywhere end it here, which is most runs.
  const [siteCoarse, remoteCoarse] = await Promise.all([
    site.bucketFingerprints(e, COARSE_MASK),
    remote.query<FingerprintRow>(fingerprintSql.remoteBuckets(e), [ctx.tenantId, COARSE_MASK], name),
  ]);
  const siteRows = [...siteCoarse.values()].reduce((total, f) => total + f.n, 0);
  const remoteByBucket = fingerprintMap(remoteCoarse);
  const coarse = differingBuckets(siteCoarse, remoteByBucket);
  if (coarse.length === 0) return { mode: 'equal', rows: siteRows };

  // Changes in most coarse buckets: fine buckets would all differ too, so compare keys at once.
  const occupied = new Set([...siteCoarse.keys(), ...remoteByBucket.keys()]);
  if (coarse.length > BROAD_CHANGE_SHARE * occupied.size) {
    const region: Region =
      coarse.length === occupied.size ? { kind: 'all' } : await bucketRegion(ctx, e, coarse, COARSE_MASK);
    return compareKeys(ctx, e, region, {
      siteRows,
      siteInRegion: sum(coarse, 'siteRows'),
      remoteInRegion: sum(coarse, 'remoteRows'),
    });
  }

  // Both sides fingerprint the rows of the differing coarse buckets in fine buckets, hashing only
  // those rows; the site keeps them, so that the fine buckets that differ name its region's rows.
  const within = coarse.map((d) => d.b);
  const [siteFine, remoteFine] = await Promise.all([
    site.regionRows(e, FINE_MASK, COARSE_MASK, within),
    remote.query<FingerprintRow>(
      fingerprintSql.remoteBuckets(e, true),
      [ctx.tenantId, FINE_MASK, COARSE_MASK, within],
      name,
    ),
  ]);
  const fine = differingBuckets(siteFine.fingerprints, fingerprintMap(remoteFine));
  const counts = {
    siteRows,
    siteInRegion: sum(fine, 'siteRows'),
    remoteInRegion: sum(fine, 'remoteRows'),
  };
  const regionRows = Math.max(counts.siteInRegion, counts.remoteInRegion);
  if (regionRows <= Math.max(SMALL_REGION_ROWS, SMALL_REGION_SHARE * siteRows)) {
    const buckets = fine.map((d) => d.b);
    const [region] = await Promise.all([
      site.narrowRegion(siteFine.table, buckets),
      setRemoteRegion(ctx, buckets, FINE_MASK),
    ]);
    const staged = await remote.copyOut(regionSql.copyBuckets(e), name, (rows) => site.stage(e, rows));
    return { mode: 'staged', region, staged, knownEqual: siteRows - counts.siteInRegion, siteRows };
  }
  return compareKeys(ctx, e, await bucketRegion(ctx, e, fine, FINE_MASK), counts);
}

/** Names the region's buckets to the remote: COPY statements read them from settings. */
async function setRemoteRegion(ctx: CompareContext, buckets: readonly number[], mask: number): Promise<void> {
  await ctx.remote.setSetting(MASK_SETTING, String(mask));
  await ctx.remote.setSetting(REGION_SETTING, `{${buckets.join(',')}}`);
}

/** The rows of some buckets, on both sides: a bucket table on the site, settings on the remote. */
async function bucketRegion(
  ctx: CompareContext,
  e: ResolvedEntity,
  buckets: readonly DifferingBucket[],
  mask: number,
): Promise<Region> {
  const numbers = buckets.map((d) => d.b);
  const [region] = await Promise.all([
    ctx.site.createBucketRegion(e, numbers, mask),
    setRemoteRegion(ctx, numbers, mask),
  ]);
  return region;
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
  const staged = await ctx.remote.copyOut(regionSql.copyBuckets(e), e.meta.name, (rows) =>
    ctx.site.stage(e, rows),
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
 * Narrows a region to the keys whose row hash differs, and stages only those rows. Integer keys
 * are merged from both sides' ordered streams at once; other keys are diffed by the site from the
 * remote's hashes. When most rows of the region differ, the region is staged whole instead.
 */
async function compareKeys(
  ctx: CompareContext,
  e: ResolvedEntity,
  region: Region,
  counts: RegionCounts,
): Promise<Comparison> {
  const { site, remote } = ctx;
  const name = e.meta.name;
  const fetchLimit = MAX_FETCH_SHARE * counts.remoteInRegion;
  let diff: Region & { kind: 'keys' };
  let fetch: number;
  let onSite: number;
  if (canMergeKeys(e.meta.keyColumns.map((k) => e.types[k]!))) {
    const merged = await remote.copyOut(
      regionSql.copyKeyHashesInOrder(e, region.kind !== 'all'),
      name,
      (remoteLines) =>
        site.readKeyHashesInOrder(e, region, (siteLines) =>
          // Beyond the fetch limit the region is staged whole: the keys need not be kept.
          mergeKeyHashes(
            remoteLines,
            siteLines,
            e.meta.keyColumns.length,
            Math.ceil(fetchLimit) + counts.siteInRegion,
          ),
        ),
    );
    fetch = merged.changed.length + merged.remoteOnly.length;
    if (merged.overflow || fetch > fetchLimit) return stageRegion(ctx, e, region, counts);
    diff = await site.createKeyDiff(e, merged);
    onSite = merged.changed.length + merged.siteOnly.length;
  } else {
    const hashed = await remote.copyOut(regionSql.copyHashes(e, region.kind !== 'all'), name, (hashes) =>
      site.diffByHashes(e, region, hashes),
    );
    if (hashed.fetch > fetchLimit) return stageRegion(ctx, e, region, counts);
    ({ region: diff, fetch, onSite } = hashed);
  }
  // Only deletions: nothing to fetch, and the stage stays empty.
  if (fetch === 0)
    return {
      mode: 'staged',
      region: diff,
      staged: await site.stage(e, Readable.from([])),
      knownEqual: counts.siteRows - onSite,
      siteRows: counts.siteRows,
    };
  const keyArrays = await site.fetchKeyArrays(e, diff);
  for (const [i, array] of keyArrays.entries()) await remote.setSetting(keySetting(i), array);
  const staged = await remote.copyOut(regionSql.copyKeys(e), name, (rows) => site.stage(e, rows));
  return {
    mode: 'staged',
    region: diff,
    staged,
    knownEqual: counts.siteRows - onSite,
    siteRows: counts.siteRows,
  };
}
