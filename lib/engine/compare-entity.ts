/**
 * Decides how much of an entity a run has to move, and stages exactly that (DESIGN §6):
 *
 * 1. An empty site table of an entity without parents is filled by a straight COPY pipe.
 * 2. Otherwise both sides compute, at once, a row count and an xor of 64-bit row hashes of the
 *    whole slice: equal totals mean nothing changed, for a scan on each side and a few hundred
 *    bytes. If they differ, the site fingerprints its rows per key-hash bucket and the remote,
 *    given those as parameters, returns the buckets that differ.
 * 3. A few differing buckets are staged whole. Many differing buckets are narrowed to the keys
 *    whose row hash differs, and only those rows are fetched.
 *
 * Whatever is not staged was proved equal, so the apply steps leave it alone and count it as
 * unchanged. Shortcuts need parents that this run does not change; otherwise everything is staged.
 */

import { Readable } from 'node:stream';
import { canMergeKeys, mergeKeyHashes } from '../db/key-hash-merge';
import type { RemoteSnapshot } from '../db/remote-database';
import type { BucketFingerprints, SiteDatabase } from '../db/site-database';
import {
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

interface BucketFingerprint {
  b: number;
  n: number;
  x: bigint;
}

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

/** Folds fine buckets into the coarse buckets that contain them (both masks are 2^k - 1). */
function coarsen(fine: BucketFingerprints): Map<number, BucketFingerprint> {
  const coarse = new Map<number, BucketFingerprint>();
  for (const [i, b] of fine.buckets.entries()) {
    const c = b & COARSE_MASK;
    const into = coarse.get(c) ?? { b: c, n: 0, x: 0n };
    into.n += Number(fine.counts[i]);
    into.x ^= BigInt(fine.hashes[i]!);
    coarse.set(c, into);
  }
  return coarse;
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

async function stageAll(ctx: CompareContext, e: ResolvedEntity): Promise<Comparison> {
  const staged = await ctx.remote.copyOut(remoteSql.copySlice(e.meta), e.meta.name, (rows) =>
    ctx.site.stage(e, rows),
  );
  return { mode: 'staged', region: { kind: 'all' }, staged, knownEqual: 0 };
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
  const [fine, remoteCoarse] = await Promise.all([
    site.bucketFingerprints(e, FINE_MASK),
    remote.query<{ b: number; n: string; x: string }>(
      fingerprintSql.remoteBuckets(e),
      [ctx.tenantId, COARSE_MASK],
      name,
    ),
  ]);
  const siteRows = fine.total;
  const coarse = differingBuckets(
    coarsen(fine),
    new Map(remoteCoarse.map((r) => [r.b, { b: r.b, n: Number(r.n), x: BigInt(r.x) }])),
  );
  if (coarse.length === 0) return { mode: 'equal', rows: siteRows };

  const region = (buckets: readonly DifferingBucket[], mask: number): Promise<Region> =>
    Promise.all([
      site.createBucketRegion(
        e,
        buckets.map((d) => d.b),
        mask,
      ),
      remote.setSetting(MASK_SETTING, String(mask)),
      remote.setSetting(REGION_SETTING, `{${buckets.map((d) => d.b).join(',')}}`),
    ]).then(([r]) => r);

  // Changes in most coarse buckets: fine buckets would all differ too, so compare keys at once.
  const occupied = new Set([...fine.buckets.map((b) => b & COARSE_MASK), ...remoteCoarse.map((r) => r.b)]);
  if (coarse.length > BROAD_CHANGE_SHARE * occupied.size) {
    const all = coarse.length === occupied.size;
    return compareKeys(ctx, e, all ? { kind: 'all' } : await region(coarse, COARSE_MASK), {
      siteRows,
      siteInRegion: sum(coarse, 'siteRows'),
      remoteInRegion: sum(coarse, 'remoteRows'),
    });
  }

  // The remote hashes only the differing coarse buckets' rows, and returns the fine ones that differ.
  const inCoarse = new Set(coarse.map((d) => d.b));
  const offered = fine.buckets.flatMap((b, i) => (inCoarse.has(b & COARSE_MASK) ? [i] : []));
  const differing = (
    await remote.query<{ b: number; remote_rows: string; site_rows: string }>(
      fingerprintSql.remoteDifferingBuckets(e),
      [
        ctx.tenantId,
        FINE_MASK,
        offered.map((i) => fine.buckets[i]),
        offered.map((i) => fine.counts[i]),
        offered.map((i) => fine.hashes[i]),
        COARSE_MASK,
        [...inCoarse],
      ],
      name,
    )
  ).map((d) => ({ b: d.b, remoteRows: Number(d.remote_rows), siteRows: Number(d.site_rows) }));
  const fineRegion = await region(differing, FINE_MASK);
  const counts = {
    siteRows,
    siteInRegion: sum(differing, 'siteRows'),
    remoteInRegion: sum(differing, 'remoteRows'),
  };
  const regionRows = Math.max(counts.siteInRegion, counts.remoteInRegion);
  if (regionRows <= Math.max(SMALL_REGION_ROWS, SMALL_REGION_SHARE * siteRows))
    return stageRegion(ctx, e, fineRegion, counts);
  return compareKeys(ctx, e, fineRegion, counts);
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
  if (region.kind === 'all') return stageAll(ctx, e);
  const staged = await ctx.remote.copyOut(regionSql.copyBuckets(e), e.meta.name, (rows) =>
    ctx.site.stage(e, rows),
  );
  return { mode: 'staged', region, staged, knownEqual: counts.siteRows - counts.siteInRegion };
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
    };
  const keyArrays = await site.fetchKeyArrays(e, diff);
  for (const [i, array] of keyArrays.entries()) await remote.setSetting(keySetting(i), array);
  const staged = await remote.copyOut(regionSql.copyKeys(e), name, (rows) => site.stage(e, rows));
  return { mode: 'staged', region: diff, staged, knownEqual: counts.siteRows - onSite };
}
