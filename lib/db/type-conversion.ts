/**
 * Whether a remote column's values survive the trip into its site column. The engine moves every
 * value as the remote server's text and casts that text to the site column's type (sync-sql's
 * upsertFrom), the column's modifier applied on assignment: so a conversion is the site type's
 * input reading the remote type's output. Into a string column it always works; between related
 * types it is a question of range and precision; where the remote's text is never input of the
 * site's type (jsonb into integer) it cannot work.
 */

export interface ColumnType {
  /** `format_type` with the modifier (`numeric(18,6)`, `character varying(2)`); a domain as its base type. */
  readonly type: string;
  /** `format_type` without it (`numeric`, `character varying`). */
  readonly base: string;
  /** The modifier (atttypmod); negative when there is none. */
  readonly typmod: number;
  /** `pg_type.typcategory`: N numeric, S string, D date and time, E enum, U json and other types, … */
  readonly category: string;
}

export type Conversion =
  | { readonly status: 'ok' }
  | { readonly status: 'warn' | 'fail'; readonly why: string };

const OK: Conversion = { status: 'ok' };
const lossy = (why: string): Conversion => ({ status: 'warn', why });
const places = (scale: number) => `${scale} decimal place${scale === 1 ? '' : 's'}`;

/** The numbers a type's modifier shows: `numeric(18,6)` → [18, 6], `timestamp(3) with time zone` → [3]. */
export function modifiers(type: string): number[] {
  const inside = type.match(/\(([\d,\s-]+)\)/)?.[1];
  return inside === undefined ? [] : inside.split(',').map((n) => Number(n.trim()));
}

/** The most decimal digits an integer value has; its bits. */
const INTEGER_DIGITS: Readonly<Record<string, number>> = { smallint: 5, integer: 10, bigint: 19 };
const INTEGER_BITS: Readonly<Record<string, number>> = { smallint: 16, integer: 32, bigint: 64 };
/** The integers a floating point type holds exactly: up to 2 to the power of its mantissa bits. */
const MANTISSA_BITS: Readonly<Record<string, number>> = { real: 24, 'double precision': 53 };
const TIMESTAMPS = new Set(['timestamp without time zone', 'timestamp with time zone']);
const FRACTIONAL_SECONDS = new Set([...TIMESTAMPS, 'time without time zone', 'time with time zone']);

function intoString(remote: ColumnType, site: ColumnType): Conversion {
  const [length] = site.typmod >= 0 ? modifiers(site.type) : [];
  if (length === undefined) return OK; // text, or a length-less varchar or bpchar: every text fits
  const [remoteLength] = remote.category === 'S' && remote.typmod >= 0 ? modifiers(remote.type) : [];
  if (site.base === 'character') {
    if (remote.base === 'character' && remoteLength === length) return OK;
    return lossy(`a value is padded with spaces to ${length} characters, and a longer one is refused`);
  }
  if (remoteLength !== undefined && remoteLength <= length) return OK;
  return lossy(`a value longer than ${length} characters is refused`);
}

function numericScale(remote: readonly number[], precision: number, scale: number): Conversion {
  const digits = precision - scale;
  if (remote.length === 0) {
    return lossy(
      `a value is rounded to ${places(scale)}, and one of more than ${digits} integer digits is refused`,
    );
  }
  const [remotePrecision = 0, remoteScale = 0] = remote;
  const losses: string[] = [];
  if (scale < remoteScale) losses.push(`a value is rounded to ${places(scale)}`);
  if (digits < remotePrecision - remoteScale)
    losses.push(`a value of more than ${digits} integer digits is refused`);
  return losses.length > 0 ? lossy(losses.join(', and ')) : OK;
}

function fractionalSeconds(remote: ColumnType, site: ColumnType): Conversion {
  const [remoteDigits = 6] = remote.typmod >= 0 ? modifiers(remote.type) : [];
  const [siteDigits = 6] = site.typmod >= 0 ? modifiers(site.type) : [];
  return siteDigits < remoteDigits ? lossy(`fractional seconds are rounded to ${siteDigits} digits`) : OK;
}

