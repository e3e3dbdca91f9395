/**
 * The remote-query check reads parameters and statements off the code of a query, with literals,
 * quoted identifiers and comments blanked out. Property: for any text, written as each kind of
 * literal or comment PostgreSQL has, the code keeps nothing of it, and PostgreSQL itself reads
 * back exactly that text and finds the one parameter the check found.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { replaceParameter, SqlTextError, sqlCode, sqlParameters } from '../../lib/entities/sql-code';
import { serverUrl } from '../harness/test-database';

/** Text that is hostile to a lexer: quotes, dollars, backslashes, comment marks, `;`, unicode. */
const hostileText = fc.string({
  unit: fc.oneof(
    fc.constantFrom("'", '"', '$', '\\', ';', '-', '/', '*', '\n', 'E', 'x', '$1', '$2', '$$', '$x$'),
    fc.string({ unit: 'grapheme', maxLength: 2 }),
  ),
  maxLength: 24,
});

type Form =
  | 'standard'
  | 'escape'
  | 'dollar'
  | 'identifier'
  | 'line comment'
  | 'line comment ended by CR'
  | 'block comment';

/** `text` written as a `form`, the way PostgreSQL reads it back as exactly `text`. */
function write(form: Form, text: string): string {
  switch (form) {
    case 'standard':
      return `'${text.replaceAll("'", "''")}'`;
    case 'escape':
      return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
    case 'dollar': {
      let tag = 'q';
      while (`${text}$`.includes(`$${tag}$`)) tag += 'q';
      return `$${tag}$${text}$${tag}$`;
    }
    case 'identifier':
      return `"${text.replaceAll('"', '""')}"`;
    case 'line comment':
      return `-- ${text.replaceAll(/[\n\r]/g, ' ')}\n`;
    case 'line comment ended by CR':
      return `-- ${text.replaceAll(/[\n\r]/g, ' ')}\r`;
    case 'block comment':
      return `/* ${text.replaceAll('*/', '* /').replaceAll('/*', '/ *')} */`;
  }
}

describe('sqlCode', () => {
  let client: Client;
  beforeAll(async () => {
    client = new Client({ connectionString: serverUrl() });
    await client.connect();
  });
  afterAll(() => client.end());

  it('blanks every literal and comment out, as PostgreSQL reads them', async () => {
    await fc.assert(
      fc.asyncProperty(
        hostileText.filter((text) => !text.includes('\0')),
        fc.constantFrom<Form>(
          'standard',
          'escape',
          'dollar',
          'identifier',
          'line comment',
          'line comment ended by CR',
          'block comment',
        ),
        async (text, form) => {
          if (form === 'identifier' && text === '') return; // "" is not an identifier
          const written = write(form, text);
          const value = form.includes('comment') ? `${written} 'c'` : form === 'identifier' ? "'i'" : written;
          const alias = form === 'identifier' ? written : 'v';
          const query = `SELECT ${value} AS ${alias}, $1::int AS t`;

          expect(sqlCode(query).trim()).toMatch(/^SELECT\s+(?:'.')?\s*AS\s+(?:v)?\s*, \$1::int AS t$/);
          expect(sqlParameters(query)).toEqual(new Set(['$1']));
          // An identifier longer than 63 bytes is truncated by the server: only its prefix comes back.
          if (form === 'identifier' && Buffer.byteLength(text) > 63) return;
          const { rows, fields } = await client.query({ text: query, values: [7], rowMode: 'array' });
          expect(rows).toEqual([[form.includes('comment') ? 'c' : form === 'identifier' ? 'i' : text, 7]]);
          if (form === 'identifier') expect(fields[0]!.name).toBe(text);
          // The parameter swapped for the tenant expression the engine uses, the literal untouched.
          const swapped = replaceParameter(query, '$1', '(SELECT 7)');
          expect((await client.query({ text: swapped, rowMode: 'array' })).rows).toEqual(rows);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('names what is left open', () => {
    expect(() => sqlCode("SELECT 'x")).toThrow(new SqlTextError('unterminated string literal'));
    expect(() => sqlCode('SELECT "x')).toThrow(new SqlTextError('unterminated quoted identifier'));
    expect(() => sqlCode('SELECT $a$ x $b$')).toThrow(
      new SqlTextError('unterminated dollar-quoted string $a$'),
    );
    expect(() => sqlCode('SELECT /* /* */')).toThrow(new SqlTextError('unterminated /* comment'));
  });

  it('tells a parameter from an identifier that holds a dollar', () => {
    expect(sqlParameters('SELECT a$1, $2, x.$3 FROM t WHERE id = $10')).toEqual(new Set(['$2', '$3', '$10']));
    expect(replaceParameter("SELECT a$1, $1, '$1', $10 -- $1", '$1', 'T')).toBe(
      "SELECT a$1, T, '$1', $10 -- $1",
    );
  });
});
