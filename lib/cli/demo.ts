/**
 * `meter-sync demo`: an embedded PostgreSQL with a remote holding three tenants and one site of
 * tenant 1; a first sync, some remote edits (insert, update, delete, an orphan association),
 * and a second sync, each printed as the per-entity table with the metrics it emitted; then a
 * brand-new empty site of tenant 2 onboarded by its first scheduled run (migrated, then loaded),
 * and a plant's existing database of tenant 3, with a meter table of its own, onboarded the same
 * way (its table adopted, its rows reconciled, its own column kept).
 * Each run goes through the real Lambda handler, with local credentials in place of Secrets Manager.
 */
import type { Context } from 'aws-lambda';
import type { Client } from 'pg';
// The demo shows the deployed function at work, so it calls the handler itself, not the engine.
import { createSyncHandler } from '../../functions/sync/handler';
import { LocalCredentials } from '../credentials';
import { connect } from '../db/connect';
import { startEmbeddedServer } from '../db/embedded-server';
import { createRemoteSchema } from '../db/remote-schema';
import { applySiteMigrations } from '../db/site-migrations';
import type { SyncResult } from '../engine';
import type { CheckReport } from '../operations';
import { meterId, registerId, seedRemote } from '../seed/seed-remote';
import { formatCheck } from './format-check';
import { formatPlan } from './format-plan';
import { formatResult, resultErrors } from './format-result';

const TENANT = 1;
const SITE_ID = 'demo-site';
/** A site nobody prepared: an empty database, onboarded by the function's first run. */
const NEW_SITE_ID = 'new-site';
const NEW_SITE_TENANT = 2;
/** A plant whose own application made its database years ago: a meter table, synced by an older process. */
const PLANT_SITE_ID = 'plant-west';
const PLANT_TENANT = 3;

