/**
 * PostgreSQL array literals for parameters of many elements (`$1::bigint[]`), built flat.
 *
 * pg's own conversion of a JS array appends element after element to one string. V8 keeps each
 * append as a node of a rope until the string is written out, so 71,000 differing keys of two
 * columns (four arrays with their two flags) held about 28 MB of the JS heap at once; V8 keeps the
 * pages of such a peak committed for the rest of the process. `join` writes each literal in one
 * allocation.
 */

/** An element that needs no quotes: not empty, not NULL, and none of `{ } , " \` or white space. */
const BARE = /^[^{}",\\\s]+$/;
const NULL_WORD = /^null$/i;

function element(value: string): string {
  if (BARE.test(value) && !NULL_WORD.test(value)) return value;
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * `{a,b,…}` of values' text, each quoted only where the array syntax needs it (a key's decimal or
 * uuid text never does, so a list of them builds no string per element); no element is NULL.
 */
export function arrayLiteral(values: readonly string[]): string {
  return `{${values.map(element).join(',')}}`;
}

/** `{t,f,…}`. */
export function booleanArrayLiteral(values: readonly boolean[]): string {
  return `{${values.map((v) => (v ? 't' : 'f')).join(',')}}`;
}
