/**
 * How the CLI reaches a site (issue 13 §2): by site id through the function's own secrets (a
 * loopback Secrets Manager, reached by the SDK's endpoint setting, signed with fake credentials),
 * or by URLs whose passwords come from PGPASSWORD or a password file, never from the command line.
 * Each run is the installed command in a child process, with an environment of its own.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import { LATEST_SITE_SCHEMA_VERSION } from '../../lib/db/site-migrations';
import type { SyncResult } from '../../lib/engine';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import {
  fakeAwsEnvironment,
  type SecretRequest,
  secretsManagerServer,
} from '../harness/secrets-manager-server';
import { expectedSlice, siteContents } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import {
  createTestDatabase,
  databaseUrl,
  serverChecksPasswords,
  serverUrl,
  type TestDatabase,
} from '../harness/test-database';

const BIN = join(__dirname, '..', '..', 'bin', 'meter-sync.js');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command with exactly `env` (and PATH): nothing leaks in from the test's own environment. */
function meterSync(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env } },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A URL of the test server for `role` on `database`, without its password. */
function urlWithoutPassword(database: string, role: LoginRole): string {
  const url = new URL(databaseUrl(database));
  url.username = role.name;
  url.password = '';
  return url.toString();
}

/** An empty database the role owns, as a new site's database is its application's. */
async function emptySiteOwnedBy(role: LoginRole): Promise<TestDatabase> {
  const site = await createTestDatabase('cli_new_site');
  const admin = new Client({ connectionString: site.url });
  await admin.connect();
  try {
    await admin.query(
      `ALTER DATABASE ${escapeIdentifier(site.name)} OWNER TO ${escapeIdentifier(role.name)}`,
    );
    await admin.query(`ALTER SCHEMA public OWNER TO ${escapeIdentifier(role.name)}`);
  } finally {
    await admin.end();
  }
  return site;
}

