/**
 * The sync Lambda end to end: the real handler (middy, Powertools) against the harness PostgreSQL,
 * with Secrets Manager replaced by aws-sdk-client-mock. The EMF documents and log lines are read
 * back from the captured stdout.
 */
import './lambda-environment';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { Client, escapeIdentifier } from 'pg';
import { createSyncHandler, handler, type SyncHandlerOptions } from '../../functions/sync/handler';
import { LocalCredentials, SecretsManagerCredentials } from '../../lib/credentials';
import { SITE_LOCK_KEY } from '../../lib/db/site-database';
import { LATEST_SITE_SCHEMA_VERSION, SITE_MIGRATIONS, siteSchemaVersion } from '../../lib/db/site-migrations';
import type { SyncResult } from '../../lib/engine';
import type { MigrateResult } from '../../lib/operations';
import { holdLock } from '../harness/hold-lock';
import { snapshotOf } from '../harness/site-catalog';
import { expectedSlice, insertTextRows, siteContents } from '../harness/site-contents';
import { ADDED_TO_AN_EMPTY_SITE, ALL_SITE_TABLES } from '../harness/site-schema-tables';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import {
  createTestDatabase,
  serverChecksPasswords,
  serverUrl,
  type TestDatabase,
} from '../harness/test-database';
import {
  captureOutput,
  logLines,
  type MetricDocument,
  metricDocuments,
} from '../observability/captured-output';
import { lambdaContext } from './lambda-context';
import { createLoginRole, type LoginRole, newPassword } from './login-role';

const REMOTE_SECRET_ID = 'meter-sync/remote';
const SITE_PREFIX = 'meter-sync/site/';
const SITE = 'site-a';
const ENTITIES = ['meter', 'register', 'device_register'];

const secretsManager = mockClient(SecretsManagerClient);
/** Every line the handler wrote in this file, and every password it was given: the last test scans them. */
const allLines: string[] = [];
const allResults: unknown[] = [];
const passwords = new Set<string>();

let fx: SyncFixture;
let remoteRole: LoginRole;
let siteRole: LoginRole;

function rdsSecret(database: string, role: { name: string; password: string }, extra: object = {}): string {
  const server = new URL(serverUrl());
  passwords.add(role.password);
  return JSON.stringify({
    engine: 'postgres',
    host: server.hostname,
    port: Number(server.port || 5432),
    username: role.name,
    password: role.password,
    dbname: database,
    ...extra,
  });
}

function givenSecrets(site: string = rdsSecret(fx.site.name, siteRole, { tenantId: 1 })): void {
  secretsManager.on(GetSecretValueCommand, { SecretId: REMOTE_SECRET_ID }).resolves({
    SecretString: rdsSecret(fx.remote.name, remoteRole),
  });
  secretsManager
    .on(GetSecretValueCommand, { SecretId: `${SITE_PREFIX}${SITE}` })
    .resolves({ SecretString: site });
}

function secretReads(secretId?: string): number {
  return secretsManager
    .commandCalls(GetSecretValueCommand)
    .filter((call) => secretId === undefined || call.args[0].input.SecretId === secretId).length;
}

