/**
 * Adoption (DESIGN §2): the entity tables a migration creates, looked for on the site first. A table
 * the site already has is adopted when it fits: every column of the schema there, of the same type
 * or a compatible one (column-fit.ts), no stricter about NULLs, the key as its primary key or a
 * unique index over exactly those columns, and nothing the sync cannot fill (an extra NOT NULL
 * column without a default). Its rows and its own columns stay; what it lacks and is safe to add is
 * added. The first sync then reconciles its rows like any other difference.
 *
 * 1. `inspectTables` reads each table's catalog, its rows' count, tenants and references, and says
 *    what would be added, what is kept, and every way it does not fit. It only reads: `check` runs
 *    it too, and a migration runs it before it changes anything.
 * 2. `applyAdoption` creates the tables the site lacks, and adds to an adopted table the foreign keys
 *    (NOT VALID, then VALIDATE: the rows are checked without locking out the table's readers and
 *    writers) and indexes it lacks; in the migration's transaction.
 */
import { type Client, escapeIdentifier } from 'pg';
import { type SchemaDifference, SiteMixedTenantsError } from '../errors';
import { type ColumnFit, columnFit } from './column-fit';
import { siteSchemaSql } from './site-schema-sql';
import { readTableShape, type SiteColumn, type TableShape } from './site-table-shape';
import type { SiteColumnSpec, SiteForeignKeySpec, SiteIndexSpec, SiteTableSpec } from './site-tables';
import type { ColumnType } from './type-conversion';

/** Tenants read per table: enough to tell one from several, and to name a few. */
const TENANT_SAMPLE = 5;

export interface TableInspection {
  readonly spec: SiteTableSpec;
  /** The site has the table: it is adopted, unless something conflicts. */
  readonly present: boolean;
  readonly rows: number;
  readonly conflicts: readonly SchemaDifference[];
  /** What the site has that the schema would not, kept as it is. */
  readonly kept: readonly string[];
  /** Of those, what refuses or changes some values the schema's table would take (a varchar's length). */
  readonly caveats: readonly string[];
  readonly foreignKeysToAdd: readonly SiteForeignKeySpec[];
  readonly indexesToAdd: readonly SiteIndexSpec[];
  /** The tenants of its rows (the first few, in order), for a table whose rows each belong to one. */
  readonly tenants?: { readonly values: readonly string[]; readonly more: boolean };
}

export interface AdoptionInspection {
  readonly tables: readonly TableInspection[];
  /** Every difference, table by table: none for a migration to go on. */
  readonly conflicts: readonly SchemaDifference[];
  /** The tables the site has, adopted with their rows. */
  readonly adopted: readonly string[];
  readonly kept: readonly string[];
  readonly caveats: readonly string[];
  /** The tables whose rows belong to a tenant, when together they hold more than one. */
  readonly mixedTenants?: readonly { table: string; tenants: readonly string[]; more: boolean }[];
}

const KIND_NAMES: Readonly<Record<string, string>> = {
  v: 'a view',
  m: 'a materialized view',
  f: 'a foreign table',
  S: 'a sequence',
  i: 'an index',
  I: 'an index',
  c: 'a composite type',
};

const typeText = (c: SiteColumnSpec) => `${c.type}${c.notNull ? ' NOT NULL' : ''}`;
const columnsText = (columns: readonly (string | null)[]) =>
  `(${columns.map((c) => c ?? '<expression>').join(', ')})`;
const sameSet = (a: readonly (string | null)[], b: readonly string[]) =>
  a.length === b.length && b.every((c) => a.includes(c));
const sameList = (a: readonly (string | null)[], b: readonly string[]) =>
  a.length === b.length && b.every((c, i) => a[i] === c);

/** The schema's column types as the catalog describes the site's (`typmod`: only whether there is a modifier). */
async function expectedTypes(
  client: Client,
  tables: readonly SiteTableSpec[],
): Promise<Map<string, ColumnType>> {
  const types = [...new Set(tables.flatMap((t) => t.columns.map((c) => c.type)))];
  const { rows } = await client.query<{ base: string; category: string }>(siteSchemaSql.typeInfo, [types]);
  return new Map(
    types.map((type, i) => [
      type,
      { type, base: rows[i]!.base, typmod: type.includes('(') ? 0 : -1, category: rows[i]!.category },
    ]),
  );
}