function sameType(remote: ColumnType, site: ColumnType): Conversion {
  if (site.typmod < 0 || remote.type === site.type) return OK;
  if (site.base === 'numeric') {
    const [precision = 0, scale = 0] = modifiers(site.type);
    return numericScale(remote.typmod >= 0 ? modifiers(remote.type) : [], precision, scale);
  }
  if (FRACTIONAL_SECONDS.has(site.base) && modifiers(site.type).length > 0)
    return fractionalSeconds(remote, site);
  return lossy(`${site.type} may not hold every ${remote.type} value`);
}

/** Between the numeric types, the date and time types and json: what each pair keeps. */
function relatedTypes(remote: ColumnType, site: ColumnType): Conversion | undefined {
  const from = remote.base;
  const to = site.base;
  const fromBits = INTEGER_BITS[from];
  const toBits = INTEGER_BITS[to];
  const [precision, scale = 0] = to === 'numeric' && site.typmod >= 0 ? modifiers(site.type) : [];
  if (fromBits !== undefined && toBits !== undefined)
    return fromBits <= toBits ? OK : lossy(`a value out of the ${to} range is refused`);
  if (fromBits !== undefined && to === 'numeric') {
    if (precision === undefined || precision - scale >= INTEGER_DIGITS[from]!) return OK;
    return lossy(`a value of more than ${precision - scale} integer digits is refused`);
  }
  if (fromBits !== undefined && MANTISSA_BITS[to] !== undefined) {
    return fromBits <= MANTISSA_BITS[to]! ? OK : lossy(`a large value is rounded to ${to} precision`);
  }
  if (from === 'numeric' && toBits !== undefined) {
    const [remotePrecision, remoteScale = 0] = remote.typmod >= 0 ? modifiers(remote.type) : [];
    const fits = remotePrecision !== undefined && remoteScale <= 0 && remotePrecision < INTEGER_DIGITS[to]!;
    return fits ? OK : lossy(`a value with a fraction, or out of the ${to} range, is refused`);
  }
  if (MANTISSA_BITS[from] !== undefined && toBits !== undefined)
    return lossy(`a value with a fraction, or out of the ${to} range, is refused`);
  if ((from === 'numeric' || MANTISSA_BITS[from] !== undefined) && MANTISSA_BITS[to] !== undefined) {
    const exact = from !== 'numeric' && MANTISSA_BITS[from]! <= MANTISSA_BITS[to]!;
    return exact ? OK : lossy(`a value is rounded to ${to} precision`);
  }
  if (MANTISSA_BITS[from] !== undefined && to === 'numeric') {
    if (precision === undefined) return OK;
    return lossy(`a value is rounded to ${places(scale)}, and a larger or infinite one is refused`);
  }
  if (from === 'date' && TIMESTAMPS.has(to)) return OK;
  if (from === 'timestamp without time zone' && to === 'timestamp with time zone')
    return fractionalSeconds(remote, site); // read as UTC, the sessions' time zone
  if (from === 'timestamp with time zone' && to === 'timestamp without time zone') {
    const rounded = fractionalSeconds(remote, site);
    const dropped = 'the UTC offset is dropped (values are kept as UTC)';
    return lossy('why' in rounded ? `${dropped}, and ${rounded.why}` : dropped);
  }
  if (TIMESTAMPS.has(from) && to === 'date') return lossy('the time of day is dropped');
  if (from === 'jsonb' && to === 'json') return OK;
  if (from === 'json' && to === 'jsonb') return lossy('spacing, key order and duplicate keys are not kept');
  return undefined;
}

export function conversion(remote: ColumnType, site: ColumnType): Conversion {
  if (site.category === 'S') return intoString(remote, site);
  if (remote.base === site.base) return sameType(remote, site);
  const related = relatedTypes(remote, site);
  if (related) return related;
  if (remote.category === 'S' || remote.category === 'E')
    return lossy(`a value that is not valid ${site.base} input is refused`);
  if (remote.category === site.category && !['U', 'X', 'P'].includes(site.category))
    return lossy('converted through text: a value may be refused or changed');
  return { status: 'fail', why: `a ${remote.base} value is not ${site.base} input: no conversion` };
}
