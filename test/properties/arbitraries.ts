/**
 * Generators for the correctness properties: remote states, starting site states and remote edits
 * of meter, register and device_register, every value as the text the server will cast.
 *
 * Replaying a failure: fast-check prints `{ seed: S, path: "P", endOnFailure: true }` with the
 * shrunk counterexample. Run
 *   PROPERTY_SEED=S PROPERTY_PATH='P' npx jest test/properties/<file>.test.ts -t 'property N:'
 * to run exactly that counterexample again (see propertyParameters in property-databases.ts).
 * Without PROPERTY_PATH, PROPERTY_SEED replays the whole run from that seed.
 * PROPERTY_RUNS sets the number of runs per property (default 100; e.g. 1000 for a deep local run);
 * PROPERTY_VERBOSE=1 also lists the failures met while shrinking, 2 every value tried.
 */
import fc from 'fast-check';
import type { Row } from '../../lib/db/rows';
import { KEY_COLUMNS as KEYS, type Table, type TableRows } from './model';

// ---- values ---------------------------------------------------------------------------------

/** Text that COPY's text format, array literals and SQL quoting all have to escape or keep apart. */
const HOSTILE_PIECES = [
  '',
  'x',
  ' ',
  "'",
  '"',
  '\\',
  '\\\\',
  '\\N',
  '\\.',
  '\\t',
  '\t',
  '\n',
  '\r',
  '\r\n',
  'NULL',
  'null',
  ',',
  '{}',
  '"\\"',
  '$1',
  '%_',
  'e\u0301',
  'n\u0303\u0323',
  '🧪',
  '👩‍🔧',
  '🇩🇪',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\u00a0',
  '\u202e',
  '\u007f',
  '\u0001',
  'Zähler',
  '東京',
  'ﷺ',
] as const;

const noNul = (s: string) => !s.includes('\0');

/** One unit of hostile text: a known troublemaker, any grapheme, or any code point but NUL. */
const hostileUnit = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_PIECES) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter(noNul) },
);

export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_PIECES) },
  { weight: 3, arbitrary: fc.string({ unit: hostileUnit, maxLength: 6 }) },
);

/** SQL NULL in a nullable column, often. Shrinks towards NULL. */
export function nullable<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.option(arbitrary, { nil: null, freq: 4 });
}

/** integer input: the limits, and spellings the server normalises (`+5`, ` 007 `). */
export const int4Text: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('0', '1', '502', '-1', '2147483647', '-2147483648', '+5', ' 007 '),
  fc.integer().map(String),
);

export const boolText: fc.Arbitrary<string> = fc.constantFrom(
  't',
  'f',
  'true',
  'false',
  'on',
  'off',
  '1',
  '0',
  'yes',
  'no',
  ' TRUE ',
);

/** numeric(18,6): its limits, rounding past six digits, NaN, exponents, and ordinary values. */
export const scaleText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '0',
    '1',
    '999999999999.999999',
    '-999999999999.999999',
    '0.000001',
    '-0.000001',
    '0.0000005',
    '-0',
    '1e3',
    '1.5E-4',
    'NaN',
    '999999999999.9999994',
  ),
  fc
    .tuple(fc.boolean(), fc.bigInt(0n, 999_999_999_999n), fc.integer({ min: 0, max: 999_999 }))
    .map(
      ([negative, whole, fraction]) => `${negative ? '-' : ''}${whole}.${String(fraction).padStart(6, '0')}`,
    ),
);

const two = (n: number) => String(n).padStart(2, '0');

