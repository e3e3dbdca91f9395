/**
 * The array literals sent as parameters (lib/db/array-literal.ts) read back from PostgreSQL as the
 * very values they were built from: any text (quotes, backslashes, braces, commas, white space,
 * the word NULL in any case, the empty string, any unicode), integers of every width, uuids and
 * booleans. fast-check prints the seed of a failure.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { arrayLiteral, booleanArrayLiteral } from '../../lib/db/array-literal';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

describe('array literals', () => {
  let db: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase('array_literal');
    client = new Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  /** The array PostgreSQL reads from the literal, each element as text. */
  async function readBack(literal: string, type: string): Promise<string[]> {
    const { rows } = await client.query<{ e: string }>(
      `SELECT e::text AS e FROM unnest($1::${type}[]) WITH ORDINALITY AS u (e, i) ORDER BY i`,
      [literal],
    );
    return rows.map((row) => row.e);
  }

  // What the array syntax gives a meaning to, then any text (but NUL, which no text holds).
  const awkward = fc.constantFrom(
    ...['', 'NULL', 'null', 'Null', ' ', 'a b', '{', '}', ',', '"', '\\', '\\"'],
    ...['a,b', '{x}', '\t', '\n', 'é', '😀'],
  );
  const text = fc.oneof(
    awkward,
    fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !s.includes('\0')),
  );

  it('reads back any text as it was', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(text, { maxLength: 30 }), async (values) => {
        expect(await readBack(arrayLiteral(values), 'text')).toEqual(values);
      }),
      { numRuns: 200 },
    );
  });

  it('reads back integers and uuids unquoted, and booleans', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 30 }),
        fc.array(fc.uuid(), { maxLength: 10 }),
        fc.array(fc.boolean(), { maxLength: 10 }),
        async (integers, uuids, booleans) => {
          const decimals = integers.map(String);
          expect(arrayLiteral(decimals)).toBe(`{${decimals.join(',')}}`);
          expect(await readBack(arrayLiteral(decimals), 'bigint')).toEqual(decimals);
          expect(await readBack(arrayLiteral(uuids), 'uuid')).toEqual(uuids);
          expect(await readBack(booleanArrayLiteral(booleans), 'boolean')).toEqual(
            booleans.map((b) => (b ? 'true' : 'false')),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('makes the empty array of no values', async () => {
    expect(arrayLiteral([])).toBe('{}');
    expect(await readBack(arrayLiteral([]), 'bigint')).toEqual([]);
  });
});
