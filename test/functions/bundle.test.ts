/**
 * The deployable artifact: the esbuild bundle of the sync function, copied to a folder outside the
 * repository (no node_modules anywhere above it) and invoked by plain `node` in a child process.
 * Secrets Manager is a small local HTTP server that answers GetSecretValue the way the service does;
 * the child reaches it through the SDK's own endpoint setting (AWS_ENDPOINT_URL_SECRETS_MANAGER),
 * signing its requests with fake credentials, as it would in Lambda.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { SyncResult } from '../../lib/engine';
import { type BundleReport, buildSyncFunction, TRACING_ENVIRONMENT } from '../../scripts/build';
import {
  fakeAwsEnvironment,
  type SecretRequest,
  secretsManagerServer,
} from '../harness/secrets-manager-server';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { serverUrl } from '../harness/test-database';
import { startXrayDaemon } from '../harness/xray-daemon';
import { logLines, metricDocuments } from '../observability/captured-output';
import { createLoginRole, type LoginRole } from './login-role';

const run = promisify(execFile);
const SITE = 'plant-7';

/** Invokes the handler once per event, in order, as a warm container would; prints each outcome. */
const RUNNER = `
const started = process.hrtime.bigint();
const { handler } = require('./index.js');
const initMs = Number(process.hrtime.bigint() - started) / 1e6;
const context = (n) => ({
  functionName: 'meter-sync', functionVersion: '$LATEST', awsRequestId: 'request-' + n,
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:meter-sync',
  memoryLimitInMB: '512', logGroupName: '/aws/lambda/meter-sync', logStreamName: 'stream',
  getRemainingTimeInMillis: () => 60000,
});
(async () => {
  const events = JSON.parse(process.argv[2]);
  for (const [n, event] of events.entries()) {
    try {
      const result = await handler(event, context(n));
      process.stdout.write('OUTCOME ' + JSON.stringify({ initMs, result }) + '\\n');
    } catch (error) {
      process.stdout.write('OUTCOME ' + JSON.stringify({ initMs, error: { name: error.name, code: error.code, message: error.message } }) + '\\n');
    }
  }
})();
`;

