/**
 * The check operation (DESIGN §4): a preflight of one site, by site id or by URLs, that changes
 * nothing anywhere. Each session reads in a read-only transaction that is rolled back; the site's
 * run lock is taken for an instant, to learn that it can be, and let go with that rollback.
 *
 * 1. Load the site's credentials (re-read once after a refused login: a rotation).
 * 2. Connect to both databases: reached, and TLS as configured; the site is not the remote itself.
 * 3. On the remote, in one REPEATABLE READ READ ONLY transaction: the session is read-only, the
 *    role cannot write the entity tables, each entity's table or query gives its columns, and the
 *    tenant's slice is not empty.
 * 4. On the site, in one READ ONLY transaction: the schema version, the tenant it is bound to, the
 *    entity tables a migration would create as it would find them (adopted, or refused with every
 *    difference), each entity's table, the role's privileges, and last the run lock.
 * 5. Compare each entity's remote columns with its site columns: every type converts.
 * 6. Report: ok unless a check failed. A database that cannot be reached fails its connection
 *    check, and every check that needs it fails as not checked.
 */
import type { Client } from 'pg';
import type { CredentialsSource, SyncCredentials } from '../credentials';
import type { DatabaseRole } from '../db/connect';
import { type Migration, SITE_MIGRATIONS } from '../db/site-migrations';
import { remoteSql } from '../db/sync-sql';
import type { ErrorReport } from '../engine';
import { defaultRegistry, type EntityMetadata } from '../entities';
import { type Check, check, describeError, notChecked } from './checks/check';
import { connectChecked } from './checks/connection-checks';
import {
  entityColumnsCheck,
  type RemoteColumns,
  readRemoteColumns,
  readSiteColumns,
  type SiteColumns,
} from './checks/entity-columns';
import { remotePrivilegesCheck, remoteReadOnlyCheck } from './checks/remote-privileges';
import { underSavepoint } from './checks/savepoint';
import { siteIdentityCheck } from './checks/site-identity';
import { siteLockCheck } from './checks/site-lock';
import { sitePrivilegesCheck } from './checks/site-privileges';
import { siteSchemaCheck } from './checks/site-schema';
import { siteTablesCheck } from './checks/site-tables';
import { siteTenantCheck } from './checks/site-tenant';
import { tenantSliceCheck } from './checks/tenant-slice';
import { type OperationOptions, sessionOptions } from './operation-options';
import { withCredentials } from './with-credentials';

export type { Check, CheckStatus } from './checks/check';

export interface CheckSiteRequest {
  siteId?: string;
}

export interface CheckReport {
  /** False when any check failed; warnings leave it true. */
  ok: boolean;
  siteId?: string;
  tenantId: number;
  action: 'check';
  checks: Check[];
  durationMs: number;
}

interface RemoteFindings {
  readOnly: Check;
  privileges: Check;
  columns: ReadonlyMap<string, RemoteColumns>;
  slice: Check;
}

interface SiteFindings {
  schema: Check;
  tenant: Check;
  tables: Check;
  columns: ReadonlyMap<string, SiteColumns>;
  behind: boolean;
  privileges: Check;
  lock: Check;
}

const unreachable = (role: DatabaseRole) => `the ${role} database could not be reached`;

/** A check step under a savepoint; one that throws fails its check and leaves the transaction usable. */
async function guarded(client: Client, name: string, step: () => Promise<Check>): Promise<Check> {
  try {
    return await underSavepoint(client, step);
  } catch (error) {
    return check(name, 'fail', describeError(error));
  }
}

