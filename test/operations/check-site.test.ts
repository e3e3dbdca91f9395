/**
 * The check operation (DESIGN §4): a preflight that changes nothing. Each check in its ok form on a
 * healthy site, and in its warn or fail form on a site, a remote or a role made wrong for real:
 * write privileges, lossy and impossible column types, missing columns, a failing custom query,
 * missing site privileges, schemas behind and ahead, an empty slice, a held lock, unreachable
 * databases. Real PostgreSQL, login roles that are not superusers.
 */
import { createServer, type Server, connect as tcpConnect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Client, escapeIdentifier } from 'pg';
import { formatCheck } from '../../lib/cli/format-check';
import { LocalCredentials } from '../../lib/credentials';
import { SITE_LOCK_KEY } from '../../lib/db/site-database';
import { tlsOptions } from '../../lib/db/tls';
import { type ColumnType, conversion } from '../../lib/db/type-conversion';
import { deviceRegister, EntityRegistry, meter, register } from '../../lib/entities';
import { type Check, type CheckReport, checkSite, type OperationOptions } from '../../lib/operations';
import { connectChecked, tlsMode } from '../../lib/operations/checks/connection-checks';
import { remoteReadOnlyCheck } from '../../lib/operations/checks/remote-privileges';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import { holdLock } from '../harness/hold-lock';
import { SHIPPED_TABLES, siteContents, tableRows } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { createTestDatabase } from '../harness/test-database';

const SITE = 'plant-7';

const CHECK_NAMES = [
  'remote connection',
  'site connection',
  'site identity',
  'remote read-only',
  'remote privileges',
  'site schema',
  'site tenant',
  'site tables',
  'entity meter',
  'entity register',
  'entity device_register',
  'site privileges',
  'tenant slice',
  'site lock',
];

/** A URL of `url`'s server and database for `role`. */
function as(url: string, role: LoginRole): string {
  const parsed = new URL(url);
  parsed.username = role.name;
  parsed.password = role.password;
  return parsed.toString();
}

function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString();
}

