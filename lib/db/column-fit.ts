/**
 * Whether a column a site database already has can stand for the one the site schema creates, so
 * that its table is adopted (DESIGN §2): the same type, or one the design lists as compatible. A
 * compatible type keeps the remote's text of every value it takes, so a synced site still compares
 * equal and a second run writes nothing: any string type for `text` (a value longer than a
 * `varchar(n)` takes is refused loudly, never cut), a `numeric` of the same scale and a greater or
 * no precision, a wider integer. A type that would change values (a smaller scale rounds, a
 * `timestamp` drops the offset) or is another type altogether does not fit.
 */
import { type ColumnType, conversion, modifiers } from './type-conversion';

export type ColumnFit =
  | { readonly fit: 'same' }
  /** `note` says how the site's type differs; `refuses`: some value the schema's type takes, it refuses (a longer text). */
  | { readonly fit: 'compatible'; readonly note: string; readonly refuses: boolean }
  | { readonly fit: 'conflict' };

const SAME: ColumnFit = { fit: 'same' };
const CONFLICT: ColumnFit = { fit: 'conflict' };
/** The string types whose output is exactly the text they were given. (`character(n)` pads it.) */
const TEXT_LIKE = new Set(['text', 'character varying']);
const INTEGERS = new Set(['smallint', 'integer', 'bigint']);

/** The scale of a numeric type: its second modifier, 0 when it has only a precision; undefined without any. */
function scale(type: ColumnType): number | undefined {
  if (type.typmod < 0) return undefined;
  return modifiers(type.type)[1] ?? 0;
}

export function columnFit(expected: ColumnType, site: ColumnType): ColumnFit {
  if (site.type === expected.type) return SAME;
  const converts = conversion(expected, site);
  if (expected.base === 'text' && TEXT_LIKE.has(site.base))
    return converts.status === 'ok'
      ? { fit: 'compatible', note: `${site.type} takes every text`, refuses: false }
      : { fit: 'compatible', note: converts.why, refuses: true };
  if (converts.status !== 'ok') return CONFLICT;
  if (expected.base === 'numeric' && site.base === 'numeric') {
    // A numeric of another scale writes every value with other digits: 1.500000 is not 1.50000000.
    const siteScale = scale(site);
    if (siteScale !== undefined && siteScale !== scale(expected)) return CONFLICT;
    return {
      fit: 'compatible',
      note: `${site.type} holds every ${expected.type} value as it is written`,
      refuses: false,
    };
  }
  if (INTEGERS.has(expected.base) && INTEGERS.has(site.base))
    return { fit: 'compatible', note: `${site.type} holds every ${expected.type} value`, refuses: false };
  // The same type with another modifier that loses nothing (timestamp(6) for timestamp).
  if (site.base === expected.base)
    return { fit: 'compatible', note: `${site.type} holds every value`, refuses: false };
  return CONFLICT;
}