class TableReview {
  readonly conflicts: SchemaDifference[] = [];
  readonly kept: string[] = [];
  readonly caveats: string[] = [];
  /** Columns present whose type fits: the ones a query of the rows may use. */
  readonly usable = new Set<string>();

  constructor(readonly spec: SiteTableSpec) {}

  conflict(column: string | undefined, site: string | null, expected: string | null, problem: string): void {
    this.conflicts.push({
      table: this.spec.name,
      ...(column !== undefined ? { column } : {}),
      site,
      expected,
      problem,
    });
  }

  column(spec: SiteColumnSpec, site: SiteColumn | undefined, expected: ColumnType): void {
    const where = `${this.spec.name}.${spec.name}`;
    if (!site) {
      this.conflict(spec.name, null, typeText(spec), `missing (the site schema has ${typeText(spec)})`);
      return;
    }
    const fit: ColumnFit = site.domain ? { fit: 'conflict' } : columnFit(expected, site);
    if (fit.fit === 'conflict') {
      const siteType = site.domain ?? site.type;
      const domain = site.domain ? ` (a domain over ${site.type}: the remote knows only its own types)` : '';
      this.conflict(
        spec.name,
        siteType,
        spec.type,
        `the site has ${siteType}${domain}, the site schema ${spec.type}`,
      );
    } else if (fit.fit === 'compatible') {
      const note = `${where}: ${site.type} for ${spec.type} (${fit.note})`;
      this.kept.push(note);
      if (fit.refuses) this.caveats.push(note);
    }
    if (site.generated !== '')
      this.conflict(
        spec.name,
        'GENERATED ALWAYS AS (...)',
        spec.type,
        'a generated column: the sync writes its values',
      );
    else if (site.identity === 'a')
      this.conflict(
        spec.name,
        'GENERATED ALWAYS AS IDENTITY',
        spec.type,
        'an identity column GENERATED ALWAYS: the sync writes its values',
      );
    if (site.notNull && !spec.notNull)
      this.conflict(
        spec.name,
        `${site.type} NOT NULL`,
        spec.type,
        'NOT NULL on the site, nullable in the site schema: a NULL from the remote would be refused',
      );
    else if (!site.notNull && spec.notNull)
      this.kept.push(`${where}: nullable (the site schema has NOT NULL)`);
    if (fit.fit !== 'conflict' && site.generated === '') this.usable.add(spec.name);
  }

  /** A column the site has and the schema does not: left alone by every sync, unless the sync's inserts cannot fill it. */
  ownColumn(site: SiteColumn): void {
    const fills = site.hasDefault || site.identity !== '' || site.generated !== '';
    if (site.notNull && !fills)
      this.conflict(
        site.name,
        `${site.type} NOT NULL`,
        null,
        `a column of the site's own, NOT NULL without a default: the sync's inserts would be refused (give it a default, or drop NOT NULL)`,
      );
    else
      this.kept.push(
        `${this.spec.name}.${site.name}: a column of the site's own (${site.type}), left alone by every sync`,
      );
  }

  key(shape: TableShape & { kind: 'table' }): void {
    const { key } = this.spec;
    const usable = shape.indexes.find((i) => i.usableKey && sameSet(i.columns, key));
    if (usable) {
      if (!usable.primary)
        this.kept.push(
          `${this.spec.name}: its key ${columnsText(key)} as the unique index ${usable.name}, not a primary key`,
        );
      return;
    }
    const primary = shape.indexes.find((i) => i.primary);
    const site = primary ? `PRIMARY KEY ${columnsText(primary.columns)}` : null;
    this.conflict(
      undefined,
      site,
      `PRIMARY KEY ${columnsText(key)}`,
      primary
        ? `its primary key is ${columnsText(primary.columns)}, the site schema's key ${columnsText(key)}, and no unique index is over ${columnsText(key)} alone`
        : `no primary key or unique index over ${columnsText(key)}, the site schema's key`,
    );
  }
}

/** The first few distinct tenants of a table's rows. */
async function tenantsOf(
  client: Client,
  spec: SiteTableSpec,
  column: string,
): Promise<{ values: string[]; more: boolean }> {
  const { rows } = await client.query<{ tenant: string }>(siteSchemaSql.tenants(spec, column), [
    TENANT_SAMPLE + 1,
  ]);
  return { values: rows.slice(0, TENANT_SAMPLE).map((r) => r.tenant), more: rows.length > TENANT_SAMPLE };
}