/** Invokes a handler with stdout captured; returns its result or the error it threw, and what it wrote. */
async function invoke(
  fn: (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<unknown>,
  event: unknown,
  remainingMs?: number,
): Promise<{ result?: SyncResult; error?: { code?: string; message: string }; lines: string[] }> {
  const output = captureOutput();
  try {
    const result = (await fn(event, lambdaContext(remainingMs))) as SyncResult;
    allResults.push(result);
    return { result, lines: output.lines };
  } catch (error) {
    allResults.push(String(error), (error as Error).message);
    return { error: error as { code?: string; message: string }, lines: output.lines };
  } finally {
    output.restore();
    allLines.push(...output.lines);
  }
}

function freshHandler() {
  return createSyncHandler({ credentials: () => SecretsManagerCredentials.fromEnvironment() });
}

/** The per-entity documents: entity name to its metric values. */
function entityMetrics(documents: MetricDocument[]): Record<string, Record<string, number>> {
  const byEntity: Record<string, Record<string, number>> = {};
  for (const doc of documents.filter((d) => d.dimensionValues.Entity !== undefined)) {
    byEntity[doc.dimensionValues.Entity!] = doc.values;
  }
  return byEntity;
}

function expectedEntityMetrics(result: SyncResult): Record<string, Record<string, number>> {
  return Object.fromEntries(
    result.entities.map((e) => [
      e.entity,
      {
        RowsInserted: e.inserted,
        RowsUpdated: e.updated,
        RowsDeleted: e.deleted,
        RowsSkipped: e.skipped,
        EntityFailed: e.status === 'failed' ? 1 : 0,
        EntityDurationMs: e.durationMs,
      },
    ]),
  );
}

function runDocuments(documents: MetricDocument[]): MetricDocument[] {
  return documents.filter((d) => 'SyncSucceeded' in d.values);
}

beforeAll(async () => {
  process.env.REMOTE_SECRET_ID = REMOTE_SECRET_ID;
  process.env.SITE_SECRET_PREFIX = SITE_PREFIX;
  delete process.env.SECRETS_TTL_SECONDS;
  fx = await createSyncFixture(1);
  await fx.seed({ tenants: [1, 2], metersPerTenant: 12, registersPerTenant: 15, registersPerMeter: 2 });
  remoteRole = await createLoginRole([fx.remote.name]);
  siteRole = await createLoginRole([fx.site.name]);
});

beforeEach(() => {
  secretsManager.reset();
});

afterAll(async () => {
  await fx.close();
  await remoteRole.drop();
  await siteRole.drop();
  secretsManager.restore();
});

describe('sync handler: events', () => {
  it('syncs a site on a scheduled event and emits the metrics of the result, with a cold start', async () => {
    // Arrange
    givenSecrets();

    // Act
    const { result, lines, error } = await invoke(handler, { siteId: SITE });

    // Assert: the result of DESIGN §4, the rows on the site.
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ ok: true, status: 'ok', siteId: SITE, tenantId: 1, dryRun: false });
    expect(result!.entities.map((e) => [e.entity, e.status, e.inserted, e.updated, e.deleted])).toEqual([
      ['meter', 'ok', 12, 0, 0],
      ['register', 'ok', 15, 0, 0],
      ['device_register', 'ok', 24, 0, 0],
    ]);
    expect(await fx.rows('site', 'meter', 'id')).toEqual(
      await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id'),
    );

    // The EMF documents: a cold start, one per entity, one for the run.
    const documents = metricDocuments(lines);
    expect(documents.every((d) => d.namespace === 'MeterSync')).toBe(true);
    const coldStart = documents.filter((d) => 'ColdStart' in d.values);
    expect(coldStart).toHaveLength(1);
    expect(coldStart[0]!.dimensions).toEqual([['service', 'function_name']]);
    const entities = documents.filter((d) => d.dimensionValues.Entity !== undefined);
    expect(entities.map((d) => d.dimensions)).toEqual(ENTITIES.map(() => [['service', 'SiteId', 'Entity']]));
    expect(entities.map((d) => d.dimensionValues)).toEqual(
      ENTITIES.map((entity) => ({ service: 'meter-sync', SiteId: SITE, Entity: entity })),
    );
    expect(entityMetrics(documents)).toEqual(expectedEntityMetrics(result!));
    expect(entities[0]!.units).toEqual({
      RowsInserted: 'Count',
      RowsUpdated: 'Count',
      RowsDeleted: 'Count',
      RowsSkipped: 'Count',
      EntityFailed: 'Count',
      EntityDurationMs: 'Milliseconds',
    });
    const run = runDocuments(documents);
    expect(run).toHaveLength(1);
    expect(run[0]!.dimensions).toEqual([['service', 'SiteId']]);
    expect(run[0]!.dimensionValues).toEqual({ service: 'meter-sync', SiteId: SITE });
    expect(run[0]!.values).toEqual({ SyncSucceeded: 1, SyncDurationMs: result!.durationMs, RunFailed: 0 });

    // The summary log lines: one per entity and one for the run, with the Lambda context.
    const logs = logLines(lines);
    const entityLogs = logs.filter((l) => l.entity !== undefined);
    expect(entityLogs.map((l) => [l.entity, l.siteId, l.tenantId, l.inserted])).toEqual([
      ['meter', SITE, 1, 12],
      ['register', SITE, 1, 15],
      ['device_register', SITE, 1, 24],
    ]);
    const summary = logs.find((l) => l.message === 'sync ok');
    expect(summary).toMatchObject({ siteId: SITE, tenantId: 1, status: 'ok', inserted: 51, level: 'INFO' });
    expect(summary).toHaveProperty('function_request_id');
  });

  it('accepts an EventBridge rule event with the request in detail, and a second run writes nothing', async () => {
    // Arrange
    givenSecrets();
    const event = {
      version: '0',
      id: 'c4a6a0f3-6a48-4a3c-9bd2-5e4d2b4e8f10',
      'detail-type': 'meter-sync manual run',
      source: 'ops.meter-sync',
      account: '123456789012',
      time: '2025-01-01T00:00:00Z',
      region: 'eu-west-1',
      resources: [],
      detail: { siteId: SITE },
    };

    // Act
    const { result, lines } = await invoke(freshHandler(), event);

    // Assert
    expect(result!.status).toBe('ok');
    expect(result!.entities.map((e) => e.inserted + e.updated + e.deleted)).toEqual([0, 0, 0]);
    const documents = metricDocuments(lines);
    expect(documents.filter((d) => 'ColdStart' in d.values)).toEqual([]);
    expect(entityMetrics(documents)).toEqual(expectedEntityMetrics(result!));
    expect(runDocuments(documents)[0]!.values.SyncSucceeded).toBe(1);
  });

  it('runs only the entities asked for, in parent-first order', async () => {
    // Arrange
    givenSecrets();
    await fx.remoteClient.query(`UPDATE register SET unit = 'kWh' WHERE tenant_id = 1 AND id % 3 = 0`);
    await fx.remoteClient.query(`UPDATE meter SET active = NOT active WHERE tenant_id = 1 AND id % 2 = 0`);

    // Act
    const { result, lines } = await invoke(freshHandler(), {
      siteId: SITE,
      entities: ['register', 'device_register'],
    });

    // Assert: register changed, device_register unchanged, meter not run (its change stays on the remote).
    expect(result!.entities.map((e) => e.entity)).toEqual(['register', 'device_register']);
    expect(result!.entities[0]!.updated).toBeGreaterThan(0);
    expect(Object.keys(entityMetrics(metricDocuments(lines)))).toEqual(['register', 'device_register']);
    expect(entityMetrics(metricDocuments(lines))).toEqual(expectedEntityMetrics(result!));
    const site = await fx.rows('site', 'meter', 'id');
    const remote = await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id');
    expect(site).not.toEqual(remote);
  });

  it('dry run: reports the exact counts, writes nothing and emits no row or success metrics', async () => {
    // Arrange: the meter change of the previous test is still pending.
    givenSecrets();
    const before = await fx.rows('site', 'meter', 'id');

    // Act
    const { result, lines } = await invoke(freshHandler(), { siteId: SITE, dryRun: true });

    // Assert
    expect(result).toMatchObject({ ok: true, dryRun: true });
    expect(result!.entities[0]).toMatchObject({ entity: 'meter', updated: 6 });
    expect(await fx.rows('site', 'meter', 'id')).toEqual(before);
    expect(metricDocuments(lines)).toEqual([]);
    const summary = logLines(lines).find(
      (l) => typeof l.message === 'string' && l.message.startsWith('sync ok'),
    );
    expect(summary).toMatchObject({ dryRun: true, updated: 6 });
  });

  it('plan action: lists the pending changes row by row, writes nothing, emits no metrics, logs one line', async () => {
    // Arrange: the meter change of the earlier test is still pending.
    givenSecrets();
    const before = await fx.rows('site', 'meter', 'id');

    // Act
    const { result, lines } = await invoke(freshHandler(), {
      siteId: SITE,
      action: 'plan',
      entities: ['meter'],
      maxChanges: 4,
    });

    // Assert
    const plan = result as unknown as SyncResult & { action: string };
    expect(plan).toMatchObject({ ok: true, action: 'plan', dryRun: true });
    expect(plan.entities[0]).toMatchObject({ entity: 'meter', updated: 6, changesTruncated: true });
    expect(plan.entities[0]!.changes!.map((c) => c.op)).toEqual(['update', 'update', 'update', 'update']);
    expect(await fx.rows('site', 'meter', 'id')).toEqual(before);
    expect(metricDocuments(lines).filter((d) => !('ColdStart' in d.values))).toEqual([]);
    const logged = logLines(lines).filter(
      (l) => typeof l.message === 'string' && /^(plan|sync|meter)/.test(l.message),
    );
    expect(logged.map((l) => l.message)).toEqual(['plan ok']);
    expect(logged[0]).toMatchObject({ entities: [{ entity: 'meter', updated: 6, changesTruncated: true }] });
  });

  it('check action: the preflight report of the site, no metrics, one log line', async () => {
    // Arrange
    givenSecrets();

    // Act
    const { result, lines } = await invoke(freshHandler(), { siteId: SITE, action: 'check' });

    // Assert
    const report = result as unknown as {
      ok: boolean;
      action: string;
      checks: { name: string; status: string }[];
    };
    expect(report).toMatchObject({ ok: true, action: 'check', siteId: SITE, tenantId: 1 });
    expect(Object.fromEntries(report.checks.map((c) => [c.name, c.status]))).toMatchObject({
      'remote connection': 'ok',
      'site connection': 'ok',
      'remote read-only': 'ok',
      // The test's remote role may write (it is granted ALL): least privilege says so.
      'remote privileges': 'warn',
      'site schema': 'ok',
      'tenant slice': 'ok',
      'site lock': 'ok',
    });
    expect(metricDocuments(lines).filter((d) => !('ColdStart' in d.values))).toEqual([]);
    const logged = logLines(lines).filter(
      (l) => typeof l.message === 'string' && l.message.startsWith('check'),
    );
    expect(logged.map((l) => l.message)).toEqual(['check ok with warnings: remote privileges']);
  });

  it.each([0, 100_001, 2.5, '10', null])(
    'plan action with maxChanges %j is BAD_EVENT, before any secret is read',
    async (maxChanges) => {
      givenSecrets();
      const reads = secretReads();
      const { error } = await invoke(freshHandler(), { siteId: SITE, action: 'plan', maxChanges });
      expect(error).toMatchObject({ code: 'BAD_EVENT' });
      expect(error!.message).toMatch(/^bad event: maxChanges must be a whole number from 1 to 100000/);
      expect(secretReads()).toBe(reads);
    },
  );

  it('then syncs the pending change for real', async () => {
    givenSecrets();
    const { result } = await invoke(freshHandler(), { siteId: SITE, allowMassDelete: false });
    expect(result!.entities[0]).toMatchObject({ entity: 'meter', updated: 6 });
    expect(await fx.rows('site', 'meter', 'id')).toEqual(
      await fx.rows('remote', 'meter WHERE tenant_id = 1', 'id'),
    );
  });

  const badEvents: [string, unknown][] = [
    ['no event object', 'site-a'],
    ['null', null],
    ['an array', [{ siteId: SITE }]],
    ['no siteId', { dryRun: true }],
    ['a numeric siteId', { siteId: 7 }],
    ['a siteId with a slash', { siteId: 'a/../b' }],
    ['a siteId with a newline', { siteId: 'a\nb' }],
    ['a siteId of 64 characters', { siteId: 'a'.repeat(64) }],
    ['an empty siteId', { siteId: '' }],
    ['an unknown field', { siteId: SITE, dryrun: true }],
    ['an unknown entity', { siteId: SITE, entities: ['meters'] }],
    ['an empty entity list', { siteId: SITE, entities: [] }],
    ['entities as a string', { siteId: SITE, entities: 'meter' }],
    ['an entity twice', { siteId: SITE, entities: ['meter', 'meter'] }],
    ['dryRun as a string', { siteId: SITE, dryRun: 'true' }],
    ['allowMassDelete as a number', { siteId: SITE, allowMassDelete: 1 }],
    ['an EventBridge event without an object detail', { 'detail-type': 'x', source: 'y', detail: 'site-a' }],
    ['an unknown field in detail', { 'detail-type': 'x', source: 'y', detail: { siteId: SITE, extra: 1 } }],
    ['an unknown envelope field', { 'detail-type': 'x', detail: { siteId: SITE }, siteId: SITE }],
  ];

  it.each(badEvents)('rejects %s with BAD_EVENT, in one line, touching nothing', async (_name, event) => {
    // Arrange
    givenSecrets();
    const runsBefore = await fx.rows('site', 'sync_run', 'id');

    // Act
    const { result, error, lines } = await invoke(freshHandler(), event);

    // Assert: rejected before credentials were read, so no database could be touched.
    expect(result).toBeUndefined();
    expect(error).toMatchObject({ code: 'BAD_EVENT', name: 'BadEventError' });
    expect(error!.message).not.toMatch(/[\n\r]/);
    expect(secretReads()).toBe(0);
    expect(await fx.rows('site', 'sync_run', 'id')).toEqual(runsBefore);
    expect(metricDocuments(lines)).toEqual([]);
    expect(logLines(lines).find((l) => l.level === 'ERROR')).toMatchObject({ error: { code: 'BAD_EVENT' } });
  });
});