/** timestamptz: microseconds, odd offsets, year 1, BC, beyond 9999, and ±infinity. */
export const timestamptzText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '2024-01-01 00:00:00+00',
    'infinity',
    '-infinity',
    '0001-01-01 00:00:00+00',
    '0001-01-01 00:00:00.000001+00 BC',
    '9999-12-31 23:59:59.999999+00',
    '4713-01-01 00:00:00+00 BC',
    '294276-12-31 23:59:59.999999+00',
    '2024-02-29 12:00:00.000001+05:30',
    '2024-03-31 02:30:00-15:59',
  ),
  fc
    .record({
      year: fc.integer({ min: 1, max: 9999 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 28 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.integer({ min: 0, max: 59 }),
      second: fc.integer({ min: 0, max: 59 }),
      micros: fc.option(fc.integer({ min: 0, max: 999_999 }), { nil: undefined }),
      offsetMinutes: fc.integer({ min: -959, max: 959 }),
      bc: fc.boolean(),
    })
    // timestamptz starts at 4713-01-01 BC (UTC): keep BC years clear of that edge, it has its own constant.
    .map((t) => ({ ...t, year: t.bc ? 1 + (t.year % 4712) : t.year }))
    .map((t) => {
      const fraction = t.micros === undefined ? '' : `.${String(t.micros).padStart(6, '0')}`;
      const sign = t.offsetMinutes < 0 ? '-' : '+';
      const offset = Math.abs(t.offsetMinutes);
      return (
        `${String(t.year).padStart(4, '0')}-${two(t.month)}-${two(t.day)} ` +
        `${two(t.hour)}:${two(t.minute)}:${two(t.second)}${fraction}` +
        `${sign}${two(Math.floor(offset / 60))}:${two(offset % 60)}${t.bc ? ' BC' : ''}`
      );
    }),
);

// jsonb rejects lone surrogates and \u0000; every other string must survive exactly.
const jsonString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('""', '"a"', '"\\u00e9"', '"e\\u0301"', '"\\ud83d\\ude00"', '"\\/"', '"\\"\\\\"'),
  hostileText.filter((s) => !/\p{Cs}/u.test(s)).map((s) => JSON.stringify(s)),
);

const jsonNumber: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('0', '1', '1.0', '1.00', '1e3', '1E+3', '1e-7', '-0', '-0.0', '0.10', '1e40', '-1.5e300'),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);

const jsonSeparator = fc.constantFrom(',', ', ', ' ,\n\t');

/** jsonb input text: nesting, duplicate keys, key order, `1.0` vs `1`, scalars at the top (`null` is not NULL). */
export const jsonText: fc.Arbitrary<string> = fc.letrec<{
  value: string;
  array: string;
  object: string;
}>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    jsonNumber,
    fc.constantFrom('true', 'false', 'null'),
    jsonString,
    tie('array'),
    tie('object'),
  ),
  array: fc
    .tuple(fc.array(tie('value'), { maxLength: 3 }), jsonSeparator)
    .map(([items, separator]) => `[${items.join(separator)}]`),
  object: fc
    .tuple(
      fc.array(fc.tuple(fc.oneof(fc.constantFrom('"a"', '"b"', '"B"', '""'), jsonString), tie('value')), {
        maxLength: 4,
      }),
      jsonSeparator,
    )
    .map(([entries, separator]) => `{${entries.map(([k, v]) => `${k}: ${v}`).join(separator)}}`),
})).value;

/**
 * The same jsonb value spelled differently: every number outside a string gets more digits
 * (`1` → `1.0`, `1.5` → `1.50`), and `,` and `:` get a space. jsonb compares those equal, but its
 * text keeps the digits: a site holding the twin must be updated, by text, not by value.
 */
export function jsonTwin(json: string): string {
  let out = '';
  let i = 0;
  while (i < json.length) {
    const ch = json[i]!;
    if (ch === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      out += json.slice(i, end + 1);
      i = end + 1;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      const token = /^-?[0-9.eE+-]+/.exec(json.slice(i))![0];
      out += /[eE]/.test(token) ? token : token.includes('.') ? `${token}0` : `${token}.0`;
      i += token.length;
    } else {
      out += ch === ',' || ch === ':' ? `${ch} ` : ch;
      i += 1;
    }
  }
  return out;
}

// ---- keys and tenants -------------------------------------------------------------------------

