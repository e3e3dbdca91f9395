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

import type { RemoteSnapshot } from '../db/remote-database';
import type { SiteDatabase } from '../db/site-database';
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

/** Buckets of about this many rows: small enough that a handful of changes moves little. */
const ROWS_PER_BUCKET = 64;
const MAX_BUCKETS = 4096;
/** Differing buckets holding at most this many rows (or share of the table) are staged whole. */
const SMALL_REGION_ROWS = 2_000;
const SMALL_REGION_SHARE = 0.02;
/** When more than this share of a region's rows changed, fetching by key costs more than it saves. */
const MAX_FETCH_SHARE = 0.5;

export function bucketMask(estimatedRows: number): number {
  let buckets = 1;
  while (buckets < MAX_BUCKETS && buckets * ROWS_PER_BUCKET < estimatedRows) buckets *= 2;
  return buckets - 1;
}

interface DifferingBucket {
  b: number;
  remote_rows: string;
  site_rows: string;
}

interface CompareContext {
  site: SiteDatabase;
  remote: RemoteSnapshot;
  tenantId: number;
  /** False when a parent is changed by this run: the child must then be compared whole. */
  shortcuts: boolean;
}

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

  // Both sides at once, one total row each: equal totals end it here, which is most runs.
  const [siteTotal, remoteTotal] = await Promise.all([
    site.totalFingerprint(e),
    remote.query<{ n: string; x: string }>(fingerprintSql.remoteTotals(e), [ctx.tenantId], name),
  ]);
  if (
    Number(remoteTotal[0]?.n ?? 0) === siteTotal.rows &&
    BigInt(remoteTotal[0]?.x ?? 0) === BigInt(siteTotal.hash)
  ) {
    return { mode: 'equal', rows: siteTotal.rows };
  }
  const mask = bucketMask(siteTotal.rows);
  const fingerprints = await site.bucketFingerprints(e, mask);
  // The remote compares its buckets with the site's and returns only those that differ.
  const differing = await remote.query<DifferingBucket>(
    fingerprintSql.remoteDifferingBuckets(e),
    [ctx.tenantId, mask, fingerprints.buckets, fingerprints.counts, fingerprints.hashes],
    name,
  );
  await remote.setSetting(MASK_SETTING, String(mask));

  const siteInRegion = differing.reduce((sum, d) => sum + Number(d.site_rows), 0);
  const remoteInRegion = differing.reduce((sum, d) => sum + Number(d.remote_rows), 0);
  const knownEqualOutside = fingerprints.total - siteInRegion;
  const buckets = await site.createBucketRegion(
    e,
    differing.map((d) => d.b),
    mask,
  );
  await remote.setSetting(REGION_SETTING, `{${differing.map((d) => d.b).join(',')}}`);
  const stageBuckets = async (): Promise<Comparison> => {
    const staged = await remote.copyOut(regionSql.copyBuckets(e), name, (rows) => site.stage(e, rows));
    return { mode: 'staged', region: buckets, staged, knownEqual: knownEqualOutside };
  };
  const regionRows = Math.max(siteInRegion, remoteInRegion);
  if (regionRows <= Math.max(SMALL_REGION_ROWS, SMALL_REGION_SHARE * fingerprints.total))
    return stageBuckets();

  const diff = await remote.copyOut(regionSql.copyHashes(e), name, (hashes) =>
    site.diffByHashes(e, buckets, hashes),
  );
  if (diff.fetch > MAX_FETCH_SHARE * diff.remoteRows) return stageBuckets();
  const keyArrays = await site.fetchKeyArrays(e, diff.region);
  for (const [i, array] of keyArrays.entries()) await remote.setSetting(keySetting(i), array);
  const staged = await remote.copyOut(regionSql.copyKeys(e), name, (rows) => site.stage(e, rows));
  return { mode: 'staged', region: diff.region, staged, knownEqual: fingerprints.total - diff.onSite };
}