describe('meter-sync by site id, through the function secrets', () => {
  let fx: SyncFixture;
  let role: LoginRole;
  let site: TestDatabase;
  let server: Server;
  let requests: SecretRequest[];
  const secrets = new Map<string, string>();
  let awsEnv: NodeJS.ProcessEnv;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 4, registersPerTenant: 6, registersPerMeter: 2 });
    role = await createLoginRole([fx.remote.name]);
    site = await emptySiteOwnedBy(role);
    const { hostname, port } = new URL(serverUrl());
    const secret = (database: string, extra: object = {}) =>
      JSON.stringify({
        host: hostname,
        port: Number(port),
        username: role.name,
        password: role.password,
        dbname: database,
        ...extra,
      });
    secrets.set('meter-sync/remote', secret(fx.remote.name));
    secrets.set('meter-sync/site/plant-7', secret(site.name, { tenantId: 2 }));
    secrets.set('other/remote', secret(fx.remote.name));
    secrets.set('other/plant-7', secret(site.name, { tenantId: 1 }));
    requests = [];
    server = await secretsManagerServer(secrets, requests);
    awsEnv = {
      ...fakeAwsEnvironment(server),
      // The SDK's notice that it will leave Node.js 20 (the machine's) behind, not this test's subject.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      REMOTE_SECRET_ID: 'meter-sync/remote',
      SITE_SECRET_PREFIX: 'meter-sync/site/',
    };
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await site.drop();
    await fx.close();
    await role.drop();
  });
  beforeEach(() => {
    requests.length = 0;
  });

  it('migrate --site-id reads both secrets (the remote to tell the site is not it) and migrates the site it names', async () => {
    // Act
    const out = await meterSync(['migrate', '--site-id', 'plant-7'], awsEnv);

    // Assert
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(
      new RegExp(`^site schema migrated from version 0 to ${LATEST_SITE_SCHEMA_VERSION}: `),
    );
    expect(requests.map((r) => r.secretId).sort()).toEqual(['meter-sync/remote', 'meter-sync/site/plant-7']);
    expect(requests.every((r) => r.target === 'secretsmanager.GetSecretValue' && r.signed)).toBe(true);
  });

  it('sync --site-id loads both secrets, takes the tenant from the site secret, and syncs', async () => {
    // Act
    const out = await meterSync(['sync', '--site-id', 'plant-7', '--json'], awsEnv);

    // Assert
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout) as SyncResult;
    expect(result).toMatchObject({ ok: true, siteId: 'plant-7', tenantId: 2 });
    expect(requests.map((r) => r.secretId).sort()).toEqual(['meter-sync/remote', 'meter-sync/site/plant-7']);
    expect(requests.every((r) => r.signed)).toBe(true);
    const client = new Client({ connectionString: site.url });
    await client.connect();
    try {
      const { sync_run_count: _runs, ...contents } = await siteContents(client);
      expect(contents).toEqual(await expectedSlice(fx.remoteClient, 2));
    } finally {
      await client.end();
    }
    expect(`${out.stdout}${out.stderr}`).not.toContain(role.password);
  });

  it('--remote-secret and --site-secret-prefix override the environment', async () => {
    // Act: the other secrets name tenant 1 for a site bound to tenant 2: refused, then shown on
    // purpose by a dry run that re-binds it (without making the switch).
    const argv = [
      'sync',
      '--site-id',
      'plant-7',
      '--remote-secret',
      'other/remote',
      '--site-secret-prefix',
      'other/',
      '--dry-run',
      '--json',
      '--allow-mass-delete',
    ];
    const refused = await meterSync(argv, awsEnv);
    const out = await meterSync([...argv, '--allow-tenant-change'], awsEnv);

    // Assert
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: { code: 'TENANT_MISMATCH' } });
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({
      ok: true,
      tenantId: 1,
      dryRun: true,
      tenantChange: { fromTenantId: 2, toTenantId: 1 },
    });
    expect(requests.map((r) => r.secretId).sort()).toEqual([
      'other/plant-7',
      'other/plant-7',
      'other/remote',
      'other/remote',
    ]);
  });

  it('a site without a secret is one line, exit 2: configuration, not a passing fault', async () => {
    const out = await meterSync(['sync', '--site-id', 'plant-404'], awsEnv);
    expect(out).toEqual({
      code: 2,
      stdout: '',
      stderr: 'meter-sync: [SECRET_NOT_FOUND] secret "meter-sync/site/plant-404" does not exist\n',
    });
  });

  it.each([
    [
      ['sync', '--site-id', 'plant-7', '--site', 'postgres://h/d'],
      "--site-id takes the site's connection from its secret: leave out --site",
    ],
    [
      ['sync', '--site-id', 'plant-7', '--remote', 'postgres://h/d', '--tenant', '1'],
      "--site-id takes the site's connection from its secret: leave out --remote, --tenant",
    ],
    [
      ['migrate', '--site-id', 'plant-7', '--site', 'postgres://h/d'],
      "--site-id takes the site's connection from its secret: leave out --site",
    ],
    [
      ['sync', '--site-id', 'plant 7'],
      '--site-id must be 1 to 63 letters, digits, "_" or "-", starting with a letter or digit, not "plant 7"',
    ],
    [
      [
        'sync',
        '--remote-secret',
        'x',
        '--remote',
        'postgres://h/r',
        '--site',
        'postgres://h/s',
        '--tenant',
        '1',
      ],
      '--remote-secret applies only with --site-id',
    ],
  ])('%j is a usage error, exit 2', async (args, message) => {
    const out = await meterSync(args, awsEnv);
    expect(out).toEqual({
      code: 2,
      stdout: '',
      stderr: `meter-sync: ${message} (see \`meter-sync help\`)\n`,
    });
    expect(requests).toEqual([]);
  });

  it('--site-id without the secret ids anywhere says which is missing', async () => {
    const { REMOTE_SECRET_ID: _r, SITE_SECRET_PREFIX: _s, ...bare } = awsEnv;
    expect((await meterSync(['sync', '--site-id', 'plant-7'], bare)).stderr).toBe(
      'meter-sync: --site-id needs the site secret prefix: --site-secret-prefix PREFIX or SITE_SECRET_PREFIX (see `meter-sync help`)\n',
    );
    expect(
      (await meterSync(['sync', '--site-id', 'plant-7', '--site-secret-prefix', 'p/'], bare)).stderr,
    ).toBe(
      'meter-sync: --site-id needs the remote secret: --remote-secret ID or REMOTE_SECRET_ID (see `meter-sync help`)\n',
    );
  });
});