describe('sync handler: secrets', () => {
  it('reads each secret once across warm invocations (TTL cache)', async () => {
    givenSecrets();
    const fn = freshHandler();
    await invoke(fn, { siteId: SITE });
    await invoke(fn, { siteId: SITE, entities: ['meter'] });
    expect(secretReads(REMOTE_SECRET_ID)).toBe(1);
    expect(secretReads(`${SITE_PREFIX}${SITE}`)).toBe(1);
  });

  it('fails the invocation with SECRET_NOT_FOUND when the site secret does not exist, and counts a failed sync', async () => {
    // Arrange
    givenSecrets();
    secretsManager.on(GetSecretValueCommand, { SecretId: `${SITE_PREFIX}${SITE}` }).rejects(
      new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: {},
      }),
    );

    // Act
    const { error, lines } = await invoke(freshHandler(), { siteId: SITE });

    // Assert
    expect(error).toMatchObject({ code: 'SECRET_NOT_FOUND' });
    expect(error!.message).toBe(`secret "${SITE_PREFIX}${SITE}" does not exist`);
    const run = runDocuments(metricDocuments(lines));
    expect(run.map((d) => [d.dimensionValues.SiteId, d.values.SyncSucceeded])).toEqual([[SITE, 0]]);
  });

  it('fails with SECRETS_UNAVAILABLE when Secrets Manager refuses', async () => {
    givenSecrets();
    secretsManager.on(GetSecretValueCommand, { SecretId: REMOTE_SECRET_ID }).rejects(
      Object.assign(new Error('User is not authorized to perform secretsmanager:GetSecretValue'), {
        name: 'AccessDeniedException',
      }),
    );
    const { error } = await invoke(freshHandler(), { siteId: SITE });
    expect(error).toMatchObject({ code: 'SECRETS_UNAVAILABLE' });
    expect(error!.message).toContain('AccessDeniedException');
  });

  const malformed: [string, () => string | undefined, string][] = [
    [
      'not JSON (and the text is not echoed)',
      () => `password=${remembered(newPassword())}`,
      'is not valid JSON',
    ],
    ['a JSON string', () => JSON.stringify(remembered(newPassword())), 'must be a JSON object'],
    ['no password', () => stripped('password'), 'field "password" is missing'],
    ['no tenantId', () => stripped('tenantId'), 'field "tenantId" is missing'],
    [
      'a tenantId that is not an integer',
      () => patched({ tenantId: 'one' }),
      'field "tenantId" must be an integer',
    ],
    [
      'a port out of range',
      () => patched({ port: 70000 }),
      'field "port" must be an integer from 1 to 65535',
    ],
    [
      'an sslmode that falls back to clear text',
      () => patched({ sslmode: 'prefer' }),
      'field "sslmode" must be one of',
    ],
    ['a host that is a number', () => patched({ host: 12 }), 'field "host" must be a non-empty string'],
    ['no SecretString (a binary secret)', () => undefined, 'has no SecretString'],
  ];

  function remembered(password: string): string {
    passwords.add(password);
    return password;
  }
  function patched(fields: object): string {
    return rdsSecret(
      fx.site.name,
      { name: siteRole.name, password: newPassword() },
      { tenantId: 1, ...fields },
    );
  }
  function stripped(field: string): string {
    const secret = JSON.parse(patched({}));
    delete secret[field];
    return JSON.stringify(secret);
  }

  it.each(malformed)(
    'rejects a site secret with %s: BAD_SECRET naming the field',
    async (_name, make, expected) => {
      // Arrange
      const secretString = make();
      if (secretString !== undefined) passwords.add(secretString);
      givenSecrets();
      secretsManager
        .on(GetSecretValueCommand, { SecretId: `${SITE_PREFIX}${SITE}` })
        .resolves(
          secretString === undefined
            ? { SecretBinary: new Uint8Array([1, 2, 3]) }
            : { SecretString: secretString },
        );

      // Act
      const { error, lines } = await invoke(freshHandler(), { siteId: SITE });

      // Assert
      expect(error).toMatchObject({ code: 'BAD_SECRET', name: 'BadSecretError' });
      expect(error!.message).toContain(`secret "${SITE_PREFIX}${SITE}": `);
      expect(error!.message).toContain(expected);
      expect(runDocuments(metricDocuments(lines)).map((d) => d.values.SyncSucceeded)).toEqual([0]);
    },
  );

  it('reports a secret naming a database that does not exist as a failed run, without retrying', async () => {
    givenSecrets(rdsSecret('no_such_database', siteRole, { tenantId: 1 }));
    const { result, lines } = await invoke(freshHandler(), { siteId: SITE });
    expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'DATABASE_NOT_FOUND' } });
    expect(result!.error!.message).toMatch(
      /^the site database at \S+:\d+ has no database "no_such_database"$/,
    );
    expect(secretReads()).toBe(2);
    expect(entityMetrics(metricDocuments(lines))).toEqual(expectedEntityMetrics(result!));
    expect(runDocuments(metricDocuments(lines))[0]!.values.SyncSucceeded).toBe(0);
  });

  it('reports a secret pointing at a closed port as a failed run (CONNECTION_REFUSED)', async () => {
    givenSecrets(
      JSON.stringify({ ...JSON.parse(rdsSecret(fx.site.name, siteRole, { tenantId: 1 })), port: 1 }),
    );
    const { result } = await invoke(freshHandler(), { siteId: SITE });
    expect(result).toMatchObject({ status: 'failed', error: { code: 'CONNECTION_REFUSED' } });
    expect(result!.error!.message).toMatch(/^nothing accepts connections at \S+:1 \(the site database\)/);
  });

  const passwordsChecked = serverChecksPasswords() ? it : it.skip;

  passwordsChecked(
    'reports a wrong password as AUTHENTICATION_FAILED after one re-read, with no second attempt',
    async () => {
      // Arrange
      givenSecrets(
        rdsSecret(fx.site.name, { name: siteRole.name, password: newPassword() }, { tenantId: 1 }),
      );

      // Act
      const { result, lines } = await invoke(freshHandler(), { siteId: SITE });

      // Assert: both secrets re-read once; unchanged, so no retry (no "trying again" line).
      expect(result).toMatchObject({ status: 'failed', error: { code: 'AUTHENTICATION_FAILED' } });
      expect(secretReads(REMOTE_SECRET_ID)).toBe(2);
      expect(secretReads(`${SITE_PREFIX}${SITE}`)).toBe(2);
      expect(logLines(lines).filter((l) => String(l.message).includes('trying again'))).toEqual([]);
    },
  );

  passwordsChecked(
    'picks up a rotated password in a warm container: re-reads the secret and succeeds',
    async () => {
      // Arrange: a warm handler has read and cached the current password.
      const siteSecret = `${SITE_PREFIX}${SITE}`;
      const oldSecret = rdsSecret(fx.site.name, siteRole, { tenantId: 1 });
      givenSecrets(oldSecret);
      const fn = freshHandler();
      expect((await invoke(fn, { siteId: SITE })).result!.status).toBe('ok');
      // The rotation changes the password on the server and in the secret.
      await siteRole.rotate();
      const newSecret = rdsSecret(fx.site.name, siteRole, { tenantId: 1 });
      secretsManager
        .on(GetSecretValueCommand, { SecretId: siteSecret })
        .resolves({ SecretString: newSecret });
      await fx.remoteClient.query(`UPDATE meter SET name = name || '.' WHERE tenant_id = 1 AND id % 4 = 0`);

      // Act: the cached password fails, the secret is re-read once, the run goes through.
      const { result, lines } = await invoke(fn, { siteId: SITE });

      // Assert
      expect(result).toMatchObject({ ok: true, status: 'ok' });
      expect(result!.entities[0]).toMatchObject({ entity: 'meter', updated: 3 });
      expect(secretReads(siteSecret)).toBe(2);
      const retry = logLines(lines).filter((l) => String(l.message).includes('trying again'));
      expect(retry).toHaveLength(1);
      expect(retry[0]).toMatchObject({
        level: 'WARN',
        siteId: SITE,
        error: { code: 'AUTHENTICATION_FAILED' },
      });
    },
  );

  passwordsChecked(
    'succeeds on a cold start that first reads a stale secret (the mock returns the old, then the new)',
    async () => {
      // Arrange: the password already changed on the server; Secrets Manager first serves the old one.
      const oldSecret = rdsSecret(fx.site.name, siteRole, { tenantId: 1 });
      await siteRole.rotate();
      const newSecret = rdsSecret(fx.site.name, siteRole, { tenantId: 1 });
      givenSecrets();
      secretsManager
        .on(GetSecretValueCommand, { SecretId: `${SITE_PREFIX}${SITE}` })
        .resolvesOnce({ SecretString: oldSecret })
        .resolves({ SecretString: newSecret });

      // Act
      const { result } = await invoke(freshHandler(), { siteId: SITE });

      // Assert
      expect(result).toMatchObject({ ok: true, status: 'ok' });
      expect(secretReads(`${SITE_PREFIX}${SITE}`)).toBe(2);
    },
  );
});

