/**
 * Compares the remote's and the site's rows of a region by streaming both sides' `(key…, row
 * hash)` lines in key order at the same time and merging them, so that neither side loads the
 * other's hashes into a table, and the only rows fetched are those whose hash differs (DESIGN §6).
 *
 * Only keys of integer columns are merged here: both servers and this code then agree on the
 * order without any collation. The lines are COPY text: tab-separated integers, no escapes.
 */
import type { Readable } from 'node:stream';
import { MeterSyncError } from '../errors';

/** Integer types whose COPY text orders as `compareIntegerText` orders it. */
const MERGEABLE_KEY_TYPES = new Set(['smallint', 'integer', 'bigint']);

export function canMergeKeys(keyTypes: readonly string[]): boolean {
  return keyTypes.length > 0 && keyTypes.every((type) => MERGEABLE_KEY_TYPES.has(type));
}

/** Orders two integers given as canonical decimal text (no leading zeros, `-` for negatives). */
export function compareIntegerText(a: string, b: string): number {
  const aNegative = a.charCodeAt(0) === 45;
  const bNegative = b.charCodeAt(0) === 45;
  if (aNegative !== bNegative) return aNegative ? -1 : 1;
  const magnitude = a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return aNegative && magnitude !== 0 ? -magnitude : magnitude;
}

/** Orders two keys given as tab-joined integer text. */
function compareKeys(a: string, b: string, columns: number): number {
  if (columns === 1) return compareIntegerText(a, b);
  const as = a.split('\t');
  const bs = b.split('\t');
  for (let i = 0; i < columns; i++) {
    const order = compareIntegerText(as[i]!, bs[i]!);
    if (order !== 0) return order;
  }
  return 0;
}

export interface KeyHashDiff {
  /** Keys (tab-joined text) on both sides whose row hashes differ. */
  readonly changed: string[];
  /** Keys only the remote has. */
  readonly remoteOnly: string[];
  /** Keys only the site has. */
  readonly siteOnly: string[];
  readonly remoteRows: number;
  readonly siteRows: number;
  /** Set when more than `limit` keys differed: the lists stop there, the counts go on. */
  readonly overflow: boolean;
  readonly differing: number;
}

/** Reads a COPY text stream as batches of lines, one batch per chunk. */
class LineBatches {
  private readonly chunks: AsyncIterator<Buffer>;
  private carry = '';
  private done = false;

  constructor(stream: Readable) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The next complete lines, or undefined at the end of the stream. */
  async next(): Promise<string[] | undefined> {
    while (!this.done) {
      const { value, done } = await this.chunks.next();
      if (done) {
        this.done = true;
        if (this.carry !== '')
          throw new MeterSyncError('INTERNAL_ERROR', 'a key-hash stream ended inside a line');
        return undefined;
      }
      // COPY text of integers is ASCII: latin1 decoding is exact and the cheapest.
      const text = this.carry + (value as Buffer).toString('latin1');
      const end = text.lastIndexOf('\n');
      if (end < 0) {
        this.carry = text;
        continue;
      }
      this.carry = text.slice(end + 1);
      return text.slice(0, end).split('\n');
    }
    return undefined;
  }
}

/** A side's current line, split into key text and hash text. */
class Cursor {
  private lines: string[] = [];
  private index = 0;
  key = '';
  hash = '';
  rows = 0;
  atEnd = false;
  /** The batch is used up: `fill` must run before the current line is read. */
  empty = true;

  constructor(
    private readonly batches: LineBatches,
    private readonly columns: number,
    private readonly side: string,
  ) {}

  /** Moves to the next line of the batch, without waiting; sets `empty` when there is none. */
  step(): void {
    if (this.index >= this.lines.length) {
      this.empty = true;
      return;
    }
    const line = this.lines[this.index++]!;
    const tab = line.lastIndexOf('\t');
    const key = line.slice(0, tab);
    // A merge of unordered input would report equal rows as missing: refuse it instead.
    if (this.rows > 0 && compareKeys(this.key, key, this.columns) >= 0)
      throw new MeterSyncError(
        'INTERNAL_ERROR',
        `the ${this.side} key hashes are not in strictly ascending key order at ${key}`,
      );
    this.key = key;
    this.hash = line.slice(tab + 1);
    this.rows += 1;
  }

  /** Loads the next batch and its first line, or marks the end of the stream. */
  async fill(): Promise<void> {
    while (this.empty) {
      const lines = await this.batches.next();
      if (lines === undefined) {
        this.atEnd = true;
        this.empty = false;
        return;
      }
      this.lines = lines;
      this.index = 0;
      this.empty = false;
      this.step();
    }
  }
}

/**
 * Merges the two sorted streams to the end (so both COPY statements finish) and returns the
 * differing keys, keeping at most `limit` of them.
 */
export async function mergeKeyHashes(
  remote: Readable,
  site: Readable,
  keyColumns: number,
  limit: number,
): Promise<KeyHashDiff> {
  const r = new Cursor(new LineBatches(remote), keyColumns, 'remote');
  const s = new Cursor(new LineBatches(site), keyColumns, 'site');
  const changed: string[] = [];
  const remoteOnly: string[] = [];
  const siteOnly: string[] = [];
  let differing = 0;
  const keep = (list: string[], key: string) => {
    differing += 1;
    if (differing <= limit) list.push(key);
  };
  for (;;) {
    // Waits only at a batch boundary: the merge itself is synchronous.
    if (r.empty || s.empty) await Promise.all([r.fill(), s.fill()]);
    if (r.atEnd && s.atEnd) break;
    const order = r.atEnd ? 1 : s.atEnd ? -1 : compareKeys(r.key, s.key, keyColumns);
    if (order === 0) {
      if (r.hash !== s.hash) keep(changed, r.key);
      r.step();
      s.step();
    } else if (order < 0) {
      keep(remoteOnly, r.key);
      r.step();
    } else {
      keep(siteOnly, s.key);
      s.step();
    }
  }
  return {
    changed,
    remoteOnly,
    siteOnly,
    remoteRows: r.rows,
    siteRows: s.rows,
    overflow: differing > limit,
    differing,
  };
}