const named = (report: CheckReport, name: string): Check => {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name} in ${report.checks.map((c) => c.name).join(', ')}`);
  return found;
};

const statuses = (report: CheckReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.status]));

/** Every check ok but those given. */
const allOkBut = (others: Record<string, Check['status']>) => ({
  ...Object.fromEntries(CHECK_NAMES.map((n) => [n, 'ok'])),
  ...others,
});

describe('check: a preflight of one site against real PostgreSQL', () => {
  let fx: SyncFixture;
  /** SELECT on the remote tables, nothing more. */
  let remoteRole: LoginRole;
  /** What createLoginRole grants: every privilege on the site tables, TEMPORARY on the database. */
  let siteRole: LoginRole;
  let remoteUrl: string;
  let siteUrl: string;

  beforeEach(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 5, registersPerMeter: 2 });
    await fx.sync();
    [remoteRole, siteRole] = await Promise.all([
      createLoginRole([fx.remote.name]),
      createLoginRole([fx.site.name]),
    ]);
    await fx.remoteClient.query(
      `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM ${escapeIdentifier(remoteRole.name)}`,
    );
    remoteUrl = as(fx.remote.url, remoteRole);
    siteUrl = as(fx.site.url, siteRole);
  });
  afterEach(async () => {
    await fx.close();
    await Promise.all([remoteRole.drop(), siteRole.drop()]);
  });

  const run = (
    urls: { remote?: string; site?: string; tenantId?: number } = {},
    options: OperationOptions = {},
  ) =>
    checkSite(
      new LocalCredentials({
        remote: urls.remote ?? remoteUrl,
        sites: { [SITE]: { url: urls.site ?? siteUrl, tenantId: urls.tenantId ?? 1 } },
      }),
      { siteId: SITE },
      options,
    );

  it('finds a healthy site healthy: every check ok, each saying what it saw, no secret in the report', async () => {
    // Act
    const report = await run();

    // Assert
    expect(report).toMatchObject({ ok: true, siteId: SITE, tenantId: 1, action: 'check' });
    expect(report.checks.map((c) => [c.name, c.status])).toEqual(CHECK_NAMES.map((n) => [n, 'ok']));
    // A packaged server's version says whose build it is: "15.20 (Debian 15.20-0+deb12u1)".
    expect(named(report, 'remote connection').message).toMatch(
      new RegExp(
        `^PostgreSQL \\d[^,]* at 127\\.0\\.0\\.1:\\d+, database ${fx.remote.name} as ${remoteRole.name}; TLS disabled \\(a local host\\)$`,
      ),
    );
    expect(named(report, 'site connection').message).toContain(
      `database ${fx.site.name} as ${siteRole.name}`,
    );
    expect(named(report, 'remote read-only').message).toBe(
      'the remote session is read-only (default_transaction_read_only)',
    );
    expect(named(report, 'remote privileges').message).toBe(
      `the remote role ${remoteRole.name} can write none of the entity tables (meter, register, device_register)`,
    );
    expect(named(report, 'site schema').message).toMatch(/^version \d+, the one this build syncs$/);
    expect(named(report, 'site identity').message).toBe(
      `the site is database ${fx.site.name} of the remote's server, not the remote's database ${fx.remote.name}`,
    );
    expect(named(report, 'site tables').message).toBe('no entity table left to create: nothing to adopt');
    expect(named(report, 'entity register').message).toBe(
      'remote table register has its 9 columns, each of a type its site column takes',
    );
    expect(named(report, 'entity device_register').message).toBe(
      'the remote query returns its 4 columns, each of a type its site column takes',
    );
    expect(named(report, 'site privileges').message).toBe(
      `the site role ${siteRole.name} can read and write meter, register, device_register, sync_run, meter_sync_skipped_row, meter_sync_fingerprint, meter_sync_table_write and create temporary tables`,
    );
    expect(named(report, 'tenant slice').message).toBe('tenant 1: 5 meter, 5 register, 10 device_register');
    expect(named(report, 'site lock').message).toBe('the run lock is free, and the site role can take it');
    expect(report.checks.every((c) => !/[\r\n]/.test(c.message) && c.hint === undefined)).toBe(true);
    const text = JSON.stringify(report);
    expect(text).not.toContain(remoteRole.password);
    expect(text).not.toContain(siteRole.password);
  });

  const remoteContents = async () => {
    const contents = [];
    for (const table of Object.values(SHIPPED_TABLES)) contents.push(await tableRows(fx.remoteClient, table));
    return contents;
  };
  /** Every relation of the site database but the catalogs', temporary ones included. */
  const relations = async () =>
    (
      await fx.siteClient.query<{ name: string }>(
        `SELECT relnamespace::regnamespace::text || '.' || relname AS name FROM pg_class
          WHERE relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)
          ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
  const versions = async () =>
    (await fx.siteClient.query('SELECT * FROM meter_sync_schema_migrations ORDER BY version')).rows;

  it('changes nothing: site rows and sync_run as before, remote rows as before, no table, session or lock left', async () => {
    // Arrange
    const siteBefore = await siteContents(fx.siteClient);
    const remoteBefore = await remoteContents();
    const relationsBefore = await relations();
    const versionsBefore = await versions();

    // Act
    const report = await run();

    // Assert
    expect(report.ok).toBe(true);
    expect(await siteContents(fx.siteClient)).toEqual(siteBefore);
    expect(await remoteContents()).toEqual(remoteBefore);
    expect(await relations()).toEqual(relationsBefore);
    expect(await versions()).toEqual(versionsBefore);
    const { rows: sessions } = await fx.siteClient.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY ($1) AND application_name = 'meter-sync'`,
      [[fx.remote.name, fx.site.name]],
    );
    expect(sessions[0]!.n).toBe(0);
    // Of these two databases: other test files share the server, and their runs take locks.
    const { rows: locks } = await fx.siteClient.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'
         AND database IN (SELECT oid FROM pg_database WHERE datname = ANY ($1))`,
      [[fx.remote.name, fx.site.name]],
    );
    expect(locks[0]!.n).toBe(0);
  });

  it('warns when the remote role could write an entity table, naming table and privilege', async () => {
    // Arrange
    await fx.remoteClient.query(`GRANT INSERT ON register TO ${escapeIdentifier(remoteRole.name)}`);

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'remote privileges': 'warn' }));
    expect(report.ok).toBe(true);
    expect(named(report, 'remote privileges')).toEqual({
      name: 'remote privileges',
      status: 'warn',
      message: `the remote role ${remoteRole.name} can write entity tables: register (INSERT)`,
      hint: `revoke them (least privilege): REVOKE INSERT ON "register" FROM "${remoteRole.name}"`,
    });
  });

  it('warns when the remote role is a superuser', async () => {
    // Act
    const report = await run({ remote: fx.remote.url });

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'remote privileges': 'warn' }));
    expect(named(report, 'remote privileges').message).toMatch(/^the remote role \S+ is a superuser/);
  });

  it('warns of a remote session that is not read-only by default (one opened without meter-sync settings)', async () => {
    // Arrange: connect() always sets default_transaction_read_only; a pooler that drops startup options would not
    const plain = new Client({ connectionString: remoteUrl });
    await plain.connect();

    // Act
    const found = await remoteReadOnlyCheck(plain).finally(() => plain.end());

    // Assert
    expect(found.status).toBe('warn');
    expect(found.message).toContain('default_transaction_read_only is off');
  });

  it('warns of lossy conversions, naming each column: a shorter varchar on the site, a larger scale on the remote', async () => {
    // Arrange
    await fx.remoteClient.query('ALTER TABLE register ALTER COLUMN scale TYPE numeric(20,8)');
    await fx.siteClient.query('ALTER TABLE register ALTER COLUMN unit TYPE varchar(2) USING left(unit, 2)');

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'entity register': 'warn' }));
    expect(report.ok).toBe(true);
    expect(named(report, 'entity register')).toEqual({
      name: 'entity register',
      status: 'warn',
      message:
        'register.unit: text to character varying(2): a value longer than 2 characters is refused; ' +
        'register.scale: numeric(20,8) to numeric(18,6): a value is rounded to 6 decimal places',
      hint: 'widen the site column (or narrow the remote one) to keep every value',
    });
  });

  it('fails a remote type whose values the site column cannot take (jsonb into integer)', async () => {
    // Arrange
    await fx.remoteClient.query(
      'ALTER TABLE register ALTER COLUMN address TYPE jsonb USING to_jsonb(address)',
    );

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'entity register': 'fail' }));
    expect(report.ok).toBe(false);
    expect(named(report, 'entity register').message).toBe(
      'register.address: jsonb to integer: a jsonb value is not integer input: no conversion',
    );
  });

  it('fails a remote table without a column the entity names; the slice counts the other entities', async () => {
    // Arrange
    await fx.remoteClient.query('ALTER TABLE register DROP COLUMN description');

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'entity register': 'fail' }));
    expect(named(report, 'entity register').message).toBe('remote table register has no column description');
    expect(named(report, 'tenant slice').message).toBe(
      'tenant 1: 5 meter, register not counted, 10 device_register',
    );
  });

  it.each([
    {
      what: 'names a column the remote lacks',
      query: `SELECT dr.device_id, dr.register_id, dr.poll_interval_s, dr.enabled
        FROM device_register dr JOIN meter m ON m.id = dr.device_id WHERE m.tenant = $1`,
      message: /^the remote query fails: column m\.tenant does not exist/,
    },
    {
      what: 'returns too few columns',
      query: `SELECT dr.device_id, dr.register_id, dr.enabled
        FROM device_register dr JOIN meter m ON m.id = dr.device_id WHERE m.tenant_id = $1`,
      message: /^the remote query returns no column poll_interval_s$/,
    },
  ])('fails a custom remote query that $what', async ({ query, message }) => {
    // Arrange
    const registry = new EntityRegistry([meter, register, { ...deviceRegister, remoteQuery: query }]);

    // Act
    const report = await run({}, { registry });

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'entity device_register': 'fail' }));
    expect(named(report, 'entity device_register').message).toMatch(message);
    expect(named(report, 'entity device_register').hint).toContain('run the query on the remote');
  });

  it('fails a site table without a column, or without a unique key for the upserts', async () => {
    // Arrange
    await fx.siteClient.query('ALTER TABLE register DROP COLUMN description');
    await fx.siteClient.query('ALTER TABLE device_register DROP CONSTRAINT device_register_pkey');

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(
      allOkBut({ 'entity register': 'fail', 'entity device_register': 'fail' }),
    );
    expect(named(report, 'entity register').message).toBe('site table register has no column description');
    expect(named(report, 'entity device_register').message).toBe(
      'site table device_register has no primary key or unique index on (device_id, register_id)',
    );
  });

  it('fails a site role without TEMPORARY on the database or DELETE on a table, with the grants that mend it', async () => {
    // Arrange
    const role = escapeIdentifier(siteRole.name);
    const database = escapeIdentifier(fx.site.name);
    await fx.siteClient.query(`REVOKE TEMPORARY ON DATABASE ${database} FROM PUBLIC`);
    await fx.siteClient.query(`REVOKE TEMPORARY ON DATABASE ${database} FROM ${role}`);
    await fx.siteClient.query(`REVOKE DELETE ON register FROM ${role}`);

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'site privileges': 'fail' }));
    expect(named(report, 'site privileges')).toEqual({
      name: 'site privileges',
      status: 'fail',
      message: `the site role ${siteRole.name} lacks DELETE on register; TEMPORARY on database ${fx.site.name}`,
      hint: `GRANT DELETE ON "register" TO ${role}; GRANT TEMPORARY ON DATABASE ${database} TO ${role}`,
    });
  });

  it('warns of a site not migrated yet (and fails its role without CREATE), creating nothing', async () => {
    // Arrange
    const empty = await createTestDatabase('site_new');
    const newRole = await createLoginRole([empty.name]);
    const url = as(empty.url, newRole);
    const admin = new Client({ connectionString: empty.url });
    await admin.connect();
    try {
      // Act
      const withoutCreate = await run({ site: url });
      await admin.query(`GRANT CREATE ON SCHEMA public TO ${escapeIdentifier(newRole.name)}`);
      const withCreate = await run({ site: url });

      // Assert
      expect(statuses(withoutCreate)).toEqual(allOkBut({ 'site schema': 'warn', 'site privileges': 'fail' }));
      expect(named(withoutCreate, 'site privileges').message).toBe(
        `the site role ${newRole.name} lacks CREATE on schema public (the migration creates tables)`,
      );
      expect(statuses(withCreate)).toEqual(allOkBut({ 'site schema': 'warn' }));
      expect(withCreate.ok).toBe(true);
      expect(named(withCreate, 'site schema')).toEqual({
        name: 'site schema',
        status: 'warn',
        message: expect.stringMatching(
          /^no meter-sync schema \(version 0\), this build syncs version \d+ \[SITE_NOT_MIGRATED\]$/,
        ),
        hint: 'the next sync migrates it (SITE_MIGRATIONS=auto), or run `meter-sync migrate`',
      });
      expect(named(withCreate, 'entity meter').message).toBe(
        'remote table meter has its 10 columns; site types not checked: site schema behind',
      );
      expect(named(withCreate, 'site tables').message).toBe(
        'none of meter, register, device_register is there yet: the migration creates them',
      );
      expect(named(withCreate, 'site privileges').message).toBe(
        `the site role ${newRole.name} can create temporary tables and create tables in schema public`,
      );
      const { rows } = await admin.query(
        `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
      );
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
      await newRole.drop();
      await empty.drop();
    }
  });

  it('fails a site schema newer than this build', async () => {
    // Arrange
    await fx.siteClient.query(
      `INSERT INTO meter_sync_schema_migrations (version, name) VALUES (99, 'from the future')`,
    );

    // Act
    const report = await run();

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'site schema': 'fail' }));
    expect(report.ok).toBe(false);
    expect(named(report, 'site schema').message).toMatch(
      /^version 99, newer than the \d+ this build knows \[SITE_SCHEMA_NEWER\]/,
    );
    expect(named(report, 'site schema').hint).toContain('deploy the newer meter-sync build');
  });

  it('warns of an empty tenant slice, and fails a tenant other than the one the site is bound to (a wrong tenant id)', async () => {
    // Act
    const report = await run({ tenantId: 9 });

    // Assert
    expect(statuses(report)).toEqual(allOkBut({ 'tenant slice': 'warn', 'site tenant': 'fail' }));
    expect(report.ok).toBe(false);
    expect(report.tenantId).toBe(9);
    expect(named(report, 'site tenant')).toEqual({
      name: 'site tenant',
      status: 'fail',
      message: 'bound to tenant 1, not 9 [TENANT_MISMATCH]: a run would refuse to replace its rows',
      hint: 'check the tenant id (the site secret, --tenant); to re-bind the site on purpose, sync with --allow-tenant-change (and --allow-mass-delete)',
    });
    expect(named(report, 'tenant slice')).toEqual({
      name: 'tenant slice',
      status: 'warn',
      message: 'tenant 9: 0 meter, 0 register, 0 device_register: the tenant has no rows on the remote',
      hint: 'check the tenant id in the site secret: a wrong tenant id would meet only the mass-delete guard',
    });
  });

  it('warns of a held run lock, naming the session that holds it', async () => {
    // Arrange
    // As a run would: a session of the site role, whose own sessions the role sees in full.
    const held = await holdLock(siteUrl, `SELECT pg_advisory_lock(${SITE_LOCK_KEY})`);
    try {
      const { rows } = await fx.siteClient.query<{ pid: number }>(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = $1)`,
        [fx.site.name],
      );
      const holder = rows[0]!.pid;

      // Act
      const report = await run();

      // Assert
      expect(statuses(report)).toEqual(allOkBut({ 'site lock': 'warn' }));
      expect(named(report, 'site lock').message).toMatch(
        new RegExp(
          `^the run lock is held by pid ${holder} \\(user ${siteRole.name}, idle in transaction\\) since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\+00 \\(\\d+ s\\): a run is at work on the site now$`,
        ),
      );
    } finally {
      await held.release();
    }
  });

  it('fails an unreachable site, and every site check as not checked; the remote is still checked', async () => {
    // Act
    const report = await run({ site: withPort(siteUrl, 1) });

    // Assert
    const notChecked = 'not checked: the site database could not be reached';
    expect(report.ok).toBe(false);
    expect(statuses(report)).toEqual(
      allOkBut({
        'site connection': 'fail',
        'site identity': 'fail',
        'site schema': 'fail',
        'site tenant': 'fail',
        'site tables': 'fail',
        'entity meter': 'fail',
        'entity register': 'fail',
        'entity device_register': 'fail',
        'site privileges': 'fail',
        'site lock': 'fail',
      }),
    );
    expect(named(report, 'site connection').message).toMatch(
      new RegExp(
        `^nothing accepts connections at 127\\.0\\.0\\.1:1 \\(the site database\\).* \\[CONNECTION_REFUSED\\] \\(127\\.0\\.0\\.1:1, database ${fx.site.name}, user ${siteRole.name}\\)$`,
      ),
    );
    for (const name of [
      'site identity',
      'site schema',
      'site tables',
      'entity meter',
      'site privileges',
      'site lock',
    ])
      expect(named(report, name).message).toBe(notChecked);
    expect(JSON.stringify(report)).not.toContain(siteRole.password);
  });

  it('fails an unreachable remote, and every remote check as not checked; the site is still checked', async () => {
    // Act
    const report = await run({ remote: withPort(remoteUrl, 1) });

    // Assert
    expect(statuses(report)).toEqual(
      allOkBut({
        'remote connection': 'fail',
        'site identity': 'fail',
        'remote read-only': 'fail',
        'remote privileges': 'fail',
        'entity meter': 'fail',
        'entity register': 'fail',
        'entity device_register': 'fail',
        'tenant slice': 'fail',
      }),
    );
    expect(named(report, 'tenant slice').message).toBe(
      'not checked: the remote database could not be reached',
    );
    expect(named(report, 'site identity').message).toBe(
      'not checked: the remote database could not be reached',
    );
  });

  it('lets a credentials error propagate, as the other operations do', async () => {
    // Act
    const checking = checkSite(new LocalCredentials({ remote: remoteUrl, sites: {} }), { siteId: 'nowhere' });

    // Assert
    await expect(checking).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND' });
  });
});