/** The tenants rows mostly belong to, and the edges of the tenant id's range. */
export const TENANTS = [1, 2, 3] as const;
const EDGE_TENANTS = [0, 2_147_483_647] as const;
export const tenantText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TENANTS.map(String)) },
  { weight: 1, arbitrary: fc.constantFrom(...EDGE_TENANTS.map(String)) },
);
/** The tenant a run syncs. */
export const runTenant: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TENANTS) },
  { weight: 1, arbitrary: fc.constantFrom(...EDGE_TENANTS) },
);

/** Few ids, so keys collide across tenants and between remote and site; rarely the bigint limits. */
const bigintKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 5 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('0', '-1', '9223372036854775807', '-9223372036854775808') },
);
export const meterId = bigintKey;
export const registerId = bigintKey;

// ---- rows -------------------------------------------------------------------------------------

export const meterColumns = {
  tenant_id: tenantText,
  name: hostileText,
  serial_number: nullable(hostileText),
  protocol: hostileText,
  ip_address: nullable(hostileText),
  port: nullable(int4Text),
  active: boolText,
  config: nullable(jsonText),
  updated_at: timestamptzText,
};

export const registerColumns = {
  tenant_id: tenantText,
  name: hostileText,
  address: int4Text,
  data_type: hostileText,
  unit: nullable(hostileText),
  scale: scaleText,
  description: nullable(hostileText),
  updated_at: timestamptzText,
};

export const deviceRegisterColumns = {
  poll_interval_s: int4Text,
  enabled: boolText,
};

type Columns = Record<string, fc.Arbitrary<string | null>>;

export const meterRow: fc.Arbitrary<Row> = fc.record({ id: meterId, ...meterColumns });
export const registerRow: fc.Arbitrary<Row> = fc.record({ id: registerId, ...registerColumns });
export const deviceRegisterRow: fc.Arbitrary<Row> = fc.record({
  device_id: meterId,
  register_id: registerId,
  ...deviceRegisterColumns,
});

const keyOf = (keys: readonly string[]) => (row: Row) => keys.map((k) => row[k]).join('\u0000');

function rowsOf(row: fc.Arbitrary<Row>, keys: readonly string[], maxLength: number): fc.Arbitrary<Row[]> {
  return fc.uniqueArray(row, { selector: keyOf(keys), maxLength });
}

/** Any remote state: no foreign keys there, so associations may point anywhere. */
export const remoteState: fc.Arbitrary<TableRows> = fc.record({
  meter: rowsOf(meterRow, KEYS.meter, 8),
  register: rowsOf(registerRow, KEYS.register, 8),
  device_register: rowsOf(deviceRegisterRow, KEYS.device_register, 14),
});

// ---- starting site states ---------------------------------------------------------------------

/**
 * What the site holds of one remote row before the run: nothing, the same row, a row with some
 * columns changed, or its twin (a meter whose jsonb config is the same value spelled differently).
 */
export type Copy =
  | { kind: 'absent' }
  | { kind: 'same' }
  | { kind: 'twin' }
  | { kind: 'changed'; patch: Patch };

/** Some columns of a row, new values for them. */
export type Patch = Partial<Row>;

function copyOf(columns: Columns): fc.Arbitrary<Copy> {
  return fc.oneof(
    fc.constant<Copy>({ kind: 'absent' }),
    fc.constant<Copy>({ kind: 'same' }),
    fc.constant<Copy>({ kind: 'twin' }),
    fc.record({ kind: fc.constant('changed' as const), patch: fc.record(columns, { requiredKeys: [] }) }),
  );
}

/** How to build the starting site from a remote state: copies of remote rows, plus site-only rows. */
export interface SiteRecipe {
  copies: { meter: Copy[]; register: Copy[]; device_register: Copy[] };
  only: TableRows;
}

