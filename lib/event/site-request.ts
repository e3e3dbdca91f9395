/**
 * The site operation a Lambda event asks for (DESIGN §4): `{ siteId, action?, entities?, dryRun?,
 * allowMassDelete?, allowTenantChange?, maxChanges? }`, `action` being `sync` (the default),
 * `migrate` (which takes `allowTenantChange` alone), `plan` or `check`, as an EventBridge
 * Scheduler input or an `aws lambda invoke` payload, or in the `detail` of an EventBridge rule
 * event. Validated strictly: an unknown field is a typo that would otherwise be ignored silently
 * (a misspelt `dryRun` must not turn a dry run into a real one), and a field the action does not
 * take (`entities` of a migration) is refused rather than dropped.
 */
import { defaultRegistry, type EntityRegistry } from '../entities';
import { BadEventError } from './bad-event-error';

export interface SyncRequest {
  action: 'sync';
  siteId: string;
  /** Entity names in the order given; all registered entities when absent. */
  entities?: string[];
  dryRun: boolean;
  allowMassDelete: boolean;
  /** Re-binds a site bound to another tenant, on purpose (DESIGN §3.11). */
  allowTenantChange: boolean;
}

export interface MigrateRequest {
  action: 'migrate';
  siteId: string;
  /** Adopt tables of several tenants' rows, keeping the site's tenant's (and binding the site to it). */
  allowTenantChange: boolean;
}

/** A plan: a dry run that lists its row-level changes, `maxChanges` at most per entity. */
export interface PlanRequest {
  action: 'plan';
  siteId: string;
  entities?: string[];
  allowMassDelete: boolean;
  allowTenantChange: boolean;
  maxChanges: number;
}

export interface CheckRequest {
  action: 'check';
  siteId: string;
}

export type SiteRequest = SyncRequest | MigrateRequest | PlanRequest | CheckRequest;

export const ACTIONS = ['sync', 'migrate', 'plan', 'check'] as const;

/** Changes a plan lists per entity by default, and at most: a bound on its memory and its answer. */
export const DEFAULT_MAX_CHANGES = 100;
export const MAX_MAX_CHANGES = 100_000;
export type Action = (typeof ACTIONS)[number];

/** The fields each action takes besides `siteId` and `action`. */
const ACTION_FIELDS: Readonly<Record<Action, readonly string[]>> = {
  sync: ['entities', 'dryRun', 'allowMassDelete', 'allowTenantChange'],
  migrate: ['allowTenantChange'],
  plan: ['entities', 'allowMassDelete', 'allowTenantChange', 'maxChanges'],
  check: [],
};

/** A site id is used in a secret name, a metric dimension and log keys: keep it a plain identifier. */
export const SITE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const OPTIONAL_FIELDS = ['entities', 'dryRun', 'allowMassDelete', 'allowTenantChange', 'maxChanges'] as const;
const REQUEST_FIELDS = new Set(['siteId', 'action', ...OPTIONAL_FIELDS]);
/** The fields EventBridge puts around a rule event's `detail`. */
const ENVELOPE_FIELDS = new Set([
  'version',
  'id',
  'detail-type',
  'source',
  'account',
  'time',
  'region',
  'resources',
  'detail',
]);

/** A value quoted for a message: one line, and short, since it comes from the caller. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isEnvelope(event: Record<string, unknown>): boolean {
  return 'detail' in event && 'detail-type' in event;
}

function checkFields(object: Record<string, unknown>, allowed: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.has(key)) {
      throw new BadEventError(
        `unknown field ${quote(key)}${where} (allowed: ${[...REQUEST_FIELDS].join(', ')})`,
      );
    }
  }
}

function optionalBoolean(request: Record<string, unknown>, field: string): boolean {
  const value = request[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new BadEventError(`${field} must be true or false`);
  return value;
}

function parseEntities(value: unknown, registry: EntityRegistry): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadEventError(
      `entities must be a non-empty list of entity names (known: ${registry.names.join(', ')})`,
    );
  }
  const seen = new Set<string>();
  for (const name of value) {
    if (typeof name !== 'string') throw new BadEventError('entities must be a list of entity names');
    if (!registry.has(name)) {
      throw new BadEventError(`unknown entity ${quote(name)} (known: ${registry.names.join(', ')})`);
    }
    if (seen.has(name)) throw new BadEventError(`entity ${quote(name)} is listed twice`);
    seen.add(name);
  }
  return [...seen];
}

function parseMaxChanges(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_CHANGES;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_MAX_CHANGES)
    throw new BadEventError(
      `maxChanges must be a whole number from 1 to ${MAX_MAX_CHANGES}${typeof value === 'number' || typeof value === 'string' ? `, not ${quote(String(value))}` : ''}`,
    );
  return value;
}

function parseAction(value: unknown): Action {
  if (value === undefined) return 'sync';
  if (typeof value !== 'string' || !(ACTIONS as readonly string[]).includes(value))
    throw new BadEventError(
      `action must be one of ${ACTIONS.map((a) => JSON.stringify(a)).join(', ')}${typeof value === 'string' ? `, not ${quote(value)}` : ''}`,
    );
  return value as Action;
}

/** The site operation of a Lambda event, or BAD_EVENT naming the first thing wrong with it. */
export function parseSiteRequest(event: unknown, registry: EntityRegistry = defaultRegistry): SiteRequest {
  if (!isPlainObject(event)) throw new BadEventError('the event must be a JSON object');
  let request = event;
  let where = '';
  if (isEnvelope(event)) {
    checkFields(event, ENVELOPE_FIELDS, ' in the EventBridge event');
    if (!isPlainObject(event.detail))
      throw new BadEventError('the EventBridge event detail must be an object');
    request = event.detail;
    where = ' in detail';
  }
  checkFields(request, REQUEST_FIELDS, where);
  const { siteId } = request;
  if (siteId === undefined) throw new BadEventError('siteId is required');
  if (typeof siteId !== 'string' || !SITE_ID_PATTERN.test(siteId)) {
    throw new BadEventError(
      'siteId must be 1 to 63 letters, digits, "_" or "-", starting with a letter or digit',
    );
  }
  const action = parseAction(request.action);
  const allowed = ACTION_FIELDS[action];
  for (const field of OPTIONAL_FIELDS) {
    if (request[field] !== undefined && !allowed.includes(field))
      throw new BadEventError(`${field} does not apply to action "${action}"`);
  }
  if (action === 'check') return { action, siteId };
  if (action === 'migrate')
    return { action, siteId, allowTenantChange: optionalBoolean(request, 'allowTenantChange') };
  const entities = parseEntities(request.entities, registry);
  if (action === 'plan')
    return {
      action,
      siteId,
      ...(entities ? { entities } : {}),
      allowMassDelete: optionalBoolean(request, 'allowMassDelete'),
      allowTenantChange: optionalBoolean(request, 'allowTenantChange'),
      maxChanges: parseMaxChanges(request.maxChanges),
    };
  return {
    action,
    siteId,
    ...(entities ? { entities } : {}),
    dryRun: optionalBoolean(request, 'dryRun'),
    allowMassDelete: optionalBoolean(request, 'allowMassDelete'),
    allowTenantChange: optionalBoolean(request, 'allowTenantChange'),
  };
}
