/** The merge of two ordered key-hash streams: against a model, over any chunking of the bytes. */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import {
  canMergeKeys,
  compareKeyHashesBySlot,
  compareKeyHashesInTable,
  type KeyHashDiff,
  keySlots,
  MAX_TABLE_KEYS,
  mergeKeyHashes,
  tableKeyOf,
  tableKeys,
} from '../../lib/db/key-hash-merge';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** A tuple of bigints as binary COPY writes it: field count, then length and value of each. */
function tuple(values: readonly bigint[]): Buffer {
  const bytes = Buffer.alloc(2 + values.length * 12);
  bytes.writeInt16BE(values.length, 0);
  for (const [i, value] of values.entries()) {
    bytes.writeInt32BE(8, 2 + i * 12);
    bytes.writeBigInt64BE(value, 6 + i * 12);
  }
  return bytes;
}

/** A binary COPY of the lines (tab-separated integers), cut into chunks at the given byte offsets. */
function streamOf(lines: readonly string[], cuts: readonly number[] = []): Readable {
  return binaryCopy(
    lines.map((l) => tuple(l.split('\t').map(BigInt))),
    cuts,
  );
}

/** A binary COPY of the tuples, cut into chunks at the given byte offsets. */
function binaryCopy(tuples: readonly Buffer[], cuts: readonly number[]): Readable {
  const bytes = Buffer.concat([SIGNATURE, Buffer.alloc(8), ...tuples, Buffer.from([0xff, 0xff])]);
  const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const to of [...offsets, bytes.length]) {
    if (to > from) chunks.push(bytes.subarray(from, to));
    from = Math.max(from, to);
  }
  return Readable.from(chunks);
}

const integer = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -20n, max: 20n }),
  // Either side of 32 bits, where a table of integer keys widens from two words a key to four.
  fc.constantFrom(2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n, 2n ** 32n, -(2n ** 32n)),
);

/** Rows of one side: unique keys of `columns` integers, each with a hash drawn from a small set. */
const side = (columns: number) =>
  fc.uniqueArray(
    fc.tuple(fc.array(integer, { minLength: columns, maxLength: columns }), fc.integer({ min: 0, max: 2 })),
    {
      selector: ([key]) => key.join(','),
      maxLength: 60,
    },
  );

function sorted(rows: [bigint[], number][]): [bigint[], number][] {
  return [...rows].sort(([a], [b]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return 0;
  });
}

const line = ([key, hash]: [bigint[], number]) => `${key.join('\t')}\t${hash - 1}`;