async function remoteFindings(
  client: Client,
  entities: readonly EntityMetadata[],
  tenantId: number,
): Promise<RemoteFindings> {
  try {
    await client.query(remoteSql.beginSnapshot);
  } catch (error) {
    const why = `the remote read failed: ${describeError(error)}`;
    return {
      readOnly: notChecked('remote read-only', why),
      privileges: notChecked('remote privileges', why),
      columns: new Map(entities.map((e) => [e.name, { problem: `not checked: ${why}` }])),
      slice: notChecked('tenant slice', why),
    };
  }
  try {
    const readOnly = await guarded(client, 'remote read-only', () => remoteReadOnlyCheck(client));
    const privileges = await guarded(client, 'remote privileges', () =>
      remotePrivilegesCheck(client, entities),
    );
    const columns = new Map<string, RemoteColumns>();
    for (const meta of entities) {
      const found = await readRemoteColumns(client, meta, tenantId).catch(
        (error): RemoteColumns => ({ problem: `reading the remote fails: ${describeError(error)}` }),
      );
      columns.set(meta.name, found);
    }
    const readable = (meta: EntityMetadata) => 'types' in columns.get(meta.name)!;
    const slice = await guarded(client, 'tenant slice', () =>
      tenantSliceCheck(client, entities, readable, tenantId),
    );
    return { readOnly, privileges, columns, slice };
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}

async function siteFindings(
  client: Client,
  entities: readonly EntityMetadata[],
  migrations: readonly Migration[],
  tenantId: number,
): Promise<SiteFindings> {
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  try {
    await client.query('BEGIN READ ONLY');
  } catch (error) {
    const why = `the site read failed: ${describeError(error)}`;
    return {
      schema: notChecked('site schema', why),
      tenant: notChecked('site tenant', why),
      tables: notChecked('site tables', why),
      columns: new Map(entities.map((e) => [e.name, { problem: `not checked: ${why}` }])),
      behind: false,
      privileges: notChecked('site privileges', why),
      lock: notChecked('site lock', why),
    };
  }
  try {
    const schema = await siteSchemaCheck(client, latest);
    const tenant = await guarded(client, 'site tenant', () => siteTenantCheck(client, tenantId));
    const version = schema.version;
    const pending = migrations.filter((m) => version !== undefined && m.version > version);
    const tables =
      version === undefined
        ? notChecked('site tables', 'the schema version cannot be read')
        : await guarded(client, 'site tables', () =>
            siteTablesCheck(
              client,
              pending.flatMap((m) => m.tables ?? []),
              tenantId,
            ),
          );
    const columns = new Map<string, SiteColumns>();
    for (const meta of entities) columns.set(meta.name, await readSiteColumns(client, meta));
    const privileges = await guarded(client, 'site privileges', () =>
      sitePrivilegesCheck(client, entities, schema.behind),
    );
    // Last: the lock it takes is held until the rollback below.
    const lock = await guarded(client, 'site lock', () => siteLockCheck(client));
    return { schema: schema.check, tenant, tables, columns, behind: schema.behind, privileges, lock };
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}

function entityCheck(
  meta: EntityMetadata,
  remote: RemoteFindings | undefined,
  site: SiteFindings | undefined,
): Check {
  const name = `entity ${meta.name}`;
  if (!remote) return notChecked(name, unreachable('remote'));
  if (!site) return notChecked(name, unreachable('site'));
  const remoteColumns = remote.columns.get(meta.name)!;
  const siteColumns = site.columns.get(meta.name)!;
  return entityColumnsCheck(meta, remoteColumns, siteColumns, site.behind);
}

async function checkOnce(
  credentials: SyncCredentials,
  request: CheckSiteRequest,
  options: OperationOptions,
  started: number,
): Promise<{ report: CheckReport; error?: ErrorReport }> {
  const entities = (options.registry ?? defaultRegistry).entities;
  const migrations = options.migrations ?? SITE_MIGRATIONS;
  // 2.
  const connectOptions = sessionOptions(options);
  const [remote, site] = await Promise.all([
    connectChecked(credentials.remote, 'remote', connectOptions),
    connectChecked(credentials.site, 'site', connectOptions),
  ]);
  const remoteClient = 'client' in remote ? remote.client : undefined;
  const siteClient = 'client' in site ? site.client : undefined;
  try {
    // Outside the transactions below: a role that may not read the system identifier is refused harmlessly.
    const identity =
      siteClient && remoteClient
        ? await siteIdentityCheck(siteClient, remoteClient)
        : notChecked('site identity', unreachable(siteClient ? 'remote' : 'site'));
    // 3. and 4., each on its own session at once.
    const [remoteFound, siteFound] = await Promise.all([
      remoteClient ? remoteFindings(remoteClient, entities, credentials.tenantId) : undefined,
      siteClient ? siteFindings(siteClient, entities, migrations, credentials.tenantId) : undefined,
    ]);
    // 5.
    const entityChecks = entities.map((meta) => entityCheck(meta, remoteFound, siteFound));
    // 6.
    const checks = [
      remote.check,
      site.check,
      identity,
      remoteFound?.readOnly ?? notChecked('remote read-only', unreachable('remote')),
      remoteFound?.privileges ?? notChecked('remote privileges', unreachable('remote')),
      siteFound?.schema ?? notChecked('site schema', unreachable('site')),
      siteFound?.tenant ?? notChecked('site tenant', unreachable('site')),
      siteFound?.tables ?? notChecked('site tables', unreachable('site')),
      ...entityChecks,
      siteFound?.privileges ?? notChecked('site privileges', unreachable('site')),
      remoteFound?.slice ?? notChecked('tenant slice', unreachable('remote')),
      siteFound?.lock ?? notChecked('site lock', unreachable('site')),
    ];
    const report: CheckReport = {
      ok: checks.every((c) => c.status !== 'fail'),
      ...(request.siteId !== undefined ? { siteId: request.siteId } : {}),
      tenantId: credentials.tenantId,
      action: 'check',
      checks,
      durationMs: Date.now() - started,
    };
    // A refused login is what a re-read of rotated credentials can mend (withCredentials).
    const refused = [remote, site].find((c) => 'error' in c && c.error.code === 'AUTHENTICATION_FAILED');
    return refused && 'error' in refused
      ? { report, error: { code: refused.error.code, message: refused.error.message } }
      : { report };
  } finally {
    await Promise.all([remoteClient?.end().catch(() => {}), siteClient?.end().catch(() => {})]);
  }
}

export async function checkSite(
  source: CredentialsSource,
  request: CheckSiteRequest,
  options: OperationOptions = {},
): Promise<CheckReport> {
  const started = Date.now();
  // 1.
  const { report } = await withCredentials(
    (refresh) => source.load(request.siteId, { refresh }),
    (credentials) => checkOnce(credentials, request, options, started),
    options.onCredentialsRefreshed,
  );
  return report;
}
