/** The set of entities a run may sync, validated once at start-up and kept in parent-first order. */
import { EntityMetadataError } from '../errors';
import { deviceRegister } from './device-register';
import type { EntityMetadata } from './entity-metadata';
import { meter } from './meter';
import { register } from './register';
import { codeParameters, sqlCode } from './sql-code';

const ENTITY_NAME = /^[a-z][a-z0-9_]{0,62}$/;
// PostgreSQL truncates identifiers to 63 bytes and cannot hold NUL; anything else works once quoted.
const MAX_IDENTIFIER_BYTES = 63;

function checkIdentifier(entity: string, what: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new EntityMetadataError(entity, `${what} must be a non-empty string`);
  }
  if (value.includes('\0'))
    throw new EntityMetadataError(entity, `${what} ${JSON.stringify(value)} contains a NUL character`);
  if (Buffer.byteLength(value, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new EntityMetadataError(
      entity,
      `${what} ${JSON.stringify(value)} is longer than ${MAX_IDENTIFIER_BYTES} bytes`,
    );
  }
}

function checkRemoteQuery(entity: string, query: string): void {
  if (typeof query !== 'string' || query.trim() === '')
    throw new EntityMetadataError(entity, 'remoteQuery must be a non-empty string');
  // Read off the query's code: a '$1' or ';' inside a literal or a comment is neither.
  let code: string;
  try {
    code = sqlCode(query);
  } catch (error) {
    throw new EntityMetadataError(entity, `remoteQuery has an ${(error as Error).message}`);
  }
  const placeholders = codeParameters(code);
  if (!placeholders.has('$1') || placeholders.size !== 1) {
    throw new EntityMetadataError(entity, 'remoteQuery must use $1 (the tenant id) and no other parameter');
  }
  if (code.includes(';'))
    throw new EntityMetadataError(entity, 'remoteQuery must be a single SELECT without ";"');
}

function checkEntity(e: EntityMetadata): void {
  const name = typeof e?.name === 'string' ? e.name : String(e?.name);
  if (!ENTITY_NAME.test(name)) {
    throw new EntityMetadataError(
      name,
      'name must be lower snake case (a-z, 0-9, _), starting with a letter',
    );
  }
  checkIdentifier(name, 'table', e.table);
  if (!Array.isArray(e.columns) || e.columns.length === 0)
    throw new EntityMetadataError(name, 'columns must list at least one column');
  for (const column of e.columns) checkIdentifier(name, 'column', column);
  const columns = new Set(e.columns);
  if (columns.size !== e.columns.length) throw new EntityMetadataError(name, 'columns must not repeat');
  if (!Array.isArray(e.keyColumns) || e.keyColumns.length === 0)
    throw new EntityMetadataError(name, 'keyColumns must list at least one column');
  if (new Set(e.keyColumns).size !== e.keyColumns.length)
    throw new EntityMetadataError(name, 'keyColumns must not repeat');
  for (const key of e.keyColumns) {
    if (!columns.has(key))
      throw new EntityMetadataError(name, `key column ${JSON.stringify(key)} is not one of its columns`);
  }
  if (e.tenantColumn !== undefined && !columns.has(e.tenantColumn)) {
    throw new EntityMetadataError(
      name,
      `tenant column ${JSON.stringify(e.tenantColumn)} is not one of its columns`,
    );
  }
  if (e.tenantColumn !== undefined && e.remoteQuery !== undefined) {
    throw new EntityMetadataError(name, 'give either tenantColumn or remoteQuery, not both');
  }
  // Tenant isolation: an entity without either would copy every tenant's rows to each site.
  if (e.tenantColumn === undefined && e.remoteQuery === undefined) {
    throw new EntityMetadataError(
      name,
      "give tenantColumn or remoteQuery: a site must receive only its tenant's rows",
    );
  }
  if (e.remoteQuery !== undefined) checkRemoteQuery(name, e.remoteQuery);
  for (const parent of e.parents ?? []) {
    for (const column of Object.keys(parent.columns ?? {})) {
      if (!columns.has(column)) {
        throw new EntityMetadataError(
          name,
          `parent ${JSON.stringify(parent.entity)}: column ${JSON.stringify(column)} is not one of its columns`,
        );
      }
    }
  }
}

function checkParentKeys(e: EntityMetadata, byName: ReadonlyMap<string, EntityMetadata>): void {
  for (const parent of e.parents ?? []) {
    const target = byName.get(parent.entity);
    if (!target)
      throw new EntityMetadataError(
        e.name,
        `parent ${JSON.stringify(parent.entity)} is not a registered entity`,
      );
    const referenced = Object.values(parent.columns);
    const sameKey =
      referenced.length === target.keyColumns.length &&
      target.keyColumns.every((key) => referenced.includes(key));
    if (!sameKey) {
      throw new EntityMetadataError(
        e.name,
        `parent ${JSON.stringify(parent.entity)}: columns must reference its whole key (${target.keyColumns.join(', ')})`,
      );
    }
  }
}

/** Parent-first order; among entities that are ready together, the order they were declared in. */
function parentFirstOrder(entities: readonly EntityMetadata[]): EntityMetadata[] {
  const ordered: EntityMetadata[] = [];
  const placed = new Set<string>();
  const pending = [...entities];
  while (pending.length > 0) {
    const index = pending.findIndex((e) => (e.parents ?? []).every((p) => placed.has(p.entity)));
    if (index < 0) {
      throw new EntityMetadataError(
        pending[0]!.name,
        `parent cycle among ${pending.map((e) => e.name).join(', ')}`,
      );
    }
    const [next] = pending.splice(index, 1);
    ordered.push(next!);
    placed.add(next!.name);
  }
  return ordered;
}

export class EntityRegistry {
  /** Parent-first: the order upserts run in; deletes run in the reverse. */
  readonly entities: readonly EntityMetadata[];
  private readonly byName: ReadonlyMap<string, EntityMetadata>;

  constructor(entities: readonly EntityMetadata[]) {
    for (const e of entities) checkEntity(e);
    const byName = new Map<string, EntityMetadata>();
    for (const e of entities) {
      if (byName.has(e.name)) throw new EntityMetadataError(e.name, 'registered twice');
      byName.set(e.name, e);
    }
    for (const e of entities) checkParentKeys(e, byName);
    this.entities = Object.freeze(parentFirstOrder(entities));
    this.byName = byName;
  }

  get names(): string[] {
    return this.entities.map((e) => e.name);
  }

  get(name: string): EntityMetadata {
    const entity = this.byName.get(name);
    if (!entity) throw new EntityMetadataError(name, `unknown entity (known: ${this.names.join(', ')})`);
    return entity;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The named entities in parent-first order; all of them when no names are given. */
  select(names?: readonly string[]): EntityMetadata[] {
    if (!names || names.length === 0) return [...this.entities];
    for (const name of names) this.get(name);
    return this.entities.filter((e) => names.includes(e.name));
  }
}

/** The entities meter-sync ships. A new entity is one file and one line here. */
export const defaultRegistry = new EntityRegistry([meter, register, deviceRegister]);