function localContext(): Context {
  const started = Date.now();
  return {
    functionName: 'meter-sync-demo',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:meter-sync-demo',
    memoryLimitInMB: '512',
    awsRequestId: `demo-${started}`,
    logGroupName: '/aws/lambda/meter-sync-demo',
    logStreamName: 'demo',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 60_000 - (Date.now() - started),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * Runs `fn` with stdout captured: the handler writes its JSON logs and EMF metrics there. Stderr
 * too: Powertools warns there of an invocation without metrics (a plan), which is no news here.
 */
async function captureStdout<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const write = process.stdout.write;
  const writeErr = process.stderr.write;
  let captured = '';
  const capture = ((chunk: string | Uint8Array) => {
    captured += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    return { value: await fn(), lines: captured.split('\n').filter((line) => line.trim() !== '') };
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
}

/** One EMF document as a line: its dimensions, then each metric with its value. */
export function describeEmf(line: string): string | undefined {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const aws = doc._aws as {
    CloudWatchMetrics?: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
  };
  const directive = aws?.CloudWatchMetrics?.[0];
  if (!directive) return undefined;
  const dimensions = (directive.Dimensions[0] ?? []).map((d) => `${d}=${String(doc[d])}`).join(' ');
  const values = directive.Metrics.map((m) => `${m.Name}=${String(doc[m.Name])}`).join(' ');
  return `${directive.Namespace} {${dimensions}} ${values}`;
}

async function createDatabase(admin: Client, name: string, serverUrl: string): Promise<string> {
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A day in the life of the central database: one of each kind of change. */
async function editRemote(remote: Client): Promise<string[]> {
  const newMeter = meterId(TENANT, 10_001);
  await remote.query(
    `INSERT INTO meter (id, tenant_id, name, protocol, active, config, updated_at)
     VALUES ($1, $2, 'Meter added today ⚡', 'modbus-tcp', true, '{"unitId": 7, "ratio": 1.0}', now())`,
    [newMeter, TENANT],
  );
  await remote.query(
    'INSERT INTO device_register (device_id, register_id, poll_interval_s, enabled) VALUES ($1, $2, 15, true)',
    [newMeter, registerId(TENANT, 1)],
  );
  await remote.query(`UPDATE register SET scale = 0.001, unit = 'Wh', updated_at = now() WHERE id = $1`, [
    registerId(TENANT, 2),
  ]);
  await remote.query(
    `UPDATE meter SET config = jsonb_set(config, '{timeoutMs}', '3000'), updated_at = now() WHERE id = $1`,
    [meterId(TENANT, 4)],
  );
  await remote.query('DELETE FROM device_register WHERE device_id = $1', [meterId(TENANT, 5)]);
  await remote.query('DELETE FROM meter WHERE id = $1', [meterId(TENANT, 5)]);
  // An association to another tenant's register: it must be skipped, never applied.
  await remote.query(
    'INSERT INTO device_register (device_id, register_id, poll_interval_s, enabled) VALUES ($1, $2, 60, true)',
    [meterId(TENANT, 6), registerId(2, 1)],
  );
  return [
    `inserted meter ${newMeter} with one association`,
    `updated register ${registerId(TENANT, 2)} (scale, unit) and meter ${meterId(TENANT, 4)} (config)`,
    `deleted meter ${meterId(TENANT, 5)} and its associations`,
    `added an association of meter ${meterId(TENANT, 6)} to register ${registerId(2, 1)} of tenant 2 (an orphan for this site)`,
  ];
}

/** The plant's database as its own application left it: a meter table with a column of its own, somewhat stale. */
async function prepareExistingSite(plant: Client, remote: Client): Promise<string[]> {
  await plant.query(`CREATE TABLE meter (
      id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, serial_number text,
      protocol text NOT NULL, ip_address text, port integer, active boolean NOT NULL, config jsonb,
      updated_at timestamptz NOT NULL,
      last_polled_at timestamptz)`);
  // The tenant's meters as the older process last synced them: the remote's rows as JSON text, read into the plant's table.
  const { rows } = await remote.query<{ meters: string; count: number }>(
    'SELECT json_agg(m ORDER BY m.id)::text AS meters, count(*)::int AS count FROM meter m WHERE tenant_id = $1',
    [PLANT_TENANT],
  );
  await plant.query('INSERT INTO meter SELECT * FROM json_populate_recordset(NULL::meter, $1::json)', [
    rows[0]!.meters,
  ]);
  await plant.query(`UPDATE meter SET last_polled_at = now() - interval '5 minutes'`);
  const [renamed, gone] = [meterId(PLANT_TENANT, 1), meterId(PLANT_TENANT, 2)];
  const retired = meterId(PLANT_TENANT, 9_001);
  await plant.query(`UPDATE meter SET name = name || ' (old name)' WHERE id = $1`, [renamed]);
  await plant.query('DELETE FROM meter WHERE id = $1', [gone]);
  await plant.query(
    `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at, last_polled_at)
     VALUES ($1, $2, 'Retired meter', 'modbus-tcp', false, '2021-03-01', '2021-03-01')`,
    [retired, PLANT_TENANT],
  );
  return [
    `its own meter table: the tenant's ${rows[0]!.count} meters as an older process synced them, with a column of its own, last_polled_at`,
    `since then: meter ${renamed} renamed on the site, meter ${gone} missing, meter ${retired} retired (not on the remote)`,
    'no register or device_register table, no meter-sync schema',
  ];
}

export async function runDemo(out: NodeJS.WritableStream): Promise<SyncResult[]> {
  const say = (line = '') => out.write(`${line}\n`);
  say('starting an embedded PostgreSQL server…');
  const server = await startEmbeddedServer();
  const results: SyncResult[] = [];
  try {
    const admin = await connect(server.url, 'site');
    const remoteUrl = await createDatabase(admin, 'central', server.url);
    const siteUrl = await createDatabase(admin, 'site_demo', server.url);
    const newSiteUrl = await createDatabase(admin, 'site_new', server.url);
    const plantUrl = await createDatabase(admin, 'site_plant_west', server.url);
    await admin.end();

    const remote = await connect(remoteUrl, 'site');
    await createRemoteSchema(remote);
    const seeded = await seedRemote(remote, {
      tenants: [1, 2, 3],
      metersPerTenant: 200,
      registersPerTenant: 500,
      registersPerMeter: 4,
    });
    say(
      `central database: 3 tenants, ${seeded.meters} meters, ${seeded.registers} registers, ${seeded.deviceRegisters} associations`,
    );
    const site = await connect(siteUrl, 'site');
    const migration = await applySiteMigrations(site);
    say(`site database of ${SITE_ID} (tenant ${TENANT}) migrated to schema version ${migration.to}`);
    await site.end();

    const handler = createSyncHandler({
      credentials: new LocalCredentials({
        remote: remoteUrl,
        sites: {
          [SITE_ID]: { url: siteUrl, tenantId: TENANT },
          [NEW_SITE_ID]: { url: newSiteUrl, tenantId: NEW_SITE_TENANT },
          [PLANT_SITE_ID]: { url: plantUrl, tenantId: PLANT_TENANT },
        },
      }),
    });
    const sync = async (title: string, siteId = SITE_ID) => {
      say();
      say(`== ${title}`);
      const { value: result, lines } = await captureStdout(
        () => handler({ siteId }, localContext()) as Promise<SyncResult>,
      );
      results.push(result);
      say(formatResult(result));
      for (const line of resultErrors(result)) say(line);
      const emf = lines.filter((line) => describeEmf(line) !== undefined);
      if (results.length === 1) {
        say('metrics emitted, as CloudWatch Embedded Metric Format lines:');
        for (const line of emf) say(line);
      } else {
        say('metrics emitted (EMF, condensed):');
        for (const line of emf) say(`  ${describeEmf(line)}`);
      }
      return result;
    };
    await sync('first sync: empty site');
    say();
    say('== editing the central database');
    for (const line of await editRemote(remote)) say(`  ${line}`);
    await remote.end();
    say();
    say('== plan: the changes the next sync makes, row by row (nothing written)');
    const { value: plan } = await captureStdout(
      () => handler({ siteId: SITE_ID, action: 'plan' }, localContext()) as Promise<SyncResult>,
    );
    say(formatPlan(plan));
    await sync('second sync: only the changes are written');
    await sync('third sync: nothing changed');
    say();
    say(`== check: ${NEW_SITE_ID} before its first run (changes nothing)`);
    const { value: report } = await captureStdout(
      () => handler({ siteId: NEW_SITE_ID, action: 'check' }, localContext()) as Promise<CheckReport>,
    );
    say(formatCheck(report));
    const onboarding = await sync(
      `onboarding ${NEW_SITE_ID} (tenant ${NEW_SITE_TENANT}): an empty database, its first scheduled run`,
      NEW_SITE_ID,
    );
    say(
      `${NEW_SITE_ID} onboarded by one run in ${onboarding.durationMs} ms: schema migrated, then ${onboarding.entities
        .map((e) => `${e.inserted} ${e.entity}`)
        .join(', ')} loaded, nobody involved`,
    );
    say();
    say(`== ${PLANT_SITE_ID} (tenant ${PLANT_TENANT}): a database the plant already had`);
    const plant = await connect(plantUrl, 'site');
    const central = await connect(remoteUrl, 'remote');
    for (const line of await prepareExistingSite(plant, central)) say(`  ${line}`);
    await central.end();
    const { value: preflight } = await captureStdout(
      () => handler({ siteId: PLANT_SITE_ID, action: 'check' }, localContext()) as Promise<CheckReport>,
    );
    say('  its check before the run, the line of its site tables:');
    const tablesLine = formatCheck({
      ...preflight,
      checks: preflight.checks.filter((c) => c.name === 'site tables'),
    });
    for (const line of tablesLine.split('\n').slice(1)) say(`  ${line}`);
    const adopting = await sync(`onboarding ${PLANT_SITE_ID}: its first scheduled run`, PLANT_SITE_ID);
    const { rows: polled } = await plant.query<{ kept: string }>(
      'SELECT count(*) FILTER (WHERE last_polled_at IS NOT NULL) AS kept FROM meter',
    );
    await plant.end();
    const [meters] = adopting.entities;
    say(
      `${PLANT_SITE_ID} onboarded by one run in ${adopting.durationMs} ms: its meter table adopted and reconciled (${meters?.updated} updated, ${meters?.inserted} inserted, ${meters?.deleted} deleted; last_polled_at kept on ${polled[0]?.kept} meters), register and device_register added and loaded`,
    );
  } finally {
    await server.stop();
  }
  return results;
}