/**
 * A foreign key of the schema that an adopted table lacks: added when its rows satisfy it. `parent`:
 * the parent's shape (absent: created empty by the migration, so every reference breaks it).
 */
async function reviewForeignKey(
  client: Client,
  review: TableReview,
  fk: SiteForeignKeySpec,
  shape: TableShape & { kind: 'table' },
  parent: { shape: TableShape; usable: ReadonlySet<string> } | undefined,
): Promise<boolean> {
  const parentOid = parent?.shape.kind === 'table' ? parent.shape.oid : undefined;
  const existing = shape.foreignKeys.find(
    (k) =>
      k.parent === parentOid &&
      sameList(k.columns, fk.columns) &&
      sameList(k.parentColumns, fk.parentColumns),
  );
  if (existing) return false;
  const spec = review.spec;
  const { rows: named } = await client.query<{ taken: boolean }>(siteSchemaSql.constraintNamed, [
    escapeIdentifier(spec.name),
    fk.name,
  ]);
  if (named[0]?.taken) {
    review.conflict(
      undefined,
      `constraint ${fk.name}`,
      `FOREIGN KEY ${columnsText(fk.columns)} REFERENCES ${fk.parent} ${columnsText(fk.parentColumns)}`,
      `a constraint of its own is named ${fk.name}, the name of the foreign key the site schema adds`,
    );
    return false;
  }
  // Rows can only be checked over columns that are there, with types the comparison takes.
  const parentPresent = parent?.shape.kind === 'table';
  if (!fk.columns.every((c) => review.usable.has(c))) return false;
  if (parentPresent && !fk.parentColumns.every((c) => parent!.usable.has(c))) return false;
  const { rows } = await client.query<Record<string, string>>(
    siteSchemaSql.brokenReferences(spec, fk, parentPresent),
  );
  const first = rows[0];
  if (first === undefined) return true;
  const example = spec.key.map((k) => `${k}=${first[k]}`).join(', ');
  const broken = Number(first.broken);
  review.conflict(
    fk.columns.join(', '),
    `${broken} row${broken === 1 ? '' : 's'} referencing no ${fk.parent}`,
    `FOREIGN KEY ${columnsText(fk.columns)} REFERENCES ${fk.parent} ${columnsText(fk.parentColumns)}`,
    `${broken} row${broken === 1 ? '' : 's'} reference${broken === 1 ? 's' : ''} no ${fk.parent} ${columnsText(fk.parentColumns)}${parentPresent ? '' : ` (the site has no ${fk.parent} table)`}, e.g. ${example}: the foreign key ${fk.name} of the site schema would refuse them (delete or mend them)`,
  );
  return false;
}

/** An index the engine needs, unless one over the same leading columns is there. */
async function reviewIndex(
  client: Client,
  review: TableReview,
  index: SiteIndexSpec,
  shape: TableShape & { kind: 'table' },
): Promise<boolean> {
  const serves = shape.indexes.some((i) => i.whole && index.columns.every((c, n) => i.columns[n] === c));
  if (serves) return false;
  const { rows } = await client.query<{ taken: boolean }>(siteSchemaSql.relationNamed, [
    escapeIdentifier(review.spec.name),
    index.name,
  ]);
  if (rows[0]?.taken) {
    review.conflict(
      undefined,
      `relation ${index.name}`,
      `INDEX ${index.name} ${columnsText(index.columns)}`,
      `another relation is named ${index.name}, the name of the index the site schema adds (${index.why})`,
    );
    return false;
  }
  return true;
}

