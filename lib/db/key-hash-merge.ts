/**
 * Compares the remote's and the site's rows of a region by streaming both sides' `(key…, row
 * hash)` tuples at the same time, so that neither side loads the other's hashes into a table,
 * and the only rows fetched are those whose hash differs (DESIGN §6). Three ways:
 *
 * - by slot (`compareKeyHashesBySlot`): one integer key column whose site keys are dense enough
 *   gets a slot per key in two typed arrays (9 bytes a key, at most 19 MB), filled from both
 *   streams in whatever order they come. Neither server sorts, and both stream at once.
 * - by table (`compareKeyHashesInTable`): a key of 128 bits at most (a uuid, one or two integer
 *   columns) in an open addressing table of typed arrays, filled from both streams in any order:
 *   a key waits there until the other side's arrives. The table grows with the keys waiting,
 *   up to MAX_TABLE_KEYS keys (at a load of at most 0.8, 25 bytes each; 17 for integer keys
 *   whose columns fit in 32 bits).
 * - by merge (`mergeKeyHashes`): any integer keys, both streams in key order. Both servers and
 *   this code then agree on the order without any collation.
 *
 * Both sides send binary COPY with every field a bigint but a uuid key, so every tuple has the
 * same width and is read where it lies in the chunk, without parsing text: a million tuples a side
 * cost no allocation each, only the keys that differ are turned into text.
 */
import type { Readable } from 'node:stream';
import { MeterSyncError } from '../errors';
import { bigIntToUuid, INTEGER_TYPES } from './sync-sql';

/** Keys of integer columns only: both servers send them as bigints and order them as numbers. */
export function canMergeKeys(keyTypes: readonly string[]): boolean {
  return keyTypes.length > 0 && keyTypes.every((type) => INTEGER_TYPES.has(type));
}

export interface KeyHashDiff {
  /** Keys (tab-joined decimal text) on both sides whose row hashes differ. */
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
  /** A comparison by table: the most keys that waited in it at once for the other side's. */
  readonly waited?: number;
}

/** Each field of a tuple: a bigint. */
const bigints = (fields: number) => Array.from({ length: fields }, () => 8);

/** The binary COPY header's fixed part: signature, flags, length of the extension that follows. */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER = SIGNATURE.length + 8;
/** A field: its int32 length (always 8 here), then the bigint. */
const FIELD = 12;
/** Where a tuple's first bigint lies: after its int16 field count and the field's int32 length. */
const FIRST_VALUE = 6;

function malformed(side: string, what: string): MeterSyncError {
  return new MeterSyncError(
    'INTERNAL_ERROR',
    `the ${side} key hashes are not the binary COPY they should be: ${what}`,
  );
}

/** A view of a buffer for reading its big-endian integers: unlike Buffer's readers, inlined by V8. */
const viewOf = (bytes: Buffer) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Reads a binary COPY stream of `fields` bigints per tuple as batches of whole tuples, one per chunk. */
class TupleBatches {
  private readonly chunks: AsyncIterator<Buffer>;
  private carry: Buffer = Buffer.alloc(0);
  /** The rest of a chunk whose start completed a cut tuple. */
  private pending: Buffer | undefined;
  private headerRead = false;
  private ended = false;
  readonly size: number;
  private readonly fields: number;