/** A number from a text and a seed: the order a shuffle by that seed gives. */
function hashOf(text: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

/** What a comparison in any order must find of two sides' rows (key → hash): the model. */
function modelDiff<K>(remoteRows: Map<K, number>, siteRows: Map<K, number>) {
  const expected = { changed: [] as string[], remoteOnly: [] as string[], siteOnly: [] as string[] };
  for (const [k, h] of remoteRows) {
    const s = siteRows.get(k);
    if (s === undefined) expected.remoteOnly.push(String(k));
    else if (s !== h) expected.changed.push(String(k));
  }
  for (const k of siteRows.keys()) if (!remoteRows.has(k)) expected.siteOnly.push(String(k));
  const differing = expected.changed.length + expected.remoteOnly.length + expected.siteOnly.length;
  return { expected, differing };
}

/**
 * Checks a comparison in any order against the model: exactly its keys when they fit (`fits`),
 * else an overflow that keeps at most `limit` keys, for the caller to stage the region whole.
 */
function expectModel(
  diff: KeyHashDiff,
  model: ReturnType<typeof modelDiff>,
  rows: { remote: number; site: number },
  limit: number,
  fits: boolean,
): void {
  const sorted = (keys: string[]) => [...keys].sort();
  expect(diff).toMatchObject({ remoteRows: rows.remote, siteRows: rows.site });
  if (fits && model.differing <= limit) {
    expect({
      changed: sorted(diff.changed),
      remoteOnly: sorted(diff.remoteOnly),
      siteOnly: sorted(diff.siteOnly),
    }).toEqual({
      changed: sorted(model.expected.changed),
      remoteOnly: sorted(model.expected.remoteOnly),
      siteOnly: sorted(model.expected.siteOnly),
    });
    expect(diff).toMatchObject({ overflow: false, differing: model.differing });
  } else {
    expect(diff.overflow).toBe(true);
    expect(diff.changed.length + diff.remoteOnly.length + diff.siteOnly.length).toBeLessThanOrEqual(limit);
  }
}

/**
 * Checks a comparison by table (made for `keys` keys waiting at once) against the model. Keys
 * beyond are kept apart, at most `limit` of them: it fits while the keys past `keys` are that
 * few. Past that it may still fit, as keys leave the table when their other side comes; what
 * it reports without overflowing is exact either way.
 */
function expectTableModel<K>(
  diff: KeyHashDiff,
  remoteRows: Map<K, number>,
  siteRows: Map<K, number>,
  keys: number,
  limit: number,
): void {
  const distinct = new Set([...remoteRows.keys(), ...siteRows.keys()]).size;
  const model = modelDiff(remoteRows, siteRows);
  const fits = distinct - keys <= limit || (!diff.overflow && model.differing <= limit);
  expectModel(diff, model, { remote: remoteRows.size, site: siteRows.size }, limit, fits);
}

describe('merging ordered key hashes', () => {
  it('merges only integer keys', () => {
    expect(canMergeKeys(['bigint', 'integer', 'smallint'])).toBe(true);
    expect(canMergeKeys(['bigint', 'text'])).toBe(false);
    expect(canMergeKeys(['numeric'])).toBe(false);
    expect(canMergeKeys([])).toBe(false);
  });

  it('finds exactly the changed, remote-only and site-only keys, however the streams are cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }).chain((columns) =>
          fc.record({
            columns: fc.constant(columns),
            remote: side(columns),
            // Site rows: some of the remote's keys (same or other hash) and some of their own.
            site: side(columns),
            shared: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 })), { maxLength: 40 }),
            remoteCuts: fc.array(fc.nat(), { maxLength: 8 }),
            siteCuts: fc.array(fc.nat(), { maxLength: 8 }),
          }),
        ),
        async ({ columns, remote, site, shared, remoteCuts, siteCuts }) => {
          const siteRows = new Map(
            site.map(([key, hash]) => [key.join(','), [key, hash] as [bigint[], number]]),
          );
          for (const [i, hash] of shared) {
            const row = remote[i % Math.max(1, remote.length)];
            if (row) siteRows.set(row[0].join(','), [row[0], hash]);
          }
          const remoteMap = new Map(remote.map(([key, hash]) => [key.join(','), hash]));
          const expected = { changed: [] as string[], remoteOnly: [] as string[], siteOnly: [] as string[] };
          for (const [key, hash] of sorted(remote)) {
            const s = siteRows.get(key.join(','));
            if (!s) expected.remoteOnly.push(key.join('\t'));
            else if (s[1] !== hash) expected.changed.push(key.join('\t'));
          }
          for (const [key] of sorted([...siteRows.values()]))
            if (!remoteMap.has(key.join(','))) expected.siteOnly.push(key.join('\t'));

          const diff = await mergeKeyHashes(
            streamOf(sorted(remote).map(line), remoteCuts),
            streamOf(sorted([...siteRows.values()]).map(line), siteCuts),
            columns,
            1_000,
          );

          expect({ changed: diff.changed, remoteOnly: diff.remoteOnly, siteOnly: diff.siteOnly }).toEqual(
            expected,
          );
          expect(diff).toMatchObject({ remoteRows: remote.length, siteRows: siteRows.size, overflow: false });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps at most the limit of keys but counts them all', async () => {
    const remote = Array.from({ length: 100 }, (_, i) => `${i}\t1`);
    const site = Array.from({ length: 100 }, (_, i) => `${i + 50}\t2`);

    const diff = await mergeKeyHashes(streamOf(remote), streamOf(site), 1, 10);

    expect(diff).toMatchObject({ overflow: true, differing: 150, remoteRows: 100, siteRows: 100 });
    expect(diff.changed.length + diff.remoteOnly.length + diff.siteOnly.length).toBe(10);
  });

  it.each([
    [['1', '3', '2'], '2'],
    // Keys alike in their high 32 bits: the low halves are unsigned.
    [['1', '4294967295', '1'], '1'],
    [['-1', '-4294967296', '-4294967295'], '-4294967296'],
    [['1', '1'], '1'],
  ])(
    'refuses a stream out of key order (%j) instead of reporting equal rows as missing',
    async (keys, at) => {
      await expect(
        mergeKeyHashes(streamOf(keys.map((k) => `${k}\t5`)), streamOf(['1\t5']), 1, 10),
      ).rejects.toMatchObject({
        code: 'INTERNAL_ERROR',
        message: expect.stringContaining(
          `remote key hashes are not in strictly ascending key order at ${at}`,
        ),
      });
    },
  );

  it('refuses a stream that ends inside a tuple or without its trailer', async () => {
    const whole = Buffer.concat([SIGNATURE, Buffer.alloc(8), tuple([1n, 5n]), tuple([2n, 5n])]);
    for (const cut of [whole.subarray(0, whole.length - 3), whole])
      await expect(mergeKeyHashes(Readable.from([cut]), streamOf([]), 1, 10)).rejects.toMatchObject({
        code: 'INTERNAL_ERROR',
        message: expect.stringContaining('ended without its trailer'),
      });
  });

  it('refuses a NULL key instead of merging it as some number', async () => {
    const withNull = Buffer.from(tuple([1n, 5n]));
    withNull.writeInt32BE(-1, 2);
    const stream = Readable.from([
      Buffer.concat([SIGNATURE, Buffer.alloc(8), withNull, Buffer.from([0xff, 0xff])]),
    ]);
    await expect(mergeKeyHashes(stream, streamOf([]), 1, 10)).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
      message: expect.stringContaining('a NULL key'),
    });
  });

  describe('by slot, in any order', () => {
    /** Keys near the slots, and some far outside them (a new key beyond the site's last, a negative one). */
    const key = fc.oneof(
      { weight: 6, arbitrary: fc.bigInt({ min: 990n, max: 1_070n }) },
      { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) },
    );
    const rows = fc.uniqueArray(fc.tuple(key, fc.integer({ min: 0, max: 2 })), {
      selector: ([k]) => k,
      maxLength: 60,
    });

    it('finds exactly the changed, remote-only and site-only keys, in any order and however cut', async () => {
      await fc.assert(
        fc.asyncProperty(
          rows,
          rows,
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 })), { maxLength: 40 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.integer({ min: 1, max: 80 }),
          async (remote, site, shared, remoteCuts, siteCuts, limit) => {
            const siteRows = new Map(site.map(([k, h]) => [k, h]));
            for (const [i, hash] of shared) {
              const row = remote[i % Math.max(1, remote.length)];
              if (row) siteRows.set(row[0], hash);
            }
            const remoteRows = new Map(remote.map(([k, h]) => [k, h]));
            const lines = (m: Map<bigint, number>) => [...m].map(([k, h]) => `${k}\t${h - 1}`);

            const diff = await compareKeyHashesBySlot(
              streamOf(lines(remoteRows), remoteCuts),
              streamOf(lines(siteRows), siteCuts),
              { lo: 1_000n, slots: 50 },
              limit,
            );

            // Keys outside the slots are kept apart, at most `limit` of them, whether they differ or not.
            const apart = new Set(
              [...remoteRows.keys(), ...siteRows.keys()].filter((k) => k < 1_000n || k >= 1_050n),
            );
            expectModel(
              diff,
              modelDiff(remoteRows, siteRows),
              { remote: remoteRows.size, site: siteRows.size },
              limit,
              apart.size <= limit,
            );
          },
        ),
        { numRuns: 300 },
      );
    });

    it('refuses a side that sends a key twice, inside the slots or outside them', async () => {
      for (const k of ['1001', '99999999999'])
        await expect(
          compareKeyHashesBySlot(
            streamOf([`${k}\t5`, `${k}\t6`]),
            streamOf([]),
            { lo: 1_000n, slots: 50 },
            10,
          ),
        ).rejects.toMatchObject({
          code: 'INTERNAL_ERROR',
          message: expect.stringContaining(`the remote key hashes hold the key ${k} twice`),
        });
    });

    it('takes slots only for dense keys of safe integers, never more than a bound', () => {
      expect(keySlots(1n, 1_000_000n, 1_000_000)).toEqual({ lo: 1n, slots: 1_000_000 });
      // Sparse: a few rows over a wide range, or more slots than any table may take.
      expect(keySlots(1n, 10_000_000n, 1_000)).toBeUndefined();
      expect(keySlots(1n, 2n ** 22n, 2 ** 22)).toBeUndefined();
      expect(keySlots(2n ** 60n, 2n ** 60n + 10n, 11)).toBeUndefined();
      expect(keySlots(5n, 4n, 0)).toBeUndefined();
    });
  });

  describe('one or two integer key columns, by table, in any order', () => {
    it('is made for a uuid or one or two integer columns only', () => {
      expect(tableKeyOf(['uuid'])).toEqual({ kind: 'uuid' });
      expect(tableKeyOf(['bigint'])).toEqual({ kind: 'integers', columns: 1 });
      expect(tableKeyOf(['bigint', 'integer'])).toEqual({ kind: 'integers', columns: 2 });
      expect(tableKeyOf(['bigint', 'bigint', 'bigint'])).toBeUndefined();
      expect(tableKeyOf(['bigint', 'uuid'])).toBeUndefined();
      expect(tableKeyOf(['text'])).toBeUndefined();
    });

    it('finds exactly the changed, remote-only and site-only keys, in any order and however cut', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(1 as const, 2 as const).chain((columns) =>
            fc.record({
              columns: fc.constant(columns),
              remote: side(columns),
              site: side(columns),
              shared: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 })), { maxLength: 40 }),
              remoteCuts: fc.array(fc.nat(), { maxLength: 8 }),
              siteCuts: fc.array(fc.nat(), { maxLength: 8 }),
              limit: fc.integer({ min: 1, max: 80 }),
              keys: fc.integer({ min: 1, max: 90 }),
              firstSlots: fc.integer({ min: 1, max: 8 }),
              order: fc.integer(),
            }),
          ),
          async ({ columns, remote, site, shared, remoteCuts, siteCuts, limit, keys, firstSlots, order }) => {
            // Keys as the table names them: the columns' decimal text, tab-joined.
            const siteRows = new Map(site.map(([key, hash]) => [key.join('\t'), hash]));
            for (const [i, hash] of shared) {
              const row = remote[i % Math.max(1, remote.length)];
              if (row) siteRows.set(row[0].join('\t'), hash);
            }
            const remoteRows = new Map(remote.map(([key, hash]) => [key.join('\t'), hash]));
            // Any order: the rows shuffled by a seed of their own.
            const shuffled = (rows: Map<string, number>) =>
              [...rows].sort(([a], [b]) => hashOf(a, order) - hashOf(b, order) || (a < b ? -1 : 1));
            const lines = (rows: Map<string, number>) => shuffled(rows).map(([k, h]) => `${k}\t${h - 1}`);

            const diff = await compareKeyHashesInTable(
              streamOf(lines(remoteRows), remoteCuts),
              streamOf(lines(siteRows), siteCuts),
              { kind: 'integers', columns },
              keys,
              limit,
              firstSlots,
            );

            expectTableModel(diff, remoteRows, siteRows, keys, limit);
          },
        ),
        { numRuns: 300 },
      );
    });

    it('holds only the keys waiting for their other side: sides in much the same order take a few slots', async () => {
      // 20,000 associations in the order both sides wrote them, but 300 the site moved to its end
      // (updated rows) and 100 only the remote has; 50 rows differ.
      const all = Array.from({ length: 20_000 }, (_, i) => `${1_000 + Math.floor(i / 50)}\t${i}`);
      const moved = new Set(all.filter((_, i) => i % 67 === 5).slice(0, 300));
      const changed = new Set(all.filter((_, i) => i % 400 === 9));
      const remoteLines = [...all, ...Array.from({ length: 100 }, (_, i) => `9999\t${i}`)].map(
        (k) => `${k}\t1`,
      );
      const siteLines = [...all.filter((k) => !moved.has(k)), ...moved].map(
        (k) => `${k}\t${changed.has(k) ? 2 : 1}`,
      );
      // Chunks of 200 tuples (38 bytes each, after the 19 of the header), one per turn of the
      // event loop, as two sockets deliver them.
      const paced = (lines: string[]) => {
        const cuts = Array.from({ length: Math.ceil(lines.length / 200) }, (_, i) => 19 + i * 200 * 38);
        const chunks = streamOf(lines, cuts);
        return Readable.from(
          (async function* () {
            for await (const chunk of chunks) {
              await new Promise((resolve) => setImmediate(resolve));
              yield chunk;
            }
          })(),
        );
      };

      const diff = await compareKeyHashesInTable(
        paced(remoteLines),
        paced(siteLines),
        { kind: 'integers', columns: 2 },
        tableKeys(20_100)!,
        10_000,
      );

      expect(diff).toMatchObject({
        overflow: false,
        differing: changed.size + 100,
        remoteRows: 20_100,
        siteRows: 20_000,
      });
      expect(diff.changed.sort()).toEqual([...changed].sort());
      expect(diff.remoteOnly).toHaveLength(100);
      // The moved rows' other sides, the remote-only keys and a few chunks in flight: not 20,000.
      expect(diff.waited).toBeGreaterThanOrEqual(300);
      expect(diff.waited).toBeLessThan(1_500);
    });

    it('refuses a side that sends a key of two columns twice, and a key of the wrong width', async () => {
      await expect(
        compareKeyHashesInTable(
          streamOf(['7\t-1\t5', '7\t-1\t6']),
          streamOf([]),
          { kind: 'integers', columns: 2 },
          10,
          10,
        ),
      ).rejects.toMatchObject({
        code: 'INTERNAL_ERROR',
        message: expect.stringContaining('the remote key hashes hold the key 7\t-1 twice'),
      });
      await expect(
        compareKeyHashesInTable(streamOf(['7\t5']), streamOf([]), { kind: 'integers', columns: 2 }, 10, 10),
      ).rejects.toMatchObject({
        code: 'INTERNAL_ERROR',
        message: expect.stringContaining('the remote key hashes are not the binary COPY they should be'),
      });
    });
  });

  describe('a uuid key, by table, in any order', () => {
    /** A binary COPY of (uuid, bigint hash) tuples, cut into chunks at the given byte offsets. */
    function uuidStream(rows: readonly [string, number][], cuts: readonly number[] = []): Readable {
      const tuples = rows.map(([uuid, hash]) => {
        const bytes = Buffer.alloc(2 + 20 + 12);
        bytes.writeInt16BE(2, 0);
        bytes.writeInt32BE(16, 2);
        Buffer.from(uuid.replace(/-/g, ''), 'hex').copy(bytes, 6);
        bytes.writeInt32BE(8, 22);
        bytes.writeBigInt64BE(BigInt(hash), 26);
        return bytes;
      });
      return binaryCopy(tuples, cuts);
    }
    // Words from a small set, so that keys share leading words (as time-ordered uuids do) and
    // collide in the table; and now and then any uuid at all.
    const word = fc.constantFrom('00000000', '00000001', 'ffffffff', '7fffffff', '80000000', '0badf00d');
    const uuid = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(word, word, word, word)
          .map(([a, b, c, d]) => `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`),
      },
      { weight: 1, arbitrary: fc.uuid() },
    );
    const rows = fc.uniqueArray(fc.tuple(uuid, fc.integer({ min: 0, max: 2 })), {
      selector: ([k]) => k,
      maxLength: 60,
    });

    it('finds exactly the changed, remote-only and site-only keys, in any order and however cut', async () => {
      await fc.assert(
        fc.asyncProperty(
          rows,
          rows,
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 })), { maxLength: 40 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.integer({ min: 1, max: 80 }),
          fc.integer({ min: 1, max: 90 }),
          fc.integer({ min: 1, max: 8 }),
          async (remote, site, shared, remoteCuts, siteCuts, limit, keys, firstSlots) => {
            const siteRows = new Map(site);
            for (const [i, hash] of shared) {
              const row = remote[i % Math.max(1, remote.length)];
              if (row) siteRows.set(row[0], hash);
            }
            const remoteRows = new Map(remote);

            const diff = await compareKeyHashesInTable(
              uuidStream([...remoteRows], remoteCuts),
              uuidStream([...siteRows], siteCuts),
              { kind: 'uuid' },
              keys,
              limit,
              firstSlots,
            );

            expectTableModel(diff, remoteRows, siteRows, keys, limit);
          },
        ),
        { numRuns: 300 },
      );
    });

    it('refuses a side that sends a key twice, in the table or apart from it', async () => {
      const key = '0badf00d-0000-0001-ffff-ffff7fffffff';
      for (const keys of [10, 1])
        await expect(
          compareKeyHashesInTable(
            uuidStream([
              ['00000000-0000-0000-0000-000000000001', 1],
              [key, 5],
              [key, 6],
            ]),
            uuidStream([]),
            { kind: 'uuid' },
            keys,
            10,
          ),
        ).rejects.toMatchObject({
          code: 'INTERNAL_ERROR',
          message: expect.stringContaining(`the remote key hashes hold the key ${key} twice`),
        });
    });

    it('refuses a NULL key, and is made only for tables small enough to hold', async () => {
      const nullKey = Buffer.concat([
        SIGNATURE,
        Buffer.alloc(8),
        Buffer.from([0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]),
        Buffer.from([0xff, 0xff]),
      ]);
      await expect(
        compareKeyHashesInTable(Readable.from([nullKey]), uuidStream([]), { kind: 'uuid' }, 10, 10),
      ).rejects.toMatchObject({
        code: 'INTERNAL_ERROR',
      });
      expect(tableKeys(1_000_000)).toBeGreaterThan(1_000_000);
      expect(tableKeys(MAX_TABLE_KEYS)).toBeUndefined();
    });
  });
});
