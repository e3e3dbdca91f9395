/**
 * The code of a SQL text, with what is not code blanked out: string literals (standard, E'' with
 * backslash escapes, dollar-quoted), quoted identifiers and comments (nested block comments too,
 * as PostgreSQL has them). What a query's parameters and statements are is then read off the
 * code alone: `'$1'` is text, not a parameter, and `'a;b'` is not a second statement.
 */

export class SqlTextError extends Error {}

const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
/** A dollar quote's opening tag: `$$` or `$name$` (a `$` and a digit is a parameter instead). */
const DOLLAR_TAG = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/** Returns `sql` with every literal, quoted identifier and comment replaced by spaces. */
export function sqlCode(sql: string): string {
  let code = '';
  let i = 0;
  const blank = (end: number) => {
    code += ' '.repeat(end - i);
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      // A line comment ends at a carriage return too, as the server's lexer has it.
      const end = sql.slice(i).search(/[\n\r]/);
      blank(end === -1 ? sql.length : i + end);
    } else if (c === '/' && next === '*') {
      blank(blockCommentEnd(sql, i));
    } else if (c === "'") {
      const escapes = /[Ee]/.test(sql[i - 1] ?? '') && !IDENT_PART.test(sql[i - 2] ?? '');
      // The E of E'...' belongs to the literal.
      if (escapes) code = `${code.slice(0, -1)} `;
      blank(quotedEnd(sql, i, "'", escapes, 'string literal'));
    } else if (c === '"') {
      blank(quotedEnd(sql, i, '"', false, 'quoted identifier'));
    } else if (c === '$' && !IDENT_PART.test(sql[i - 1] ?? '')) {
      const tag = DOLLAR_TAG.exec(sql.slice(i))?.[0];
      if (tag === undefined) {
        code += c;
        i += 1;
        continue;
      }
      const close = sql.indexOf(tag, i + tag.length);
      if (close === -1) throw new SqlTextError(`unterminated dollar-quoted string ${tag}`);
      blank(close + tag.length);
    } else {
      code += c;
      i += 1;
    }
  }
  return code;
}

/** The index after the block comment opened at `start` (block comments nest). */
function blockCommentEnd(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth += 1;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  throw new SqlTextError('unterminated /* comment');
}

/** The index after the quoted text opened at `start`; a doubled quote is one quote inside it. */
function quotedEnd(
  sql: string,
  start: number,
  quote: string,
  backslashEscapes: boolean,
  what: string,
): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i += 2;
    } else {
      i += 1;
    }
  }
  throw new SqlTextError(`unterminated ${what}`);
}

/** A parameter in code: `$` and digits, not inside an identifier (`a$1` is one identifier). */
const PARAMETER = /(?<![A-Za-z0-9_$\u0080-\uffff])\$\d+/g;

/** The parameters (`$1`, `$2`…) that code (as `sqlCode` returns it) uses. */
export function codeParameters(code: string): Set<string> {
  return new Set(code.match(PARAMETER) ?? []);
}

/** The parameters (`$1`, `$2`…) a query's code uses. */
export function sqlParameters(sql: string): Set<string> {
  return codeParameters(sqlCode(sql));
}

/** `sql` with every use of the parameter `name` (`$1`) in its code replaced, literals untouched. */
export function replaceParameter(sql: string, name: string, replacement: string): string {
  let result = '';
  let last = 0;
  for (const match of sqlCode(sql).matchAll(PARAMETER)) {
    if (match[0] !== name) continue;
    result += sql.slice(last, match.index) + replacement;
    last = match.index + match[0].length;
  }
  return result + sql.slice(last);
}