  /** `widths`: the bytes of each field's value; every field a bigint (8) but a uuid key's (16). */
  constructor(
    stream: Readable,
    private readonly widths: readonly number[],
    private readonly side: string,
  ) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.fields = widths.length;
    this.size = 2 + widths.reduce((total, width) => total + 4 + width, 0);
  }

  /** The next whole tuples, or undefined after the trailer. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      if (this.ended) return undefined;
      let chunk = this.pending;
      this.pending = undefined;
      if (chunk === undefined) {
        const { value, done } = await this.chunks.next();
        if (done) throw malformed(this.side, 'it ended without its trailer');
        chunk = value as Buffer;
      }
      let bytes: Buffer;
      if (!this.headerRead) {
        bytes = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
        if (bytes.length < HEADER) {
          this.carry = bytes;
          continue;
        }
        if (!bytes.subarray(0, SIGNATURE.length).equals(SIGNATURE))
          throw malformed(this.side, 'no signature');
        const extension = bytes.readUInt32BE(SIGNATURE.length + 4);
        if (bytes.length < HEADER + extension) {
          this.carry = bytes;
          continue;
        }
        bytes = bytes.subarray(HEADER + extension);
        this.headerRead = true;
      } else if (this.carry.length > 0) {
        // Only the bytes that complete the tuple cut by the chunk before are copied; the rest of
        // this chunk is read where it lies, next.
        const need = this.size - this.carry.length;
        if (chunk.length > need) this.pending = chunk.subarray(need);
        bytes = Buffer.concat([this.carry, chunk.subarray(0, need)]);
      } else bytes = chunk;
      const whole = this.wholeTuples(bytes);
      if (this.ended && this.pending !== undefined) throw malformed(this.side, 'bytes after the trailer');
      this.carry = Buffer.from(bytes.subarray(whole));
      if (whole > 0) return bytes.subarray(0, whole);
    }
  }

  /** The length of the whole tuples at the start of `bytes`, checked; notes the trailer. */
  private wholeTuples(bytes: Buffer): number {
    const view = viewOf(bytes);
    let at = 0;
    while (at + 2 <= bytes.length) {
      const fields = view.getInt16(at);
      if (fields === -1) {
        this.ended = true;
        if (at + 2 !== bytes.length) throw malformed(this.side, 'bytes after the trailer');
        return at;
      }
      if (at + this.size > bytes.length) break;
      if (fields !== this.fields) throw malformed(this.side, `a tuple of ${fields} fields`);
      let field = at + 2;
      for (const width of this.widths) {
        if (view.getInt32(field) !== width)
          throw malformed(this.side, `a field that is not ${width} bytes long (a NULL key?)`);
        field += 4 + width;
      }
      at += this.size;
    }
    return at;
  }
}

/** A side's current tuple, read in place in its batch. */
class Cursor {
  buffer: Buffer = Buffer.alloc(0);
  view: DataView = viewOf(this.buffer);
  at = 0;
  rows = 0;
  atEnd = false;
  /** The batch is used up: `fill` must run before the current tuple is read. */
  empty = true;
  /** The key before, as the high and low halves of each column, kept to check the order. */
  private readonly previous: Int32Array;

  constructor(
    private readonly batches: TupleBatches,
    private readonly columns: number,
    private readonly side: string,
  ) {
    this.previous = new Int32Array(columns * 2);
  }

  /** The high (signed) and low (unsigned) halves of key column `c` of the current tuple. */
  high(c: number): number {
    return this.view.getInt32(this.at + FIRST_VALUE + c * FIELD);
  }

  low(c: number): number {
    return this.view.getUint32(this.at + FIRST_VALUE + 4 + c * FIELD);
  }

  /** Moves to the next tuple of the batch, without waiting; sets `empty` when there is none. */
  step(): void {
    for (let c = 0; c < this.columns; c++) {
      this.previous[2 * c] = this.high(c);
      this.previous[2 * c + 1] = this.low(c);
    }
    this.moveTo(this.at + this.batches.size);
  }

  private moveTo(at: number): void {
    if (at >= this.buffer.length) {
      this.empty = true;
      return;
    }
    this.at = at;
    // A merge of unordered input would report equal rows as missing: refuse it instead.
    if (this.rows > 0 && this.compareToPrevious() <= 0)
      throw new MeterSyncError(
        'INTERNAL_ERROR',
        `the ${this.side} key hashes are not in strictly ascending key order at ${this.key()}`,
      );
    this.rows += 1;
  }

  private compareToPrevious(): number {
    for (let c = 0; c < this.columns; c++) {
      const high = this.high(c) - this.previous[2 * c]!;
      if (high !== 0) return high;
      // The low half was kept as a signed int32: compare both as unsigned.
      const low = this.low(c) - (this.previous[2 * c + 1]! >>> 0);
      if (low !== 0) return low;
    }
    return 0;
  }

  /** The key as tab-separated decimal text. */
  key(): string {
    const values: string[] = [];
    for (let c = 0; c < this.columns; c++)
      values.push(this.view.getBigInt64(this.at + FIRST_VALUE + c * FIELD).toString());
    return values.join('\t');
  }

  sameHash(other: Cursor): boolean {
    const mine = this.at + FIRST_VALUE + this.columns * FIELD;
    const theirs = other.at + FIRST_VALUE + this.columns * FIELD;
    return (
      this.view.getInt32(mine) === other.view.getInt32(theirs) &&
      this.view.getInt32(mine + 4) === other.view.getInt32(theirs + 4)
    );
  }