export const siteRecipe: fc.Arbitrary<SiteRecipe> = fc.record({
  copies: fc.record({
    meter: fc.array(copyOf(meterColumns), { maxLength: 8 }),
    register: fc.array(copyOf(registerColumns), { maxLength: 8 }),
    device_register: fc.array(copyOf(deviceRegisterColumns), { maxLength: 14 }),
  }),
  only: fc.record({
    meter: rowsOf(meterRow, KEYS.meter, 6),
    register: rowsOf(registerRow, KEYS.register, 6),
    device_register: rowsOf(deviceRegisterRow, KEYS.device_register, 10),
  }),
});

function twinOf(row: Row): Row {
  return typeof row.config === 'string' ? { ...row, config: jsonTwin(row.config) } : { ...row };
}

export function applyPatch(row: Row, patch: Patch): Row {
  const patched = { ...row };
  for (const [column, value] of Object.entries(patch)) if (value !== undefined) patched[column] = value;
  return patched;
}

function buildTable(
  remote: readonly Row[],
  copies: readonly Copy[],
  only: readonly Row[],
  keys: readonly string[],
) {
  const rows = new Map<string, Row>();
  remote.forEach((row, i) => {
    const copy = copies[i] ?? { kind: 'absent' };
    if (copy.kind === 'same') rows.set(keyOf(keys)(row), { ...row });
    if (copy.kind === 'twin') rows.set(keyOf(keys)(row), twinOf(row));
    if (copy.kind === 'changed') rows.set(keyOf(keys)(row), applyPatch(row, copy.patch));
  });
  for (const row of only) {
    if (!rows.has(keyOf(keys)(row))) rows.set(keyOf(keys)(row), row);
  }
  return [...rows.values()];
}

/** The starting site for a remote state; associations without both parents on the site are dropped (the site has foreign keys). */
export function buildSite(remote: TableRows, recipe: SiteRecipe): TableRows {
  const meter = buildTable(remote.meter, recipe.copies.meter, recipe.only.meter, KEYS.meter);
  const register = buildTable(remote.register, recipe.copies.register, recipe.only.register, KEYS.register);
  const meters = new Set(meter.map((r) => r.id));
  const registers = new Set(register.map((r) => r.id));
  const device_register = buildTable(
    remote.device_register,
    recipe.copies.device_register,
    recipe.only.device_register,
    KEYS.device_register,
  ).filter((r) => meters.has(r.device_id!) && registers.has(r.register_id!));
  return { meter, register, device_register };
}

/**
 * Many plain rows of the run's tenant on both sides (built in the server, see padTables), every
 * `every`-th one differing on the site. They take the engine past its one-bucket fast paths:
 * several key-hash buckets, whole-bucket staging, and fetching by key.
 */
export interface Padding {
  rows: number;
  every: number;
  /** The tables whose padding differs on the site; the others are equal there. */
  drift: Table[];
}

/** In about one run in twenty: padding costs up to a second or two per run. Shrinks to none. */
export const padding: fc.Arbitrary<Padding | undefined> = fc.oneof(
  { weight: 19, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.record({
      rows: fc.constantFrom(2_500, 4_000),
      every: fc.integer({ min: 1, max: 60 }),
      drift: fc.subarray<Table>(['meter', 'register', 'device_register'], { minLength: 1 }),
    }),
  },
);

/** One run's world: the tenant synced, the remote, and the site before the run. */
export interface SyncCase {
  tenantId: number;
  remote: TableRows;
  site: TableRows;
  padding?: Padding;
}

export const syncCase: fc.Arbitrary<SyncCase> = fc
  .record({ tenantId: runTenant, remote: remoteState, recipe: siteRecipe, padding })
  .map(({ tenantId, remote, recipe, padding }) => ({
    tenantId,
    remote,
    site: buildSite(remote, recipe),
    ...(padding ? { padding } : {}),
  }));

/**
 * The entities of a run: all (no option), or any non-empty subset. A subset without
 * device_register must still succeed: the parent rows the site's associations reference stay,
 * their deletes skipped and counted (DESIGN §3.13).
 */
export const runEntities: fc.Arbitrary<Table[] | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.subarray<Table>(['meter', 'register', 'device_register'], { minLength: 1 }),
);

// ---- remote edits between runs ----------------------------------------------------------------

