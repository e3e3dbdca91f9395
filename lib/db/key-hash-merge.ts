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
  return Math.sign(compareIntegerRange(a, 0, a.length, b, 0, b.length));
}

/** A key's place in a batch of COPY text: the integers between `start` and `end`, tab-separated. */
interface KeyRange {
  text: string;
  start: number;
  end: number;
}

/** Orders the integers text[aStart, aEnd) and other[bStart, bEnd) without copying them out. */
function compareIntegerRange(
  a: string,
  aStart: number,
  aEnd: number,
  b: string,
  bStart: number,
  bEnd: number,
) {
  const aNegative = a.charCodeAt(aStart) === 45;
  const bNegative = b.charCodeAt(bStart) === 45;
  if (aNegative !== bNegative) return aNegative ? -1 : 1;
  let magnitude = aEnd - aStart - (bEnd - bStart);
  for (let i = 0; magnitude === 0 && i < aEnd - aStart; i++)
    magnitude = a.charCodeAt(aStart + i) - b.charCodeAt(bStart + i);
  return aNegative && magnitude !== 0 ? -magnitude : magnitude;
}

/** Orders two keys of `columns` tab-separated integers, column by column. */
function compareKeys(a: KeyRange, b: KeyRange, columns: number): number {
  let aStart = a.start;
  let bStart = b.start;
  for (let i = 0; i < columns; i++) {
    const aEnd = i === columns - 1 ? a.end : a.text.indexOf('\t', aStart);
    const bEnd = i === columns - 1 ? b.end : b.text.indexOf('\t', bStart);
    const order = compareIntegerRange(a.text, aStart, aEnd, b.text, bStart, bEnd);
    if (order !== 0) return order;
    aStart = aEnd + 1;
    bStart = bEnd + 1;
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

/** Reads a COPY text stream as batches of whole lines, one batch per chunk. */
class LineBatches {
  private readonly chunks: AsyncIterator<Buffer>;
  private carry = '';
  private done = false;

  constructor(stream: Readable) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The next complete lines as one text, each ending in a newline, or undefined at the end. */
  async next(): Promise<string | undefined> {
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
      return text.slice(0, end + 1);
    }
    return undefined;
  }
}

/**
 * A side's current line, read in place in its batch: a million lines cost no string each, only
 * the keys that differ are copied out.
 */
class Cursor implements KeyRange {
  text = '';
  /** Where the next line starts. */
  private next = 0;
  start = 0;
  end = 0;
  private hashStart = 0;
  private hashEnd = 0;
  /** The line before, kept to check the order (its fields are reused, not reallocated). */
  private readonly previous: KeyRange = { text: '', start: 0, end: 0 };
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
    if (this.next >= this.text.length) {
      this.empty = true;
      return;
    }
    const newline = this.text.indexOf('\n', this.next);
    const tab = this.text.lastIndexOf('\t', newline);
    this.start = this.next;
    this.end = tab;
    this.hashStart = tab + 1;
    this.hashEnd = newline;
    this.next = newline + 1;
    // A merge of unordered input would report equal rows as missing: refuse it instead.
    if (this.rows > 0 && compareKeys(this.previous, this, this.columns) >= 0)
      throw new MeterSyncError(
        'INTERNAL_ERROR',
        `the ${this.side} key hashes are not in strictly ascending key order at ${this.key()}`,
      );
    this.previous.text = this.text;
    this.previous.start = this.start;
    this.previous.end = this.end;
    this.rows += 1;
  }

  key(): string {
    return this.text.slice(this.start, this.end);
  }

  sameHash(other: Cursor): boolean {
    const length = this.hashEnd - this.hashStart;
    if (length !== other.hashEnd - other.hashStart) return false;
    for (let i = 0; i < length; i++)
      if (this.text.charCodeAt(this.hashStart + i) !== other.text.charCodeAt(other.hashStart + i))
        return false;
    return true;
  }

  /** Loads the next batch and its first line, or marks the end of the stream. */
  async fill(): Promise<void> {
    while (this.empty) {
      const text = await this.batches.next();
      if (text === undefined) {
        this.atEnd = true;
        this.empty = false;
        return;
      }
      this.text = text;
      this.next = 0;
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
  const keep = (list: string[], side: Cursor) => {
    differing += 1;
    if (differing <= limit) list.push(side.key());
  };
  for (;;) {
    // Waits only at a batch boundary: the merge itself is synchronous.
    if (r.empty || s.empty) await Promise.all([r.fill(), s.fill()]);
    if (r.atEnd && s.atEnd) break;
    const order = r.atEnd ? 1 : s.atEnd ? -1 : compareKeys(r, s, keyColumns);
    if (order === 0) {
      if (!r.sameHash(s)) keep(changed, r);
      r.step();
      s.step();
    } else if (order < 0) {
      keep(remoteOnly, r);
      r.step();
    } else {
      keep(siteOnly, s);
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