describe('the bundled sync function', () => {
  let folder: string;
  let report: BundleReport;
  let fx: SyncFixture;
  let remoteRole: LoginRole;
  let siteRole: LoginRole;
  let server: Server;
  const requests: SecretRequest[] = [];
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'meter-sync-bundle-'));
    report = await buildSyncFunction(join(folder, 'index.js'));
    writeFileSync(join(folder, 'runner.js'), RUNNER);
    fx = await createSyncFixture(3);
    await fx.seed({ tenants: [2, 3], metersPerTenant: 8, registersPerTenant: 10, registersPerMeter: 2 });
    remoteRole = await createLoginRole([fx.remote.name]);
    siteRole = await createLoginRole([fx.site.name]);
    const { hostname, port } = new URL(serverUrl());
    const secret = (database: string, role: LoginRole, extra: object = {}) =>
      JSON.stringify({
        host: hostname,
        port: Number(port),
        username: role.name,
        password: role.password,
        dbname: database,
        ...extra,
      });
    secrets.set('meter-sync/remote', secret(fx.remote.name, remoteRole));
    secrets.set(`meter-sync/site/${SITE}`, secret(fx.site.name, siteRole, { tenantId: '3' }));
    server = await secretsManagerServer(secrets, requests);
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await fx?.close();
    await remoteRole?.drop();
    await siteRole?.drop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('imports nothing at run time but Node built-ins, and its own tracing file', () => {
    const builtins = new Set(builtinModules);
    // pg asks for these only for its native binding and on Cloudflare Workers, never on Lambda.
    const outside = report.externals.filter(
      (name) =>
        !name.startsWith('node:') && !builtins.has(name) && name !== 'pg-native' && name !== 'pg-cloudflare',
    );
    expect(outside).toEqual(['./xray-tracing']);
    expect(existsSync(join(folder, 'xray-tracing.js'))).toBe(true);
    // The folder it runs from has no node_modules above it.
    for (let dir = folder; dir !== dirname(dir); dir = dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules'))).toBe(false);
    }
  });

  it('stays within its budget of 650 KiB (issue 15); its tracing file, loaded only when it traces, within 128 KiB', () => {
    console.info(`index.js ${report.bytes} bytes, xray-tracing.js ${report.tracing.bytes} bytes`);
    expect(report.bytes).toBeLessThanOrEqual(650 * 1024);
    expect(report.tracing.bytes).toBeLessThanOrEqual(128 * 1024);
  });

  it('runs in plain node: a cold then a warm invocation against the databases, with Secrets Manager over HTTP', async () => {
    // Arrange
    const events = [
      { siteId: SITE },
      { siteId: SITE, entities: ['meter'], dryRun: true },
      { siteId: 'bad site' },
    ];

    // Act
    const { stdout, stderr } = await run(process.execPath, ['runner.js', JSON.stringify(events)], {
      cwd: folder,
      env: {
        PATH: process.env.PATH ?? '',
        ...fakeAwsEnvironment(server),
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        AWS_LAMBDA_FUNCTION_NAME: 'meter-sync',
        REMOTE_SECRET_ID: 'meter-sync/remote',
        SITE_SECRET_PREFIX: 'meter-sync/site/',
      },
    });

    // Assert: three outcomes, in order.
    const lines = stdout.split('\n').filter(Boolean);
    const outcomes = lines
      .filter((line) => line.startsWith('OUTCOME '))
      .map(
        (line) =>
          JSON.parse(line.slice(8)) as { result?: SyncResult; error?: { code: string }; initMs: number },
      );
    expect(outcomes).toHaveLength(3);
    const [cold, warm, bad] = outcomes as [(typeof outcomes)[0], (typeof outcomes)[0], (typeof outcomes)[0]];
    if (!cold.result?.ok) console.log(stdout, stderr);
    expect(cold.result).toMatchObject({ ok: true, status: 'ok', siteId: SITE, tenantId: 3 });
    expect(cold.result!.entities.map((e) => [e.entity, e.inserted])).toEqual([
      ['meter', 8],
      ['register', 10],
      ['device_register', 16],
    ]);
    expect(warm.result).toMatchObject({ ok: true, dryRun: true });
    expect(bad.error).toMatchObject({ code: 'BAD_EVENT' });
    expect(cold.initMs).toBeGreaterThan(0);

    // The rows really arrived, and the secrets were read once (signed requests), then cached.
    expect(await fx.rows('site', 'meter', 'id')).toEqual(
      await fx.rows('remote', 'meter WHERE tenant_id = 3', 'id'),
    );
    expect(requests.map((r) => [r.target, r.signed]).sort()).toEqual([
      ['secretsmanager.GetSecretValue', true],
      ['secretsmanager.GetSecretValue', true],
    ]);
    expect(requests.map((r) => r.secretId).sort()).toEqual(['meter-sync/remote', `meter-sync/site/${SITE}`]);

    // The EMF documents of the cold run: ColdStart once, three entities, one run.
    const documents = metricDocuments(lines);
    expect(documents.filter((d) => 'ColdStart' in d.values)).toHaveLength(1);
    expect(
      documents
        .filter((d) => d.dimensionValues.Entity)
        .map((d) => [d.dimensionValues.Entity, d.values.RowsInserted]),
    ).toEqual([
      ['meter', 8],
      ['register', 10],
      ['device_register', 16],
    ]);
    expect(documents.filter((d) => 'SyncSucceeded' in d.values).map((d) => d.values.SyncSucceeded)).toEqual([
      1,
    ]);

    // Warnings and errors go to stderr (as console.warn and console.error do); the bad event is there.
    const errors = logLines(stderr.split('\n')).filter((l) => l.level === 'ERROR');
    expect(errors).toEqual([
      expect.objectContaining({
        message: 'operation not run',
        error: expect.objectContaining({ code: 'BAD_EVENT' }),
      }),
    ]);

    // And no password anywhere in what the child wrote.
    for (const password of [remoteRole.password, siteRole.password]) {
      expect(stdout).not.toContain(password);
      expect(stderr).not.toContain(password);
    }
  });

  it('with no credentials in its environment, takes them from the container endpoint past the links not bundled', async () => {
    // Arrange: what Lambda gives where it serves the role's credentials over HTTP instead.
    const asked: (string | undefined)[] = [];
    const endpoint = createServer((request, response) => {
      asked.push(request.headers.authorization);
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          AccessKeyId: 'ASIACONTAINEREXAMPLE',
          SecretAccessKey: 'container/secret/EXAMPLEKEY',
          Token: 'container-session-token',
          Expiration: new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        }),
      );
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...withoutKeys } = fakeAwsEnvironment(server);
    const before = requests.length;
    try {
      // Act
      const { stdout } = await run(
        process.execPath,
        ['runner.js', JSON.stringify([{ siteId: SITE, entities: ['meter'], dryRun: true }])],
        {
          cwd: folder,
          env: {
            PATH: process.env.PATH ?? '',
            ...withoutKeys,
            AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/role`,
            AWS_CONTAINER_AUTHORIZATION_TOKEN: 'endpoint-token',
            AWS_LAMBDA_FUNCTION_NAME: 'meter-sync',
            REMOTE_SECRET_ID: 'meter-sync/remote',
            SITE_SECRET_PREFIX: 'meter-sync/site/',
          },
        },
      );

      // Assert: the endpoint was asked once, and both secrets were read with what it gave.
      const outcome = JSON.parse(
        stdout
          .split('\n')
          .find((line) => line.startsWith('OUTCOME '))!
          .slice(8),
      );
      expect(outcome.result).toMatchObject({ ok: true, dryRun: true, siteId: SITE });
      expect(asked).toEqual(['endpoint-token']);
      expect(
        requests
          .slice(before)
          .map((r) => [r.secretId, r.signed])
          .sort(),
      ).toEqual([
        ['meter-sync/remote', true],
        [`meter-sync/site/${SITE}`, true],
      ]);
    } finally {
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it('traced as on Lambda, sends its segments to the X-Ray daemon from the bundle: secrets, connections, phases', async () => {
    // Arrange: what Lambda sets for an actively traced function, and a stand-in for its X-Ray daemon.
    const daemon = await startXrayDaemon();
    try {
      // Act
      const { stdout } = await run(
        process.execPath,
        ['runner.js', JSON.stringify([{ siteId: SITE, entities: ['meter'], dryRun: true }])],
        {
          cwd: folder,
          env: {
            PATH: process.env.PATH ?? '',
            ...fakeAwsEnvironment(server),
            ...TRACING_ENVIRONMENT,
            AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
            _HANDLER: 'index.handler',
            AWS_LAMBDA_FUNCTION_NAME: 'meter-sync',
            AWS_XRAY_DAEMON_ADDRESS: daemon.address,
            _X_AMZN_TRACE_ID: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
            REMOTE_SECRET_ID: 'meter-sync/remote',
            SITE_SECRET_PREFIX: 'meter-sync/site/',
          },
        },
      );
      const outcome = JSON.parse(
        stdout
          .split('\n')
          .find((line) => line.startsWith('OUTCOME '))!
          .slice(8),
      );
      expect(outcome.result).toMatchObject({ ok: true, dryRun: true, siteId: SITE });
      // The process has ended: every datagram it sent has arrived (loopback), or a bounded wait says not.
      for (
        let turn = 0;
        turn < 200 && !daemon.documents.some((d) => d.name === '## index.handler');
        turn += 1
      )
        await new Promise((resolve) => setTimeout(resolve, 10));

      // Assert
      const handlerSegment = daemon.documents.find((d) => d.name === '## index.handler');
      expect(handlerSegment?.annotations).toMatchObject({
        siteId: SITE,
        tenantId: 3,
        action: 'sync',
        ColdStart: true,
      });
      expect(daemon.documents.map((d) => d.name)).toEqual(
        expect.arrayContaining(['secrets', 'connect site', 'connect remote', 'compare meter']),
      );
      for (const password of [remoteRole.password, siteRole.password]) {
        for (const datagram of daemon.datagrams) expect(datagram).not.toContain(password);
      }
    } finally {
      await daemon.close();
    }
  });
});