export type RemoteEdit =
  | { kind: 'upsert'; table: keyof TableRows; row: Row }
  | { kind: 'delete'; table: keyof TableRows; key: Row }
  | { kind: 'move'; table: 'meter' | 'register'; id: string; tenant_id: string }
  | { kind: 'patch'; table: 'meter' | 'register'; id: string; patch: Patch }
  /** A parent row and its associations: deleted together, or the parent alone (its associations stay, orphans). */
  | { kind: 'deleteParent'; table: 'meter' | 'register'; id: string; withChildren: boolean }
  /** A parent row inserted (or rewritten) with associations to rows of the other parent, before or after them. */
  | {
      kind: 'insertParent';
      table: 'meter' | 'register';
      row: Row;
      partners: string[];
      childrenFirst: boolean;
      association: Partial<Row>;
    }
  /** A parent's key changed, and its associations' with it or not. */
  | { kind: 'rekey'; table: 'meter' | 'register'; id: string; to: string; withChildren: boolean };

const parentTable = fc.constantFrom('meter' as const, 'register' as const);

export const remoteEdit: fc.Arbitrary<RemoteEdit> = fc.oneof(
  fc.record({ kind: fc.constant('upsert' as const), table: fc.constant('meter' as const), row: meterRow }),
  fc.record({
    kind: fc.constant('upsert' as const),
    table: fc.constant('register' as const),
    row: registerRow,
  }),
  fc.record({
    kind: fc.constant('upsert' as const),
    table: fc.constant('device_register' as const),
    row: deviceRegisterRow,
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    table: fc.constant('meter' as const),
    key: fc.record({ id: meterId }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    table: fc.constant('register' as const),
    key: fc.record({ id: registerId }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    table: fc.constant('device_register' as const),
    key: fc.record({ device_id: meterId, register_id: registerId }),
  }),
  fc.record({
    kind: fc.constant('move' as const),
    table: fc.constantFrom('meter' as const, 'register' as const),
    id: bigintKey,
    tenant_id: tenantText,
  }),
  fc.record({
    kind: fc.constant('patch' as const),
    table: fc.constant('meter' as const),
    id: meterId,
    patch: fc.record(meterColumns, { requiredKeys: [] }),
  }),
  fc.record({
    kind: fc.constant('patch' as const),
    table: fc.constant('register' as const),
    id: registerId,
    patch: fc.record(registerColumns, { requiredKeys: [] }),
  }),
  fc.record({
    kind: fc.constant('deleteParent' as const),
    table: parentTable,
    id: bigintKey,
    withChildren: fc.boolean(),
  }),
  fc
    .record({
      table: parentTable,
      meter: meterRow,
      register: registerRow,
      partners: fc.uniqueArray(bigintKey, { maxLength: 3 }),
      childrenFirst: fc.boolean(),
      association: fc.record(deviceRegisterColumns),
    })
    .map(
      ({ table, meter, register, ...rest }): RemoteEdit => ({
        kind: 'insertParent',
        table,
        row: table === 'meter' ? meter : register,
        ...rest,
      }),
    ),
  fc.record({
    kind: fc.constant('rekey' as const),
    table: parentTable,
    id: bigintKey,
    to: bigintKey,
    withChildren: fc.boolean(),
  }),
);

/** A batch of remote edits, then a sync of all entities or of some (sometimes preceded by a dry run). */
export interface SyncStep {
  edits: RemoteEdit[];
  dryRunFirst: boolean;
  entities: Table[] | undefined;
}

export const syncSteps: fc.Arbitrary<SyncStep[]> = fc.array(
  fc.record({
    edits: fc.array(remoteEdit, { maxLength: 6 }),
    dryRunFirst: fc.boolean(),
    entities: runEntities,
  }),
  { minLength: 1, maxLength: 5 },
);

// ---- injected failures ------------------------------------------------------------------------

/**
 * Failure isolation injects failures through the site: a site-only CHECK constraint that rejects
 * these marked values, and a mass delete of more than half of a large table.
 */
export const POISON = { text: '☠', pollInterval: '-666' } as const;

/** The CHECK constraints the failure-isolation site databases carry; generated rows avoid them unless poisoned. */
export const POISON_CHECKS: Readonly<Record<Table, string>> = {
  meter: `position('${POISON.text}' in name) = 0`,
  register: `position('${POISON.text}' in name) = 0`,
  device_register: `poll_interval_s <> ${POISON.pollInterval}`,
};

function unpoisoned(table: Table, row: Row): Row {
  if (table === 'device_register') {
    return row.poll_interval_s === POISON.pollInterval ? { ...row, poll_interval_s: '-665' } : row;
  }
  return { ...row, name: row.name!.replaceAll(POISON.text, '') };
}

export function isPoisoned(table: Table, row: Row): boolean {
  return table === 'device_register'
    ? row.poll_interval_s === POISON.pollInterval
    : row.name!.includes(POISON.text);
}

function poisoned(table: Table, row: Row): Row {
  return table === 'device_register'
    ? { ...row, poll_interval_s: POISON.pollInterval }
    : { ...row, name: `${row.name}${POISON.text}` };
}

const BULK_ROWS = 22;

/** Site-only rows of another tenant, enough that deleting them trips the mass-delete guard. */
function bulkRows(table: 'meter' | 'register', tenant: string): Row[] {
  return Array.from({ length: BULK_ROWS }, (_, i): Row => {
    const id = String(1000 + i);
    return table === 'meter'
      ? {
          id,
          tenant_id: tenant,
          name: 'bulk',
          serial_number: null,
          protocol: 'mbus',
          ip_address: null,
          port: null,
          active: 't',
          config: null,
          updated_at: '2024-01-01 00:00:00+00',
        }
      : {
          id,
          tenant_id: tenant,
          name: 'bulk',
          address: '1',
          data_type: 'uint16',
          unit: null,
          scale: '1',
          description: null,
          updated_at: '2024-01-01 00:00:00+00',
        };
  });
}

export interface FailureCase extends SyncCase {
  /** The entity whose step is made to fail. */
  entity: Table;
  /** Remote rows of that entity made to violate its site-only constraint. */
  poisonedRows: number;
  /** Whether the site holds many foreign rows of the entity, whose deletion may trip the mass-delete guard. */
  bulk: boolean;
}

export const failureCase: fc.Arbitrary<FailureCase> = fc
  .record({
    tenantId: runTenant,
    remote: remoteState,
    recipe: siteRecipe,
    entity: fc.constantFrom<Table>('meter', 'register', 'device_register'),
    poison: fc.uniqueArray(fc.nat(13), { maxLength: 3 }),
    bulk: fc.boolean(),
    padding,
  })
  .map(({ tenantId, remote, recipe, entity, poison, bulk, padding }) => {
    const clean = (rows: TableRows): TableRows => ({
      meter: rows.meter.map((r) => unpoisoned('meter', r)),
      register: rows.register.map((r) => unpoisoned('register', r)),
      device_register: rows.device_register.map((r) => unpoisoned('device_register', r)),
    });
    const cleanRemote = clean(remote);
    // A copy's patch may carry the marker too: the site starts clean, its constraints hold.
    const site = clean(buildSite(cleanRemote, recipe));
    const marked = new Set(poison.filter((i) => i < cleanRemote[entity].length));
    const withPoison = {
      ...cleanRemote,
      [entity]: cleanRemote[entity].map((row, i) => (marked.has(i) ? poisoned(entity, row) : row)),
    };
    const withBulk = bulk && entity !== 'device_register';
    if (withBulk) {
      const other = String((tenantId % TENANTS.length) + 1);
      site[entity] = [...site[entity], ...bulkRows(entity, other)];
    }
    return {
      tenantId,
      remote: withPoison,
      site,
      entity,
      poisonedRows: marked.size,
      bulk: withBulk,
      ...(padding ? { padding } : {}),
    };
  });
