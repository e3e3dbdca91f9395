/**
 * The independent oracle of the properties: from snapshots of the remote and of the site (rows of
 * server text), what the site must hold after a run and what a run must count. It shares no code
 * with the engine: the tenant slices and the parent rules are written out here by hand.
 */
import type { Row } from '../../lib/db/rows';

export interface TableRows {
  meter: Row[];
  register: Row[];
  device_register: Row[];
}

export type Table = keyof TableRows;
export const TABLES: readonly Table[] = ['meter', 'register', 'device_register'];

export const KEY_COLUMNS: Readonly<Record<Table, readonly string[]>> = {
  meter: ['id'],
  register: ['id'],
  device_register: ['device_id', 'register_id'],
};

/** The engine's own key format (`device_id=1, register_id=2`), used for skipped-key samples. */
export function keyText(table: Table, row: Row): string {
  return KEY_COLUMNS[table].map((c) => `${c}=${row[c] ?? 'NULL'}`).join(', ');
}

/** A whole row by its text form, column order fixed: equal text means an unchanged row. */
function rowText(row: Row): string {
  return JSON.stringify(
    Object.keys(row)
      .sort()
      .map((c) => [c, row[c]]),
  );
}

function byKey(table: Table, rows: readonly Row[]): Map<string, Row> {
  return new Map(rows.map((row) => [keyText(table, row), row]));
}

/** Byte order, as the server's C collation sorts text. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Rows in a canonical order, so two snapshots of the same rows compare equal. */
export function sorted(table: Table, rows: readonly Row[]): Row[] {
  return [...rows].sort((a, b) => compareBytes(keyText(table, a), keyText(table, b)));
}

export function sortedTables(rows: TableRows): TableRows {
  return {
    meter: sorted('meter', rows.meter),
    register: sorted('register', rows.register),
    device_register: sorted('device_register', rows.device_register),
  };
}

export interface Counts {
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

/** What a row-by-row comparison of the site before and after a run counts (DESIGN §3.7). */
export function diffCounts(table: Table, before: readonly Row[], after: readonly Row[]): Counts {
  const old = byKey(table, before);
  const now = byKey(table, after);
  const counts: Counts = { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
  for (const [key, row] of now) {
    const previous = old.get(key);
    if (!previous) counts.inserted += 1;
    else if (rowText(previous) === rowText(row)) counts.unchanged += 1;
    else counts.updated += 1;
  }
  for (const key of old.keys()) if (!now.has(key)) counts.deleted += 1;
  return counts;
}

export interface Expected {
  /** The site after a successful run of every entity: the tenant's slice, minus associations without parents. */
  site: TableRows;
  /** The tenant's slice of each entity on the remote (what the run reads). */
  slice: TableRows;
  /** Associations of the slice that must be skipped: a parent missing or of another tenant. */
  skipped: Row[];
  /**
   * Meters and registers gone from the slice that a run without device_register keeps: the site's
   * associations, which the run leaves as they are, still reference them (DESIGN §3.13).
   */
  pinned: { meter: Row[]; register: Row[] };
}

/** Why a run without device_register keeps a parent row (the engine's words). */
export const PINNED_REASON = 'referenced by device_register rows outside this run';

/**
 * The expected outcome of a successful run for `tenantId`, from a snapshot of the remote. A run of
 * some entities only (`entities`) leaves the others as the site had them (`before`), and its
 * associations are then checked against the parents the site keeps.
 */
export function expectedRun(
  remote: TableRows,
  tenantId: number,
  before?: TableRows,
  entities: readonly Table[] = TABLES,
): Expected {
  const tenant = String(tenantId);
  const synced = (table: Table) => entities.includes(table);
  const kept = (table: Table) => {
    if (!before) throw new Error(`a run without ${table} needs the site before the run`);
    return before[table];
  };
  const meterSlice = remote.meter.filter((m) => m.tenant_id === tenant);
  const registerSlice = remote.register.filter((r) => r.tenant_id === tenant);
  // An association belongs to the tenant of its meter on the remote.
  const tenantMeters = new Set(meterSlice.map((m) => m.id));
  const drSlice = remote.device_register.filter((a) => tenantMeters.has(a.device_id!));

  // Without device_register, the site's associations stay, and so do the parent rows they reference.
  const keptAssociations = synced('device_register') ? [] : kept('device_register');
  const pinnedRows = (table: 'meter' | 'register', slice: Row[], column: 'device_id' | 'register_id') => {
    if (!synced(table) || keptAssociations.length === 0) return [];
    const inSlice = new Set(slice.map((row) => row.id));
    const referenced = new Set(keptAssociations.map((a) => a[column]));
    return kept(table).filter((row) => !inSlice.has(row.id) && referenced.has(row.id));
  };
  const pinned = {
    meter: pinnedRows('meter', meterSlice, 'device_id'),
    register: pinnedRows('register', registerSlice, 'register_id'),
  };
  const meter = synced('meter') ? [...meterSlice, ...pinned.meter] : kept('meter');
  const register = synced('register') ? [...registerSlice, ...pinned.register] : kept('register');
  const meterIds = new Set(meter.map((m) => m.id));
  const registerIds = new Set(register.map((r) => r.id));
  const hasParents = (a: Row) => meterIds.has(a.device_id!) && registerIds.has(a.register_id!);
  const skipped = synced('device_register') ? drSlice.filter((a) => !hasParents(a)) : [];
  const deviceRegister = synced('device_register') ? drSlice.filter(hasParents) : kept('device_register');
  return {
    site: sortedTables({ meter, register, device_register: deviceRegister }),
    slice: sortedTables({ meter: meterSlice, register: registerSlice, device_register: drSlice }),
    skipped: sorted('device_register', skipped),
    pinned: { meter: byNumericKey(pinned.meter), register: byNumericKey(pinned.register) },
  };
}

/** Rows of an integer key in the key's order (the order the engine samples pinned keys in). */
function byNumericKey(rows: readonly Row[]): Row[] {
  return [...rows].sort((a, b) =>
    BigInt(a.id!) < BigInt(b.id!) ? -1 : BigInt(a.id!) > BigInt(b.id!) ? 1 : 0,
  );
}

/** The skipped-key sample the engine reports for a parent: its pinned keys, the first few in key order. */
export function pinnedSample(expected: Expected, table: 'meter' | 'register', limit: number): string[] {
  return expected.pinned[table].slice(0, limit).map((row) => keyText(table, row));
}

/** The keys the engine samples for skipped rows: the first few in key order (text, C collation). */
export function skippedSample(skipped: readonly Row[], limit: number): string[] {
  return [...skipped]
    .sort((a, b) => compareBytes(a.device_id!, b.device_id!) || compareBytes(a.register_id!, b.register_id!))
    .slice(0, limit)
    .map((row) => keyText('device_register', row));
}

/** Expected per-entity result fields of a successful run, from the site before and after. */
export function expectedCounts(
  before: TableRows,
  after: TableRows,
  expected: Expected,
): Record<Table, Counts & { skipped: number; remoteRows: number }> {
  const entry = (table: Table) => ({
    ...diffCounts(table, before[table], after[table]),
    skipped: table === 'device_register' ? expected.skipped.length : expected.pinned[table].length,
    remoteRows: expected.slice[table].length,
  });
  return { meter: entry('meter'), register: entry('register'), device_register: entry('device_register') };
}