/** A plain TCP relay on one of this machine's own non-loopback addresses to a loopback port. */
async function relayFrom(host: string, port: number): Promise<Server> {
  const server = createServer((socket) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

const externalAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
const withExternalAddress = externalAddress ? it : it.skip;

describe('connection checks: TLS', () => {
  it('reads the TLS mode off the target, as tls.ts builds it', () => {
    // Arrange
    const target = (sslmode: 'disable' | 'require' | 'verify-ca' | 'verify-full') => ({
      host: 'db.example.com',
      ssl: tlsOptions('db.example.com', sslmode),
    });

    // Act, Assert
    expect(tlsMode(target('disable'))).toBe('disabled');
    expect(tlsMode(target('require'))).toBe('required (certificate not verified)');
    expect(tlsMode(target('verify-ca'))).toBe('verify-ca');
    expect(tlsMode(target('verify-full'))).toBe('verify-full');
    expect(tlsMode('postgres://u@localhost/db')).toBe('disabled');
    expect(tlsMode('postgres://u@db.example.com/db?sslmode=disable')).toBe('disabled');
  });

  withExternalAddress('warns of a session in clear text to a host that is not this machine', async () => {
    // Arrange
    const fx = await createSyncFixture(1);
    const url = new URL(fx.remote.url);
    const relay = await relayFrom(externalAddress!, Number(url.port));
    const port = (relay.address() as { port: number }).port;
    try {
      // Act
      const connection = await connectChecked(
        {
          host: externalAddress!,
          port,
          user: decodeURIComponent(url.username),
          password: decodeURIComponent(url.password),
          database: fx.remote.name,
          ssl: false,
        },
        'remote',
        {},
      );
      if ('client' in connection) await connection.client.end();

      // Assert
      expect(connection.check).toMatchObject({
        name: 'remote connection',
        status: 'warn',
        message: expect.stringMatching(
          new RegExp(
            `at ${externalAddress!.replace(/\./g, '\\.')}:${port}, .*; not encrypted: TLS disabled for a host that is not this machine$`,
          ),
        ),
        hint: 'use sslmode=verify-full (the default for such a host) in the secret or URL',
      });
    } finally {
      await new Promise((resolve) => relay.close(resolve));
      await fx.close();
    }
  });
});

describe('type conversions, remote to site', () => {
  const type = (text: string, base: string, category: string, typmod = -1): ColumnType => ({
    type: text,
    base,
    typmod,
    category,
  });
  const integer = type('integer', 'integer', 'N');
  const bigint = type('bigint', 'bigint', 'N');
  const smallint = type('smallint', 'smallint', 'N');
  const numeric = type('numeric', 'numeric', 'N');
  const numeric186 = type('numeric(18,6)', 'numeric', 'N', (18 << 16) + 6 + 4);
  const text = type('text', 'text', 'S');
  const varchar2 = type('character varying(2)', 'character varying', 'S', 6);
  const varchar5 = type('character varying(5)', 'character varying', 'S', 9);
  const timestamptz = type('timestamp with time zone', 'timestamp with time zone', 'D');
  const timestamp = type('timestamp without time zone', 'timestamp without time zone', 'D');
  const json = type('json', 'json', 'U');
  const jsonb = type('jsonb', 'jsonb', 'U');
  const double = type('double precision', 'double precision', 'N');
  const real = type('real', 'real', 'N');
  const kind = type('meter_kind', 'meter_kind', 'E');

  it.each([
    ['integer', 'bigint', 'ok', integer, bigint],
    ['bigint', 'integer', 'warn', bigint, integer],
    ['integer', 'smallint', 'warn', integer, smallint],
    ['integer', 'numeric(18,6)', 'ok', integer, numeric186],
    ['numeric', 'numeric(18,6)', 'warn', numeric, numeric186],
    ['numeric(18,6)', 'numeric', 'ok', numeric186, numeric],
    ['double precision', 'real', 'warn', double, real],
    ['real', 'double precision', 'ok', real, double],
    ['timestamptz', 'timestamp', 'warn', timestamptz, timestamp],
    ['timestamp', 'timestamptz', 'ok', timestamp, timestamptz],
    ['jsonb', 'json', 'ok', jsonb, json],
    ['json', 'jsonb', 'warn', json, jsonb],
    ['text', 'varchar(2)', 'warn', text, varchar2],
    ['varchar(2)', 'varchar(5)', 'ok', varchar2, varchar5],
    ['varchar(5)', 'varchar(2)', 'warn', varchar5, varchar2],
    ['an enum', 'text', 'ok', kind, text],
    ['text', 'integer', 'warn', text, integer],
    ['jsonb', 'integer', 'fail', jsonb, integer],
    ['timestamptz', 'jsonb', 'fail', timestamptz, jsonb],
  ] as const)('%s to %s: %s', (_from, _to, status, remote, site) => {
    // Act, Assert
    expect(conversion(remote, site).status).toBe(status);
  });
});

describe('formatCheck', () => {
  it('prints a header, one aligned line per check, and each hint indented below its check', () => {
    // Arrange
    const report: CheckReport = {
      ok: false,
      siteId: 'plant-7',
      tenantId: 3,
      action: 'check',
      durationMs: 12,
      checks: [
        { name: 'remote read-only', status: 'ok', message: 'the remote session is read-only' },
        { name: 'tenant slice', status: 'warn', message: 'tenant 3: 0 meter', hint: 'check the tenant id' },
        { name: 'site schema', status: 'fail', message: 'version 99', hint: 'deploy the newer build' },
      ],
    };

    // Act
    const text = formatCheck(report);

    // Assert
    expect(text).toBe(
      [
        'meter-sync check · site plant-7 · tenant 3 · fail',
        'ok    remote read-only  the remote session is read-only',
        'warn  tenant slice      tenant 3: 0 meter',
        '      hint: check the tenant id',
        'FAIL  site schema       version 99',
        '      hint: deploy the newer build',
      ].join('\n'),
    );
    expect(formatCheck({ ...report, ok: true, siteId: undefined, checks: [] })).toBe(
      'meter-sync check · tenant 3 · ok',
    );
  });
});