describe('sync handler: deadline', () => {
  it('fails at once with DEADLINE_EXCEEDED when less time remains than the safety margin', async () => {
    givenSecrets();
    const { result, lines } = await invoke(freshHandler(), { siteId: SITE }, 4_000);
    expect(result).toMatchObject({ status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
    // Before any entity ran: the run's failure alone, counted as one.
    expect(result!.entities).toEqual([]);
    expect(runDocuments(metricDocuments(lines))[0]!.values).toMatchObject({ SyncSucceeded: 0, RunFailed: 1 });
  });

  it('cancels a run still waiting near the Lambda timeout, rolls it back and reports every entity failed', async () => {
    // Arrange: the remote meter table is locked, so the run waits on its first read; the function
    // has the margin plus one second left.
    givenSecrets();
    const runsBefore = await fx.rows('site', 'sync_run', 'id');
    const lock = await holdLock(fx.remote.url, 'LOCK TABLE meter IN ACCESS EXCLUSIVE MODE');
    let outcome: Awaited<ReturnType<typeof invoke>>;
    try {
      // Act
      outcome = await invoke(freshHandler(), { siteId: SITE }, 5_000 + 1_000);
      expect(await lock.waiting()).toBe(0);
    } finally {
      await lock.release();
    }

    // Assert
    const { result, lines } = outcome;
    expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
    expect(result!.entities.map((e) => [e.entity, e.status, e.error?.code])).toEqual(
      ENTITIES.map((entity) => [entity, 'failed', 'DEADLINE_EXCEEDED']),
    );
    expect(await fx.rows('site', 'sync_run', 'id')).toEqual(runsBefore);
    const documents = metricDocuments(lines);
    expect(entityMetrics(documents)).toEqual(expectedEntityMetrics(result!));
    expect(Object.values(entityMetrics(documents)).map((v) => v.EntityFailed)).toEqual([1, 1, 1]);
    expect(runDocuments(documents)[0]!.values.SyncSucceeded).toBe(0);
    expect(logLines(lines).find((l) => l.message === 'sync failed')).toMatchObject({
      level: 'ERROR',
      error: { code: 'DEADLINE_EXCEEDED' },
    });
  });
});

describe('sync handler: other outcomes', () => {
  it('returns a locked run as it is: nothing done, no run metrics, an info line', async () => {
    // Arrange: another run holds the site.
    givenSecrets();
    const lock = await holdLock(fx.site.url, `SELECT pg_advisory_xact_lock(${SITE_LOCK_KEY})`);
    let outcome: Awaited<ReturnType<typeof invoke>>;
    try {
      // Act
      outcome = await invoke(freshHandler(), { siteId: SITE });
    } finally {
      await lock.release();
    }

    // Assert
    const { result, lines } = outcome;
    expect(result).toMatchObject({
      ok: false,
      status: 'locked',
      entities: [],
      error: { code: 'SITE_LOCKED' },
    });
    expect(metricDocuments(lines)).toEqual([]);
    expect(logLines(lines).find((l) => l.message === 'sync locked')).toMatchObject({
      level: 'INFO',
      siteId: SITE,
    });
  });

  it('runs the same handler with URL credentials (the CLI demo)', async () => {
    // Arrange
    await fx.remoteClient.query(
      `UPDATE register SET description = 'from the demo' WHERE tenant_id = 1 AND id % 5 = 0`,
    );
    const local = createSyncHandler({
      credentials: new LocalCredentials({
        remote: fx.remote.url,
        sites: { demo: { url: fx.site.url, tenantId: 1 } },
      }),
    });

    // Act
    const { result, lines } = await invoke(local, { siteId: 'demo' });

    // Assert
    expect(result).toMatchObject({ ok: true, siteId: 'demo', tenantId: 1 });
    expect(result!.entities[1]).toMatchObject({ entity: 'register', updated: 3 });
    expect(secretReads()).toBe(0);
    expect(entityMetrics(metricDocuments(lines))).toEqual(expectedEntityMetrics(result!));
  });
});

describe('sync handler: site migrations', () => {
  const NEW_SITE = 'site-new';
  const NEW_SECRET_ID = `${SITE_PREFIX}${NEW_SITE}`;
  const ALL_APPLIED = SITE_MIGRATIONS.map((m) => `${m.version} ${m.name}`);
  let newRole: LoginRole;
  let newSite: TestDatabase;
  /** A superuser session on the new site, for arranging and asserting. */
  let newClient: Client;

  beforeAll(async () => {
    newRole = await createLoginRole([]);
  });
  afterAll(() => newRole.drop());

  beforeEach(async () => {
    // A brand-new empty site database, which the site's login role may create its schema in.
    newSite = await createTestDatabase('site_new');
    newClient = new Client({ connectionString: newSite.url });
    await newClient.connect();
    await newClient.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${escapeIdentifier(newRole.name)}`);
    givenSecrets();
    secretsManager
      .on(GetSecretValueCommand, { SecretId: NEW_SECRET_ID })
      .resolves({ SecretString: rdsSecret(newSite.name, newRole, { tenantId: 1 }) });
  });
  afterEach(async () => {
    await newClient.end();
    await newSite.drop();
  });

  const tables = async () =>
    (
      await newClient.query<{ name: string }>(
        `SELECT relname AS name FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
  /** The documents of a metric, the ColdStart of the file's first invocation set aside. */
  const documentsOf = (lines: string[], metric: string) =>
    metricDocuments(lines).filter((d) => metric in d.values);
  const withoutColdStart = (lines: string[]) =>
    metricDocuments(lines).filter((d) => !('ColdStart' in d.values));
  const siteMigratedDocument = {
    namespace: 'MeterSync',
    dimensions: [['service', 'SiteId']],
    dimensionValues: { service: 'meter-sync', SiteId: NEW_SITE },
    values: { SiteMigrated: 1 },
    units: { SiteMigrated: 'Count' },
  };

  /** Runs `fn` with the variables of `env` set (undefined: unset), then puts them back. */
  async function withEnvironment<T>(
    env: Record<string, string | undefined>,
    fn: () => Promise<T>,
  ): Promise<T> {
    const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
    const set = (values: Record<string, string | undefined>) => {
      for (const [name, value] of Object.entries(values)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    };
    set(env);
    try {
      return await fn();
    } finally {
      set(saved);
    }
  }

  it('migrate action: brings a brand-new site to the latest schema, reading both secrets; SiteMigrated=1 and a line with the result', async () => {
    // Act
    const { result, error, lines } = await invoke(freshHandler(), { siteId: NEW_SITE, action: 'migrate' });

    // Assert: the result of the migrate action, and the schema on the site.
    expect(error).toBeUndefined();
    expect(result as unknown as MigrateResult).toEqual({
      ok: true,
      status: 'ok',
      siteId: NEW_SITE,
      action: 'migrate',
      fromVersion: 0,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: ALL_APPLIED,
      adopted: [],
      added: ADDED_TO_AN_EMPTY_SITE,
      kept: [],
      durationMs: expect.any(Number),
    });
    expect(await siteSchemaVersion(newClient)).toBe(LATEST_SITE_SCHEMA_VERSION);
    expect(await tables()).toEqual(ALL_SITE_TABLES);

    // Secrets Manager was asked for each secret once: the remote's tells that the site is not the remote.
    expect(
      secretsManager
        .commandCalls(GetSecretValueCommand)
        .map((c) => c.args[0].input.SecretId)
        .sort(),
    ).toEqual([NEW_SECRET_ID, REMOTE_SECRET_ID].sort());

    // One SiteMigrated under SiteId, and no sync metric.
    expect(withoutColdStart(lines)).toEqual([siteMigratedDocument]);

    // The line of the result, with the Lambda context.
    const line = logLines(lines).find((l) => l.message === 'migrate ok');
    expect(line).toMatchObject({
      level: 'INFO',
      siteId: NEW_SITE,
      action: 'migrate',
      status: 'ok',
      fromVersion: 0,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: ALL_APPLIED,
    });
    expect(line).toHaveProperty('function_request_id');
  });

  it('migrate action on a site already up to date: applies nothing, emits no SiteMigrated, logs the result', async () => {
    // Arrange
    expect((await invoke(freshHandler(), { siteId: NEW_SITE, action: 'migrate' })).result).toMatchObject({
      ok: true,
    });
    secretsManager.resetHistory();

    // Act
    const { result, lines } = await invoke(freshHandler(), { siteId: NEW_SITE, action: 'migrate' });

    // Assert
    expect(result as unknown as MigrateResult).toEqual({
      ok: true,
      status: 'ok',
      siteId: NEW_SITE,
      action: 'migrate',
      fromVersion: LATEST_SITE_SCHEMA_VERSION,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: [],
      adopted: [],
      added: [],
      kept: [],
      durationMs: expect.any(Number),
    });
    expect(documentsOf(lines, 'SiteMigrated')).toEqual([]);
    expect(withoutColdStart(lines)).toEqual([]);
    expect(logLines(lines).find((l) => l.message === 'migrate ok')).toMatchObject({
      level: 'INFO',
      siteId: NEW_SITE,
      fromVersion: LATEST_SITE_SCHEMA_VERSION,
      toVersion: LATEST_SITE_SCHEMA_VERSION,
      applied: [],
    });
    // The remote secret too: a migration tells that the site is not the remote.
    expect(secretReads(REMOTE_SECRET_ID)).toBe(1);
  });

  it('a plain sync event onboards a brand-new empty site: migrated, then loaded; SiteMigrated emitted', async () => {
    // Arrange
    const expected = await expectedSlice(fx.remoteClient, 1);

    // Act
    const { result, error, lines } = await invoke(freshHandler(), { siteId: NEW_SITE });

    // Assert: migrated from nothing, then every row of the tenant loaded.
    expect(error).toBeUndefined();
    expect(result).toMatchObject({
      ok: true,
      status: 'ok',
      siteId: NEW_SITE,
      tenantId: 1,
      migration: { fromVersion: 0, toVersion: LATEST_SITE_SCHEMA_VERSION },
    });
    expect(result!.entities.map((e) => [e.entity, e.status, e.inserted])).toEqual(
      ENTITIES.map((entity) => [entity, 'ok', expected[entity]!.length]),
    );
    expect(expected.device_register!.length).toBeGreaterThan(0);
    const { sync_run_count: runs, ...contents } = await siteContents(newClient);
    expect(contents).toEqual(expected);
    expect(runs).toEqual([{ runs: '1' }]);

    // SiteMigrated once, beside the sync's own metrics; the migration in its own line.
    const documents = metricDocuments(lines);
    expect(documentsOf(lines, 'SiteMigrated')).toEqual([siteMigratedDocument]);
    expect(entityMetrics(documents)).toEqual(expectedEntityMetrics(result!));
    expect(runDocuments(documents).map((d) => [d.dimensionValues.SiteId, d.values.SyncSucceeded])).toEqual([
      [NEW_SITE, 1],
    ]);
    expect(
      logLines(lines).find(
        (l) => l.message === `site schema migrated from version 0 to ${LATEST_SITE_SCHEMA_VERSION}`,
      ),
    ).toMatchObject({
      level: 'INFO',
      siteId: NEW_SITE,
      migration: { fromVersion: 0, toVersion: LATEST_SITE_SCHEMA_VERSION },
    });
  });

  it('a sync event onboards a site database that already has a meter table: adopted, the rest added and loaded', async () => {
    // Arrange: the plant's own meter table, with the tenant's meters and a column of its own.
    const expected = await expectedSlice(fx.remoteClient, 1);
    await newClient.query(`CREATE TABLE meter (
      id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, serial_number text,
      protocol text NOT NULL, ip_address text, port integer, active boolean NOT NULL, config jsonb,
      updated_at timestamptz NOT NULL, last_polled_at timestamptz)`);
    await insertTextRows(newClient, 'meter', expected.meter!);
    await newClient.query(`GRANT ALL ON meter TO ${escapeIdentifier(newRole.name)}`);

    // Act
    const { result, error, lines } = await invoke(freshHandler(), { siteId: NEW_SITE });

    // Assert
    expect(error).toBeUndefined();
    expect(result).toMatchObject({
      ok: true,
      migration: {
        fromVersion: 0,
        toVersion: LATEST_SITE_SCHEMA_VERSION,
        adopted: ['meter'],
        kept: [
          "meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync",
          `meter: its ${expected.meter!.length} rows, reconciled by the first sync`,
        ],
      },
    });
    expect(result!.entities.map((e) => [e.entity, e.inserted, e.updated, e.deleted])).toEqual([
      ['meter', 0, 0, 0],
      ['register', expected.register!.length, 0, 0],
      ['device_register', expected.device_register!.length, 0, 0],
    ]);
    expect(documentsOf(lines, 'SiteMigrated')).toEqual([siteMigratedDocument]);
    expect(
      logLines(lines).find(
        (l) =>
          l.message ===
          `site schema migrated from version 0 to ${LATEST_SITE_SCHEMA_VERSION}, adopting meter`,
      ),
    ).toMatchObject({ level: 'INFO', siteId: NEW_SITE, migration: { adopted: ['meter'] } });
  });

  it('a site secret that points at the remote: sync and migrate fail SITE_IS_REMOTE, RunFailed=1, the remote untouched', async () => {
    // Arrange: the site's secret copied from the remote's.
    secretsManager
      .on(GetSecretValueCommand, { SecretId: NEW_SECRET_ID })
      .resolves({ SecretString: rdsSecret(fx.remote.name, remoteRole, { tenantId: 1 }) });
    const before = await snapshotOf(fx.remoteClient);

    // Act
    const synced = await invoke(freshHandler(), { siteId: NEW_SITE });
    const migrated = await invoke(freshHandler(), { siteId: NEW_SITE, action: 'migrate' });

    // Assert
    expect(synced.result).toMatchObject({
      ok: false,
      status: 'failed',
      entities: [],
      error: { code: 'SITE_IS_REMOTE' },
    });
    expect(runDocuments(metricDocuments(synced.lines))[0]!.values).toMatchObject({
      SyncSucceeded: 0,
      RunFailed: 1,
    });
    expect(logLines(synced.lines).find((l) => l.message === 'sync failed')).toMatchObject({
      level: 'ERROR',
      error: { code: 'SITE_IS_REMOTE' },
    });
    expect(migrated.result).toMatchObject({ ok: false, status: 'failed', error: { code: 'SITE_IS_REMOTE' } });
    expect(documentsOf(migrated.lines, 'SiteMigrated')).toEqual([]);
    expect(await snapshotOf(fx.remoteClient)).toEqual(before);
  });

  const manual: [string, Partial<SyncHandlerOptions>, Record<string, string>][] = [
    ['the handler setting', { settings: { siteMigrations: 'manual' } }, {}],
    ['SITE_MIGRATIONS=manual', {}, { SITE_MIGRATIONS: 'manual' }],
  ];

  it.each(manual)(
    'with migrations manual (%s), a sync of an empty site fails SITE_NOT_MIGRATED and creates no table',
    async (_name, options, env) => {
      // Act
      const { result, error, lines } = await withEnvironment(env, () =>
        invoke(
          createSyncHandler({ credentials: () => SecretsManagerCredentials.fromEnvironment(), ...options }),
          { siteId: NEW_SITE },
        ),
      );

      // Assert
      expect(error).toBeUndefined();
      expect(result).toMatchObject({ ok: false, status: 'failed', error: { code: 'SITE_NOT_MIGRATED' } });
      expect(result!.migration).toBeUndefined();
      expect(result!.entities).toEqual([]);
      expect(await tables()).toEqual([]);
      expect(documentsOf(lines, 'SiteMigrated')).toEqual([]);
      expect(runDocuments(metricDocuments(lines)).map((d) => d.values.SyncSucceeded)).toEqual([0]);
    },
  );

  const badSettings: [string, string, 'sync' | 'migrate'][] = [
    ['SYNC_RUN_RETENTION_DAYS', '0', 'sync'],
    ['SYNC_RUN_RETENTION_DAYS', 'thirty', 'sync'],
    ['SYNC_RUN_RETENTION_DAYS', '3651', 'migrate'],
    ['SITE_MIGRATIONS', 'Auto', 'sync'],
    ['SITE_MIGRATIONS', 'off', 'migrate'],
  ];

  it.each(badSettings)(
    'fails the invocation with BAD_CONFIGURATION when %s is %j (%s), before any secret is read',
    async (variable, value, action) => {
      // Arrange
      const runsBefore = await fx.rows('site', 'sync_run', 'id');

      // Act
      const { result, error, lines } = await withEnvironment({ [variable]: value }, () =>
        invoke(freshHandler(), { siteId: NEW_SITE, action }),
      );

      // Assert: refused in one line naming the variable; no secret read, no database touched.
      expect(result).toBeUndefined();
      expect(error).toMatchObject({ code: 'BAD_CONFIGURATION', name: 'ConfigurationError' });
      expect(error!.message).toContain(variable);
      expect(secretReads()).toBe(0);
      expect(await tables()).toEqual([]);
      expect(await fx.rows('site', 'sync_run', 'id')).toEqual(runsBefore);
      expect(logLines(lines).find((l) => l.level === 'ERROR')).toMatchObject({
        message: 'operation not run',
        error: { code: 'BAD_CONFIGURATION' },
      });
    },
  );
});

describe('sync handler: secrets never leak', () => {
  it('wrote no password or secret string in any log line, error or result of this file', () => {
    expect(allLines.length).toBeGreaterThan(100);
    expect(passwords.size).toBeGreaterThan(5);
    const everything = [...allLines, ...allResults.map((r) => JSON.stringify(r))];
    for (const secret of passwords) {
      const leaks = everything.filter((text) => text.includes(secret));
      expect({ secret: `${secret.slice(0, 6)}…`, leaks }).toEqual({
        secret: `${secret.slice(0, 6)}…`,
        leaks: [],
      });
    }
  });
});