/** Looks at each table of `tables` (parents first) on the site, and says how the migration would take it. Reads only. */
export async function inspectTables(
  client: Client,
  tables: readonly SiteTableSpec[],
): Promise<AdoptionInspection> {
  const expected = await expectedTypes(client, tables);
  const inspections: TableInspection[] = [];
  const seen = new Map<string, { shape: TableShape; usable: ReadonlySet<string> }>();
  for (const spec of tables) {
    const shape = await readTableShape(client, escapeIdentifier(spec.name));
    const review = new TableReview(spec);
    let rows = 0;
    let tenants: TableInspection['tenants'];
    const foreignKeysToAdd: SiteForeignKeySpec[] = [];
    const indexesToAdd: SiteIndexSpec[] = [];
    if (shape.kind === 'other') {
      const kind = KIND_NAMES[shape.relkind] ?? `a relation of kind ${shape.relkind}`;
      review.conflict(undefined, kind, 'a table', `${kind} of this name is there, not a table`);
    } else if (shape.kind === 'table') {
      const columns = new Map(shape.columns.map((c) => [c.name, c]));
      for (const column of spec.columns)
        review.column(column, columns.get(column.name), expected.get(column.type)!);
      const named = new Set(spec.columns.map((c) => c.name));
      for (const column of shape.columns) if (!named.has(column.name)) review.ownColumn(column);
      review.key(shape);
      for (const fk of spec.foreignKeys) {
        if (await reviewForeignKey(client, review, fk, shape, seen.get(fk.parent))) foreignKeysToAdd.push(fk);
      }
      for (const index of spec.indexes) {
        if (await reviewIndex(client, review, index, shape)) indexesToAdd.push(index);
      }
      const { rows: counted } = await client.query<{ rows: string }>(siteSchemaSql.countRows(spec));
      rows = Number(counted[0]?.rows ?? 0);
      if (rows > 0)
        review.kept.push(
          `${spec.name}: its ${rows} row${rows === 1 ? '' : 's'}, reconciled by the first sync`,
        );
      if (spec.tenantColumn !== undefined && rows > 0 && review.usable.has(spec.tenantColumn))
        tenants = await tenantsOf(client, spec, spec.tenantColumn);
    }
    seen.set(spec.name, { shape, usable: review.usable });
    inspections.push({
      spec,
      present: shape.kind !== 'absent',
      rows,
      conflicts: review.conflicts,
      kept: review.kept,
      caveats: review.caveats,
      foreignKeysToAdd,
      indexesToAdd,
      ...(tenants ? { tenants } : {}),
    });
  }
  const withTenants = inspections.filter((t) => t.tenants !== undefined);
  const distinct = new Set(withTenants.flatMap((t) => t.tenants!.values));
  const mixed = distinct.size > 1 || withTenants.some((t) => t.tenants!.more);
  return {
    tables: inspections,
    conflicts: inspections.flatMap((t) => t.conflicts),
    adopted: inspections.filter((t) => t.present).map((t) => t.spec.name),
    kept: inspections.flatMap((t) => t.kept),
    caveats: inspections.flatMap((t) => t.caveats),
    ...(mixed
      ? {
          mixedTenants: withTenants.map((t) => ({
            table: t.spec.name,
            tenants: t.tenants!.values,
            more: t.tenants!.more,
          })),
        }
      : {}),
  };
}

/** Who says which tenant's rows a site of several keeps: the tenant it is bound to, or a run's tenant with allowTenantChange. */
export interface TenantChoice {
  readonly boundTenant?: number;
  readonly tenantId?: number;
  readonly allowTenantChange?: boolean;
}

/**
 * Refuses to adopt tables of several tenants unless the site's binding or allowTenantChange says
 * which one it keeps; returns the tenant to bind the site to (none when its binding says it, or
 * its rows are of one tenant: the first sync that commits binds it).
 */
export function tenantToKeep(inspection: AdoptionInspection, choice: TenantChoice): number | undefined {
  if (!inspection.mixedTenants || choice.boundTenant !== undefined) return undefined;
  if (choice.allowTenantChange && choice.tenantId !== undefined) return choice.tenantId;
  throw new SiteMixedTenantsError(inspection.mixedTenants, choice.tenantId);
}

/** Creates what the inspection found missing; returns what it added to the adopted tables (new tables are the caller's to list). */
export async function applyAdoption(client: Client, inspection: AdoptionInspection): Promise<string[]> {
  const added: string[] = [];
  for (const table of inspection.tables) {
    const { spec } = table;
    if (!table.present) {
      await client.query(siteSchemaSql.createTable(spec));
      for (const index of spec.indexes) await client.query(siteSchemaSql.createIndex(spec, index));
      continue;
    }
    for (const fk of table.foreignKeysToAdd) {
      await client.query(siteSchemaSql.addForeignKey(spec, fk));
      await client.query(siteSchemaSql.validateConstraint(spec, fk.name));
      added.push(
        `foreign key ${fk.name} on ${spec.name} ${columnsText(fk.columns)} to ${fk.parent} ${columnsText(fk.parentColumns)}`,
      );
    }
    for (const index of table.indexesToAdd) {
      await client.query(siteSchemaSql.createIndex(spec, index));
      added.push(`index ${index.name} on ${spec.name} ${columnsText(index.columns)}`);
    }
  }
  return added;
}