  /** Loads the next batch and its first tuple, or marks the end of the stream. */
  async fill(): Promise<void> {
    while (this.empty) {
      const batch = await this.batches.next();
      if (batch === undefined) {
        this.atEnd = true;
        this.empty = false;
        return;
      }
      this.buffer = batch;
      this.view = viewOf(batch);
      this.empty = false;
      this.moveTo(0);
    }
  }
}

/** Orders the keys of two tuples, column by column, as signed 64-bit integers. */
function compareKeys(a: Cursor, b: Cursor, columns: number): number {
  for (let c = 0; c < columns; c++) {
    const high = a.high(c) - b.high(c);
    if (high !== 0) return high;
    const low = a.low(c) - b.low(c);
    if (low !== 0) return low;
  }
  return 0;
}

/**
 * Merges the two sorted streams to the end (so both COPY statements finish) and returns the
 * differing keys, keeping at most `limit` of them. Each stream is a binary COPY of the key
 * columns, then the row hash, all bigints.
 */
export async function mergeKeyHashes(
  remote: Readable,
  site: Readable,
  keyColumns: number,
  limit: number,
): Promise<KeyHashDiff> {
  const r = new Cursor(new TupleBatches(remote, bigints(keyColumns + 1), 'remote'), keyColumns, 'remote');
  const s = new Cursor(new TupleBatches(site, bigints(keyColumns + 1), 'site'), keyColumns, 'site');
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

/** Site keys from `lo` on, `slots` of them, each a slot of the table `compareKeyHashesBySlot` keeps. */
export interface KeySlots {
  readonly lo: bigint;
  readonly slots: number;
}

/**
 * The most slots a comparison by slot may take: 9 bytes each, 19 MB at most, whatever the table's
 * size; and at most this many per site row, so that a few sparse keys never take them all.
 */
const MAX_SLOTS = 2 ** 21;
const SLOTS_PER_ROW = 4;
/** Keys whose high 32 bits lie within these bounds are safe integers, exact as numbers. */
const SAFE_HIGH = 2 ** 20;

/**
 * The slots of a single integer key column whose site keys run from `lo` to `hi` over about
 * `rows` rows, when they are few enough to be kept in memory; otherwise undefined.
 */
export function keySlots(lo: bigint, hi: bigint, rows: number): KeySlots | undefined {
  const span = hi - lo + 1n;
  const limit = BigInt(Math.min(MAX_SLOTS, Math.max(SLOTS_PER_ROW * rows, 65_536)));
  const safe = BigInt(SAFE_HIGH) * 2n ** 32n;
  if (span <= 0n || span > limit || lo <= -safe || hi >= safe) return undefined;
  return { lo, slots: Number(span) };
}

const SITE = 1;
const REMOTE = 2;
const DIFFERENT = 4;
const EQUAL = SITE | REMOTE;

/**
 * Keys a comparison in any order holds apart from its slots or table, with the sides that sent
 * each and the first one's hash: at most `limit` of them, past which it overflows.
 */
class KeysApart {
  private readonly keys = new Map<string, { sides: number; high: number; low: number }>();
  overflow = false;

  constructor(private readonly limit: number) {}

  note(key: string, side: number, high: number, low: number, name: string): void {
    const found = this.keys.get(key);
    if (found === undefined) {
      if (this.keys.size >= this.limit) this.overflow = true;
      else this.keys.set(key, { sides: side, high, low });
    } else if (found.sides & side) throw twice(name, key);
    else {
      found.sides |= side;
      if (found.high !== high || found.low !== low) found.sides |= DIFFERENT;
    }
  }

  get size(): number {
    return this.keys.size;
  }

  holds(key: string): boolean {
    return this.keys.has(key);
  }

  keepDiffering(lists: DifferingKeys): void {
    for (const [key, { sides }] of this.keys) if (sides !== EQUAL) lists.keep(sides, key);
  }
}

/** The differing keys of a comparison in any order, by the sides that sent them: at most `limit` kept, all counted. */
class DifferingKeys {
  readonly changed: string[] = [];
  readonly remoteOnly: string[] = [];
  readonly siteOnly: string[] = [];
  differing = 0;

  constructor(private readonly limit: number) {}

  /** Called for differing keys only: a million equal ones cost no allocation. */
  keep(sides: number, key: number | string): void {
    this.differing += 1;
    if (this.differing > this.limit) return;
    const list = sides === SITE ? this.siteOnly : sides === REMOTE ? this.remoteOnly : this.changed;
    list.push(String(key));
  }

  diff(remoteRows: number, siteRows: number, overflow: boolean): KeyHashDiff {
    const { changed, remoteOnly, siteOnly, differing } = this;
    return {
      changed,
      remoteOnly,
      siteOnly,
      remoteRows,
      siteRows,
      overflow: overflow || differing > this.limit,
      differing,
    };
  }
}

/**
 * Reads both sides at once. Both reads end before this does, even when one fails: none is left
 * reading behind the caller, which then drains what is left of the failed side's stream.
 */
async function readBoth(
  remote: Readable,
  site: Readable,
  read: (stream: Readable, side: number, name: string) => Promise<void>,
): Promise<void> {
  const reads = await Promise.allSettled([read(remote, REMOTE, 'remote'), read(site, SITE, 'site')]);
  for (const r of reads) if (r.status === 'rejected') throw r.reason;
}

/**
 * Compares the two streams of one integer key column and its row hash, in any order, by slot:
 * a slot per site key from `span.lo` on holds what each side sent and the first side's hash,
 * so neither server sorts and both stream at once. Keys outside the slots (the remote's new
 * keys beyond the site's last, say) are kept apart, at most `limit` of them. Keeps at most
 * `limit` differing keys and counts them all (unless the keys apart overflow).
 */
export async function compareKeyHashesBySlot(
  remote: Readable,
  site: Readable,
  span: KeySlots,
  limit: number,
): Promise<KeyHashDiff> {
  const seen = new Uint8Array(span.slots);
  const hashes = new Int32Array(span.slots * 2);
  const lo = Number(span.lo);
  /** Keys outside the slots, as decimal text. */
  const apart = new KeysApart(limit);
  let remoteRows = 0;
  let siteRows = 0;

  const read = async (stream: Readable, side: number, name: string) => {
    const batches = new TupleBatches(stream, bigints(2), name);
    for (let batch = await batches.next(); batch !== undefined; batch = await batches.next()) {
      const view = viewOf(batch);
      if (side === SITE) siteRows += batch.length / batches.size;
      else remoteRows += batch.length / batches.size;
      for (let at = 0; at < batch.length; at += batches.size) {
        // The key, then the row hash, each as its high and low 32 bits.
        const high = view.getInt32(at + FIRST_VALUE);
        const low = view.getUint32(at + FIRST_VALUE + 4);
        const hashHigh = view.getInt32(at + FIRST_VALUE + FIELD);
        const hashLow = view.getInt32(at + FIRST_VALUE + FIELD + 4);
        const slot = high > -SAFE_HIGH && high < SAFE_HIGH ? high * 2 ** 32 + low - lo : -1;
        if (slot < 0 || slot >= span.slots) {
          if (!apart.overflow)
            apart.note(view.getBigInt64(at + FIRST_VALUE).toString(), side, hashHigh, hashLow, name);
          continue;
        }
        const state = seen[slot]!;
        if (state & side) throw twice(name, String(lo + slot));
        if (state === 0) {
          hashes[2 * slot] = hashHigh;
          hashes[2 * slot + 1] = hashLow;
          seen[slot] = side;
        } else {
          const same = hashes[2 * slot] === hashHigh && hashes[2 * slot + 1] === hashLow;
          seen[slot] = state | side | (same ? 0 : DIFFERENT);
        }
      }
    }
  };
  await readBoth(remote, site, read);

  const lists = new DifferingKeys(limit);
  for (let slot = 0; slot < span.slots; slot++) {
    const sides = seen[slot]!;
    if (sides !== 0 && sides !== EQUAL) lists.keep(sides, lo + slot);
  }
  apart.keepDiffering(lists);
  return lists.diff(remoteRows, siteRows, apart.overflow);
}

function twice(side: string, key: string): MeterSyncError {
  return new MeterSyncError('INTERNAL_ERROR', `the ${side} key hashes hold the key ${key} twice`);
}

/**
 * The most keys a comparison by table (`compareKeyHashesInTable`) holds: 25 bytes each at a load of
 * at most 0.8, 38 MB (26 MB for integer keys that fit in 32 bits); a table whose two sides may
 * hold more is compared otherwise.
 */
export const MAX_TABLE_KEYS = 1_250_000;
const TABLE_LOAD = 0.8;

/** How many keys a comparison by table is made for, from the rows each side is thought to hold. */
export function tableKeys(expectedRows: number): number | undefined {
  const keys = Math.ceil(expectedRows * 1.1) + 1024;
  return keys <= MAX_TABLE_KEYS ? keys : undefined;
}

/**
 * The keys a table holds in 128 bits: one uuid column, or one or two integer columns (each sent
 * as a bigint).
 */
export type TableKey = { readonly kind: 'uuid' } | { readonly kind: 'integers'; readonly columns: 1 | 2 };

/** The key a comparison by table is made for, if the key's columns fit in one. */
export function tableKeyOf(keyTypes: readonly string[]): TableKey | undefined {
  if (keyTypes.length === 1 && keyTypes[0] === 'uuid') return { kind: 'uuid' };
  if (canMergeKeys(keyTypes) && keyTypes.length <= 2)
    return { kind: 'integers', columns: keyTypes.length as 1 | 2 };
  return undefined;
}

/** A uuid's text from its four 32-bit words (only differing keys are written). */
function uuidText(a: number, b: number, c: number, d: number): string {
  const word = (w: number) => BigInt(w >>> 0);
  return bigIntToUuid((word(a) << 96n) | (word(b) << 64n) | (word(c) << 32n) | word(d));
}

/** A bigint's decimal text from its high and low 32-bit words. */
const integerText = (high: number, low: number) =>
  BigInt.asIntN(64, (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0)).toString();

/** Where a key's words lie in a tuple, how the tuple's fields are sized, and how a key reads as text. */
interface TableLayout {
  readonly widths: readonly number[];
  /** Offsets of the key's four 32-bit words in a tuple; -1 for a word a key of one bigint has not. */
  readonly words: readonly [number, number, number, number];
  readonly hash: number;
  readonly text: (a: number, b: number, c: number, d: number) => string;
}

function layoutOf(key: TableKey): TableLayout {
  // After the tuple's field count (2 bytes), each field is its length (4 bytes), then its value.
  if (key.kind === 'uuid') return { widths: [16, 8], words: [6, 10, 14, 18], hash: 26, text: uuidText };
  if (key.columns === 1)
    return { widths: [8, 8], words: [6, 10, -1, -1], hash: 18, text: (a, b) => integerText(a, b) };
  return {
    widths: [8, 8, 8],
    words: [6, 10, 18, 22],
    hash: 30,
    // Tab-joined, as a merge names a key of two columns.
    text: (a, b, c, d) => `${integerText(a, b)}\t${integerText(c, d)}`,
  };
}

/** The slots a comparison by table starts with (1.1 MB of integer keys); it grows as keys wait. */
const FIRST_TABLE_SLOTS = 65_536;
/**
 * The load at which a table that may still grow does, by half: a key leaving moves back the keys
 * after it up to the next empty slot, and those runs lengthen with the load. Half the keys of the
 * composite bench's churn wait at once (505,000): 0.7 and a half take 746,000 slots for them,
 * 5 MB fewer than doubling at 0.5, for 10-15% more time in this process.
 */
const GROWING_LOAD = 0.7;

/**
 * Compares the two streams of a key that fits in 128 bits (`TableKey`) and its row hash, in any
 * order, in an open addressing table of typed arrays: the key's words, the first side's hash,
 * and which side sent it. A key waits in the table only until the other side's arrives: its
 * hashes are compared then, and it leaves. Both servers mostly send their rows in the order the
 * first load wrote them, so the table holds the keys the two orders and speeds keep apart (rows
 * a change moved, keys new on one side), not every key: it starts at `firstSlots` and grows
 * as needed, up to what `keys` (see `tableKeys`) takes at a load of 0.8. Keys beyond
 * are kept apart, at most `limit` of them. Neither server sorts and both stream at once, as by
 * slot. Keeps at most `limit` differing keys and counts them all (unless the keys apart
 * overflow).
 *
 * A key one side sends twice is refused while the first is waiting; once matched it has left,
 * and the second counts as that side's alone: the site's table has a primary key, and a remote
 * slice with a key twice stages it twice, which its upsert refuses.
 *
 * An integer key is held in two words (each column's low word) as long as every key's columns
 * fit in 32 bits, as serial keys do: 17 bytes a key instead of 25. The first key that does not
 * fit widens the table to four words a key, in place of the same slots (the slot hash is of
 * the four words either way).
 */
export async function compareKeyHashesInTable(
  remote: Readable,
  site: Readable,
  key: TableKey,
  keys: number,
  limit: number,
  firstSlots = FIRST_TABLE_SLOTS,
): Promise<KeyHashDiff> {
  const layout = layoutOf(key);
  const [w0, w1, w2, w3] = layout.words;
  const h0 = layout.hash;
  const most = Math.ceil(keys / TABLE_LOAD);
  let capacity = Math.max(1, Math.min(most, firstSlots));
  /** Words a slot holds: 2 (the low words b and d) while every key fits them, else 4. */
  let stride = key.kind === 'uuid' ? 4 : 2;
  let words = new Int32Array(capacity * stride);
  let hashes = new Int32Array(capacity * 2);
  let seen = new Uint8Array(capacity);
  /** Keys waiting in the table, and the most that waited at once. */
  let used = 0;
  let waited = 0;
  const apart = new KeysApart(limit);
  const lists = new DifferingKeys(limit);
  let remoteRows = 0;
  let siteRows = 0;

  /** A key's home slot. Every word counts: version 1 and 7 uuids share their leading words, and the keys of two integer columns are mostly small numbers in their low words. */
  const home = (a: number, b: number, c: number, d: number) => {
    let mixed = Math.imul(Math.imul(Math.imul(a, 0x9e3779b1) ^ b, 0x85ebca6b) ^ c, 0xc2b2ae35) ^ d;
    mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
    mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
    return ((mixed ^ (mixed >>> 16)) >>> 0) % capacity;
  };
  /** The home slot of the key held in `slot` of `from` (a narrow key's high words are its low words' sign). */
  const homeOf = (from: Int32Array, slot: number) => {
    const w = slot * stride;
    if (stride === 2) return home(from[w]! >> 31, from[w]!, from[w + 1]! >> 31, from[w + 1]!);
    return home(from[w]!, from[w + 1]!, from[w + 2]!, from[w + 3]!);
  };
  const textOf = (slot: number) => {
    const w = slot * stride;
    if (stride === 2) return layout.text(words[w]! >> 31, words[w]!, words[w + 1]! >> 31, words[w + 1]!);
    return layout.text(words[w]!, words[w + 1]!, words[w + 2]!, words[w + 3]!);
  };
  const nextSlot = (slot: number) => (slot + 1 === capacity ? 0 : slot + 1);

  /** Slot `from`'s key, hash and side, copied to slot `to` of the table's arrays. */
  const copySlot = (
    fromWords: Int32Array,
    fromHashes: Int32Array,
    fromSeen: Uint8Array,
    from: number,
    to: number,
  ) => {
    for (let k = 0; k < stride; k++) words[to * stride + k] = fromWords[from * stride + k]!;
    hashes[2 * to] = fromHashes[2 * from]!;
    hashes[2 * to + 1] = fromHashes[2 * from + 1]!;
    seen[to] = fromSeen[from]!;
  };

  /**
   * Empties `slot`, moving back the keys after it that probing would no longer reach (linear
   * probing's deletion: no marks left behind, so probes stay as short as the keys waiting).
   */
  const remove = (slot: number) => {
    let hole = slot;
    for (let next = nextSlot(slot); seen[next] !== 0; next = nextSlot(next)) {
      const at = homeOf(words, next);
      // The key at `next` stays where its home lies cyclically in (hole, next].
      const stays = hole <= next ? hole < at && at <= next : hole < at || at <= next;
      if (stays) continue;
      copySlot(words, hashes, seen, next, hole);
      hole = next;
    }
    seen[hole] = 0;
    used -= 1;
  };

  /** Half as many slots again (up to `most`), every waiting key moved to its new home. */
  const grow = () => {
    const [oldWords, oldHashes, oldSeen, oldCapacity] = [words, hashes, seen, capacity];
    capacity = Math.min(most, Math.ceil(capacity * 1.5));
    words = new Int32Array(capacity * stride);
    hashes = new Int32Array(capacity * 2);
    seen = new Uint8Array(capacity);
    for (let slot = 0; slot < oldCapacity; slot++) {
      if (oldSeen[slot] === 0) continue;
      let to = homeOf(oldWords, slot);
      while (seen[to] !== 0) to = nextSlot(to);
      copySlot(oldWords, oldHashes, oldSeen, slot, to);
    }
    for (const array of [oldWords, oldHashes, oldSeen]) release(array.buffer);
  };

  /**
   * The table at four words a key: each narrow key's high words are its low words' sign (a key of
   * one column has no third and fourth word: 0, and so is their sign).
   */
  const widen = () => {
    const wide = new Int32Array(capacity * 4);
    for (let slot = 0; slot < capacity; slot++) {
      if (seen[slot] === 0) continue;
      const b = words[2 * slot]!;
      const d = words[2 * slot + 1]!;
      const w = slot * 4;
      wide[w] = b >> 31;
      wide[w + 1] = b;
      wide[w + 2] = d >> 31;
      wide[w + 3] = d;
    }
    release(words.buffer);
    words = wide;
    stride = 4;
  };

  const read = async (stream: Readable, side: number, name: string) => {
    const batches = new TupleBatches(stream, layout.widths, name);
    for (let batch = await batches.next(); batch !== undefined; batch = await batches.next()) {
      const view = viewOf(batch);
      if (side === SITE) siteRows += batch.length / batches.size;
      else remoteRows += batch.length / batches.size;
      for (let at = 0; at < batch.length; at += batches.size) {
        const a = view.getInt32(at + w0);
        const b = view.getInt32(at + w1);
        const c = w2 < 0 ? 0 : view.getInt32(at + w2);
        const d = w3 < 0 ? 0 : view.getInt32(at + w3);
        const hashHigh = view.getInt32(at + h0);
        const hashLow = view.getInt32(at + h0 + 4);
        if (stride === 2 && (a !== b >> 31 || c !== d >> 31)) widen();
        let slot = home(a, b, c, d);
        while (seen[slot] !== 0) {
          const w = slot * stride;
          if (
            stride === 2
              ? words[w] === b && words[w + 1] === d
              : words[w] === a && words[w + 1] === b && words[w + 2] === c && words[w + 3] === d
          )
            break;
          slot = nextSlot(slot);
        }
        const state = seen[slot]!;
        if (state !== 0) {
          // The other side's key was waiting: compared, and gone from the table.
          if (state & side) throw twice(name, layout.text(a, b, c, d));
          if (hashes[2 * slot] !== hashHigh || hashes[2 * slot + 1] !== hashLow)
            lists.keep(EQUAL | DIFFERENT, layout.text(a, b, c, d));
          remove(slot);
          continue;
        }
        // A key kept apart while the table was full stays there until its other side comes.
        if (apart.size > 0) {
          const text = layout.text(a, b, c, d);
          if (apart.holds(text)) {
            apart.note(text, side, hashHigh, hashLow, name);
            continue;
          }
        }
        // Below GROWING_LOAD while it may grow, then at most TABLE_LOAD (`keys` of `most`): every
        // probe meets an empty slot.
        if (used + 1 > capacity * GROWING_LOAD && capacity < most) {
          grow();
          slot = home(a, b, c, d);
          while (seen[slot] !== 0) slot = nextSlot(slot);
        }
        if (used >= keys) {
          if (!apart.overflow) apart.note(layout.text(a, b, c, d), side, hashHigh, hashLow, name);
          continue;
        }
        const w = slot * stride;
        if (stride === 2) {
          words[w] = b;
          words[w + 1] = d;
        } else {
          words[w] = a;
          words[w + 1] = b;
          words[w + 2] = c;
          words[w + 3] = d;
        }
        hashes[2 * slot] = hashHigh;
        hashes[2 * slot + 1] = hashLow;
        seen[slot] = side;
        used += 1;
        if (used > waited) waited = used;
      }
    }
  };
  await readBoth(remote, site, read);

  // The keys still waiting: one side's alone.
  for (let slot = 0; slot < capacity; slot++) if (seen[slot] !== 0) lists.keep(seen[slot]!, textOf(slot));
  apart.keepDiffering(lists);
  // The table goes back now, not at V8's next full collection: the run's next steps (the diff's
  // temporary table, the fetch) would otherwise peak with it still held.
  for (const array of [words, hashes, seen]) release(array.buffer);
  return { ...lists.diff(remoteRows, siteRows, apart.overflow), waited };
}

/** Detaches an ArrayBuffer, freeing its memory at once (ES2024 `transfer`, Node.js 22 and later). */
function release(buffer: ArrayBufferLike): void {
  (buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }).transfer?.(0);
}