describe('meter-sync by URLs without passwords on the command line', () => {
  let fx: SyncFixture;
  let role: LoginRole;
  let folder: string;
  let remote: string;
  let site: string;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1], metersPerTenant: 3, registersPerTenant: 3, registersPerMeter: 1 });
    role = await createLoginRole([fx.remote.name, fx.site.name]);
    remote = urlWithoutPassword(fx.remote.name, role);
    site = urlWithoutPassword(fx.site.name, role);
    folder = mkdtempSync(join(tmpdir(), 'meter-sync-pgpass-'));
  });
  afterAll(async () => {
    rmSync(folder, { recursive: true, force: true });
    await fx.close();
    await role.drop();
  });

  it('METER_SYNC_REMOTE_URL and METER_SYNC_SITE_URL stand in for --remote and --site', async () => {
    const out = await meterSync(['sync', '--tenant', '1', '--json'], {
      METER_SYNC_REMOTE_URL: fx.remote.url,
      METER_SYNC_SITE_URL: fx.site.url,
    });
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true, tenantId: 1 });
  });

  it('without a site URL anywhere, says where one goes', async () => {
    const out = await meterSync(['sync', '--tenant', '1', '--remote', fx.remote.url]);
    expect(out).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'meter-sync: --site URL (or METER_SYNC_SITE_URL) is required, or --site-id ID (see `meter-sync help`)\n',
    });
  });

  const passwords = serverChecksPasswords() ? it : it.skip;

  passwords('takes the password from PGPASSWORD', async () => {
    const out = await meterSync(['sync', '--remote', remote, '--site', site, '--tenant', '1', '--json'], {
      PGPASSWORD: role.password,
    });
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true });
  });

  passwords('takes the password from the password file (PGPASSFILE), as psql does', async () => {
    // Arrange: a file only its owner reads; another line for another database comes first.
    const file = join(folder, 'pgpass');
    const { hostname, port } = new URL(serverUrl());
    writeFileSync(
      file,
      `${hostname}:${port}:not_this_one:${role.name}:wrong\n${hostname}:${port}:*:${role.name}:${role.password.replace(/[:\\]/g, '\\$&')}\n`,
    );
    chmodSync(file, 0o600);

    // Act
    const out = await meterSync(['sync', '--remote', remote, '--site', site, '--tenant', '1', '--json'], {
      PGPASSFILE: file,
    });
    const migrate = await meterSync(['migrate', '--remote', remote, '--site', site], { PGPASSFILE: file });

    // Assert
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true });
    expect(migrate).toMatchObject({
      code: 0,
      stdout: `site schema already at version ${LATEST_SITE_SCHEMA_VERSION}\n`,
    });
  });

  passwords('without a password anywhere, the refused login is exit 2', async () => {
    const out = await meterSync(['migrate', '--remote', remote, '--site', site], {
      PGPASSFILE: join(folder, 'none'),
    });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(
      /^meter-sync: \[AUTHENTICATION_FAILED\] the site database at 127\.0\.0\.1:\d+: the server asks a password for user "ms_login_\w+" \(database \w+\) and none was given: put it in the URL, PGPASSWORD or the password file/,
    );
    expect(out.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
