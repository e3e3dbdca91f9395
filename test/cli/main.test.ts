import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { main } from '../../lib/cli/main';
import { parseCommand } from '../../lib/cli/parse-command';
import { LATEST_SITE_SCHEMA_VERSION } from '../../lib/db/site-migrations';
import type { SyncResult } from '../../lib/engine';
import { captureIo } from '../harness/capture-io';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { createTestDatabase, serverChecksPasswords } from '../harness/test-database';

const run = promisify(execFile);
/** The first int32 after the length: an SSLRequest, or a protocol 3.0 StartupMessage. */
const SSL_REQUEST_CODE = 80_877_103;
const PROTOCOL_3 = 196_608;
const BIN = join(__dirname, '..', '..', 'bin', 'meter-sync.js');

describe('meter-sync usage errors', () => {
  /** A sync command complete but for what a case adds (its URLs are never reached). */
  const SYNC = ['sync', '--remote', 'postgres://h/db', '--site', 'postgres://h/s', '--tenant', '1'];

  const cases: [string, string[], RegExp][] = [
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    [
      'missing --site',
      ['sync', '--remote', 'postgres://h/db', '--tenant', '1'],
      /--site URL \(or METER_SYNC_SITE_URL\) is required, or --site-id ID/,
    ],
    [
      'missing --tenant',
      ['sync', '--remote', 'postgres://h/db', '--site', 'postgres://h/s'],
      /--tenant ID is required/,
    ],
    ['bad tenant', [...SYNC.slice(0, -1), '1; drop'], /--tenant must be an integer/],
    ['unknown entity', [...SYNC, '--entities', 'meter,nope'], /unknown entity "nope"/],
    ['unknown option', ['sync', '--remote', 'postgres://h/db', '--fast'], /Unknown option '--fast'/],
    [
      'an option followed by another option instead of its value',
      ['sync', '--remote', 'postgres://h/db', '--site', '--tenant', '1'],
      /^meter-sync: --site needs a value \(see `meter-sync help`\)$/m,
    ],
    [
      'a value starting with a dash is the value, checked as one',
      ['sync', '--remote', 'postgres://h/db', '--site', '-x'],
      /^meter-sync: --site is not a valid URL/m,
    ],
    [
      'a negative tenant',
      [...SYNC.slice(0, -1), '-1'],
      /--tenant must be an integer between 0 and 2147483647, not "-1"/,
    ],
    ...(['--tenant', '--site', '--remote', '--timeout'] as const).map((flag): [string, string[], RegExp] => [
      `${flag} given twice`,
      [
        ...SYNC,
        '--timeout',
        '5',
        flag,
        flag === '--tenant' ? '3' : flag === '--timeout' ? '6' : 'postgres://h/x',
      ],
      new RegExp(`^meter-sync: ${flag} is given more than once`, 'm'),
    ]),
    ['a boolean given twice', [...SYNC, '--dry-run', '--dry-run'], /--dry-run is given more than once/],
    ...['2', '-0.5', 'half', '0.5.1'].map((value): [string, string[], RegExp] => [
      `--max-delete-ratio ${value}`,
      [...SYNC, '--max-delete-ratio', value],
      new RegExp(`--max-delete-ratio must be a share from 0 to 1, such as 0.5, not "${value}"`),
    ]),
    [
      'a flag a command does not take',
      ['migrate', '--remote', 'postgres://h/r', '--site', 'postgres://h/s', '--dry-run'],
      /Unknown option '--dry-run'/,
    ],
    [
      'a migration without the remote',
      ['migrate', '--site', 'postgres://u:hunter2@h/db'],
      /^meter-sync: --remote URL \(or METER_SYNC_REMOTE_URL\) is required, or --site-id ID/,
    ],
    [
      '--allow-tenant-change of a migration by URLs without the tenant',
      ['migrate', '--remote', 'postgres://h/r', '--site', 'postgres://h/s', '--allow-tenant-change'],
      /^meter-sync: --allow-tenant-change needs --tenant ID: the tenant whose rows the site keeps/,
    ],
    [
      'not a postgres URL',
      ['migrate', '--site', 'mysql://root:hunter2@h/db'],
      /--site must be a postgres:\/\//,
    ],
    ['unparsable URL', ['migrate', '--site', 'hunter2 not a url'], /--site is not a valid URL/],
    [
      'an sslmode meter-sync does not know',
      ['migrate', '--site', 'postgres://u:hunter2@h/db?sslmode=bogus'],
      /^meter-sync: --site: sslmode "bogus" is not one of disable, require, verify-ca, verify-full/,
    ],
    [
      'an sslmode that falls back to clear text',
      [...SYNC.slice(0, 2), 'postgres://h/db?sslmode=prefer', ...SYNC.slice(3)],
      /^meter-sync: --remote: sslmode "prefer" falls back to clear text; use one of disable, require, verify-ca, verify-full/,
    ],
    ...['-1', '1,5', '1e3', 'soon', '86401'].map((value): [string, string[], RegExp] => [
      `--timeout ${value}`,
      [...SYNC, '--timeout', value],
      new RegExp(
        `--timeout must be a number of seconds above 0 and at most 86400 \\(0 for none\\), not "${value}"`,
      ),
    ]),
  ];

  it.each(cases)('%s: exit 2 with one line naming the problem', async (_name, argv, pattern) => {
    const io = captureIo();
    expect(await main(argv, io)).toBe(2);
    expect(io.err()).toMatch(pattern);
    expect(io.err().trimEnd().split('\n')).toHaveLength(1);
    expect(io.err()).not.toContain('hunter2');
    expect(io.out()).toBe('');
  });

  it('help prints the usage and exits 0', async () => {
    const io = captureIo();
    expect(await main(['help'], io)).toBe(0);
    expect(io.out()).toContain('--remote URL --site URL --tenant ID');
    expect(io.out()).toContain('--site-id ID [--remote-secret ID] [--site-secret-prefix PREFIX]');
    expect(io.err()).toBe('');
  });

  it('a run without --timeout gets the default deadline, 900 s; --timeout 0 gives none', () => {
    const sync = (...more: string[]) => parseCommand([...SYNC, ...more]) as { timeoutMs?: number };
    expect(sync().timeoutMs).toBe(900_000);
    expect(sync('--timeout', '0').timeoutMs).toBeUndefined();
    expect(sync('--timeout', '2.5').timeoutMs).toBe(2_500);
  });

  it('bare meter-sync prints the usage to stderr and exits 2', async () => {
    const io = captureIo();
    expect(await main([], io)).toBe(2);
    expect(io.err()).toContain('meter-sync <command> --help');
    expect(io.out()).toBe('');
  });

  it.each(['--version', '-V'])('%s prints the version and exits 0', async (flag) => {
    const io = captureIo();
    expect(await main([flag], io)).toBe(0);
    expect(io.out()).toMatch(/^meter-sync \d+\.\d+\.\d+\n$/);
  });

  it.each([
    ['sync', /--dry-run\s+the exact counts of the run/],
    ['migrate', /^usage: meter-sync migrate SITE \[--allow-tenant-change\] \[--json\]$/m],
    ['plan', /--max-changes N\s+rows listed per entity/],
    ['check', /a preflight report/],
    ['demo', /^usage: meter-sync demo$/m],
  ])(
    "meter-sync %s --help prints that command's usage and exits 0, whatever else is given",
    async (command, pattern) => {
      const io = captureIo();
      expect(await main([command, '--tenant', 'x', '--help'], io)).toBe(0);
      expect(io.out()).toMatch(pattern);
      expect(io.out()).toMatch(/^usage: meter-sync /);
      expect(io.err()).toBe('');
    },
  );

  it('the installed bin exits 2 on bad usage, without a stack trace', async () => {
    const failure = await run(process.execPath, [BIN, 'sync', '--tenant', 'x']).catch((e) => e);
    expect(failure.code).toBe(2);
    expect(failure.stderr.trim().split('\n')).toHaveLength(1);
    expect(failure.stderr).not.toMatch(/\n\s+at /);
  });

  it('sslmode=require to a server without TLS: exit 2, one line naming it, and no Node.js warning', async () => {
    // A stand-in server that answers "no TLS" to every connection's request for it.
    const server = createServer((socket) => socket.once('data', () => socket.end('N')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const url = `postgres://u:s3cr3t-pw@127.0.0.1:${port}/db?sslmode=require`;
      const failure = await run(process.execPath, [
        BIN,
        'sync',
        '--remote',
        url,
        '--site',
        url,
        '--tenant',
        '1',
      ]).catch((e) => e);
      expect(failure.code).toBe(2);
      expect(failure.stdout).toBe('');
      expect(failure.stderr).toMatch(
        new RegExp(
          `^meter-sync: run failed: \\[TLS_UNAVAILABLE\\] the site database at 127\\.0\\.0\\.1:${port} does not offer TLS[^\\n]*\\n$`,
        ),
      );
      expect(failure.stderr).not.toMatch(/Warning|s3cr3t-pw/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('the bin refuses a Node.js below the floor, 24, in one line and exits 2', async () => {
    // This Node.js, told it is 22.11.0, as an older one would say.
    const asNode22 = `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '22.11.0' } });
      Object.defineProperty(process, 'version', { value: 'v22.11.0' });
      process.argv.splice(1, 0, 'meter-sync');
      require(${JSON.stringify(BIN)});`;

    const failure = await run(process.execPath, ['-e', asNode22, '--', '--help']).catch((e) => e);

    expect(failure.code).toBe(2);
    expect(failure.stdout).toBe('');
    expect(failure.stderr).toBe(
      'meter-sync: needs Node.js 24 or later; this is v22.11.0 (see the README, "On a fresh machine")\n',
    );
  });

  it('the bin of a checkout never built says how to build it, in one line', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'meter-sync-unbuilt-'));
    try {
      mkdirSync(join(folder, 'bin'));
      copyFileSync(BIN, join(folder, 'bin', 'meter-sync.js'));

      const failure = await run(process.execPath, [join(folder, 'bin', 'meter-sync.js'), '--help']).catch(
        (e) => e,
      );

      expect(failure.code).toBe(2);
      expect(failure.stderr).toBe(
        'meter-sync: not built in this checkout; run `npm run build` (or `npm install`)\n',
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('an unreachable database is exit 1 with one line and no password', async () => {
    const io = captureIo();
    const url = 'postgres://someone:s3cr3t-pw@127.0.0.1:1/nowhere';
    expect(await main(['sync', '--remote', url, '--site', url, '--tenant', '1'], io)).toBe(1);
    expect(io.out() + io.err()).not.toContain('s3cr3t-pw');
    // No entity ran: one line on stderr, no table.
    expect(io.out()).toBe('');
    expect(io.err()).toMatch(
      /^meter-sync: run failed: \[CONNECTION_REFUSED\] nothing accepts connections at 127\.0\.0\.1:1 \(the site database\)[^\n]*\n$/,
    );
  });
});

describe('meter-sync TLS', () => {
  /** This machine's first non-loopback IPv4 address: a host the CLI must not trust in clear text. */
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  const ifAddress = address ? it : it.skip;

  /** The protocol code of each connection's first message to a stand-in server that answers "no TLS". */
  async function firstMessages(
    argv: (port: number) => string[],
    exitCode = 1,
  ): Promise<{ codes: number[]; io: ReturnType<typeof captureIo> }> {
    const codes: number[] = [];
    const server = createServer((socket) => {
      socket.once('data', (chunk) => {
        codes.push(chunk.readInt32BE(4));
        if (chunk.readInt32BE(4) === SSL_REQUEST_CODE) socket.end('N');
        else socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    try {
      const io = captureIo();
      expect(await main(argv((server.address() as AddressInfo).port), io)).toBe(exitCode);
      return { codes, io };
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  ifAddress('asks a host other than this machine for TLS and verifies it, as the Lambda does', async () => {
    const { codes, io } = await firstMessages(
      (port) => [
        'sync',
        '--remote',
        `postgres://u:s3cr3t-pw@${address}:${port}/r`,
        '--site',
        `postgres://u:s3cr3t-pw@${address}:${port}/s`,
        '--tenant',
        '1',
      ],
      2,
    );
    // The run opens both sessions at once: each asked for TLS first.
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes)).toEqual(new Set([SSL_REQUEST_CODE]));
    expect(io.err()).toMatch(/\[TLS_UNAVAILABLE\] the site database at \S+ does not offer TLS/);
    expect(io.out() + io.err()).not.toContain('s3cr3t-pw');
  });

  ifAddress('connects in clear text when the URL says sslmode=disable', async () => {
    const { codes } = await firstMessages((port) => [
      'migrate',
      '--remote',
      `postgres://u:pw@${address}:${port}/r?sslmode=disable`,
      '--site',
      `postgres://u:pw@${address}:${port}/s?sslmode=disable`,
    ]);
    // The migration opens both sessions at once (it compares the site with the remote): neither asked for TLS.
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes)).toEqual(new Set([PROTOCOL_3]));
  });
});

describe('meter-sync sync and migrate against PostgreSQL', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 6, registersPerMeter: 2 });
  });
  afterAll(() => fx.close());
  /** `meter-sync sync` of tenant 1 between the fixture's remote and site, and `more`. */
  const syncArgs = (...more: string[]) => [
    'sync',
    '--remote',
    fx.remote.url,
    '--site',
    fx.site.url,
    '--tenant',
    '1',
    ...more,
  ];

  /** The site URL with one thing changed, as an operator's mistake would. */
  const siteWith = (change: (url: URL) => void) => {
    const url = new URL(fx.site.url);
    change(url);
    return url.toString();
  };

  it.each([
    [
      'a database that does not exist',
      (url: URL) => {
        url.pathname = '/no_such_site';
      },
      2,
      /^meter-sync: run failed: \[DATABASE_NOT_FOUND\] the site database at 127\.0\.0\.1:\d+ has no database "no_such_site"\n$/,
    ],
    [
      'a port where nothing listens',
      (url: URL) => {
        url.port = '1';
      },
      1,
      /^meter-sync: run failed: \[CONNECTION_REFUSED\] nothing accepts connections at 127\.0\.0\.1:1 \(the site database\)/,
    ],
    [
      'a host name that does not resolve',
      (url: URL) => {
        url.hostname = 'site-db.invalid';
      },
      1,
      /^meter-sync: run failed: \[HOST_NOT_FOUND\] the site database's host "site-db\.invalid" does not resolve/,
    ],
  ])(
    '%s: exit %i, one line naming the code, the side and the place',
    async (_mistake, change, exitCode, line) => {
      const io = captureIo();
      const site = siteWith(change);
      expect(await main(['sync', '--remote', fx.remote.url, '--site', site, '--tenant', '1'], io)).toBe(
        exitCode,
      );
      expect(io.out()).toBe('');
      expect(io.err()).toMatch(line);
      expect(io.err().trimEnd().split('\n')).toHaveLength(1);
    },
  );

  it('migrates an empty site and loads it (SITE_MIGRATIONS=auto, the default)', async () => {
    const empty = await createTestDatabase('cli_unmigrated');
    try {
      const io = captureIo();
      const code = await main(['sync', '--remote', fx.remote.url, '--site', empty.url, '--tenant', '1'], io);
      expect(code).toBe(0);
      expect(io.out()).toContain(`site schema migrated from version 0 to ${LATEST_SITE_SCHEMA_VERSION}`);
      expect(io.out()).toMatch(/^meter\s+ok/m);
    } finally {
      await empty.drop();
    }
  });

  it('exits 2 when the site has no meter-sync schema and migrations are manual: configuration, not a passing fault', async () => {
    const empty = await createTestDatabase('cli_unmigrated');
    const saved = process.env.SITE_MIGRATIONS;
    process.env.SITE_MIGRATIONS = 'manual';
    try {
      const io = captureIo();
      const code = await main(['sync', '--remote', fx.remote.url, '--site', empty.url, '--tenant', '1'], io);
      expect(code).toBe(2);
      expect(io.err()).toMatch(/SITE_NOT_MIGRATED.*meter-sync migrate/);
    } finally {
      if (saved === undefined) delete process.env.SITE_MIGRATIONS;
      else process.env.SITE_MIGRATIONS = saved;
      await empty.drop();
    }
  });

  (serverChecksPasswords() ? it : it.skip)('exits 2 when the site refuses the login', async () => {
    const site = new URL(fx.site.url);
    site.password = 'not-the-password';
    const io = captureIo();
    expect(
      await main(['sync', '--remote', fx.remote.url, '--site', site.toString(), '--tenant', '1'], io),
    ).toBe(2);
    expect(io.err()).toMatch(/AUTHENTICATION_FAILED/);
    expect(io.out() + io.err()).not.toContain('not-the-password');
    const migrate = captureIo();
    expect(await main(['migrate', '--remote', fx.remote.url, '--site', site.toString()], migrate)).toBe(2);
    expect(migrate.err()).toMatch(/^meter-sync: \[AUTHENTICATION_FAILED\]/);
  });

  it('migrate adopts a meter table the site already has, and says what it adopted, kept and added', async () => {
    const existing = await createTestDatabase('cli_existing');
    const client = new Client({ connectionString: existing.url });
    await client.connect();
    try {
      // Arrange
      await client.query(`CREATE TABLE meter (
        id bigint PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL, serial_number text,
        protocol text NOT NULL, ip_address text, port integer, active boolean NOT NULL, config jsonb,
        updated_at timestamptz NOT NULL, last_polled_at timestamptz)`);
      const migrate = ['migrate', '--remote', fx.remote.url, '--site', existing.url];

      // Act
      const io = captureIo();
      const code = await main(migrate, io);

      // Assert
      expect(code).toBe(0);
      expect(io.out().split('\n').slice(1)).toEqual([
        'adopted: meter',
        "kept: meter.last_polled_at: a column of the site's own (timestamp with time zone), left alone by every sync",
        'added: table device_register, table meter_sync_fingerprint, table meter_sync_schema_migrations, table meter_sync_site, table meter_sync_skipped_row, table meter_sync_table_write, table register, table sync_run',
        '',
      ]);
      expect(io.err()).toBe('');
    } finally {
      await client.end();
      await existing.drop();
    }
  });

  it('migrate refuses a site that does not fit, or that is the remote: exit 2, one line, nothing changed', async () => {
    const existing = await createTestDatabase('cli_conflict');
    const client = new Client({ connectionString: existing.url });
    await client.connect();
    try {
      // Arrange
      await client.query('CREATE TABLE register (code text PRIMARY KEY)');
      const conflict = captureIo();
      const remote = captureIo();

      // Act
      const conflictCode = await main(
        ['migrate', '--remote', fx.remote.url, '--site', existing.url],
        conflict,
      );
      const remoteCode = await main(['migrate', '--remote', fx.remote.url, '--site', fx.remote.url], remote);

      // Assert
      expect([conflictCode, remoteCode]).toEqual([2, 2]);
      expect(conflict.err()).toMatch(
        /^meter-sync: \[SITE_SCHEMA_CONFLICT\] the site's tables do not fit the site schema, so nothing was changed: register\.id: missing/,
      );
      expect(remote.err()).toMatch(
        /^meter-sync: \[SITE_IS_REMOTE\] the site database is the remote database/,
      );
      for (const io of [conflict, remote]) {
        expect(io.out()).toBe('');
        expect(io.err().trimEnd().split('\n')).toHaveLength(1);
      }
      const { rows } = await client.query(
        `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`,
      );
      expect(rows).toEqual([{ relname: 'register' }]);
    } finally {
      await client.end();
      await existing.drop();
    }
  });

  it('migrate is idempotent', async () => {
    const io = captureIo();
    expect(await main(['migrate', '--remote', fx.remote.url, '--site', fx.site.url], io)).toBe(0);
    expect(io.out()).toBe(`site schema already at version ${LATEST_SITE_SCHEMA_VERSION}\n`);
  });

  it('sync --json prints the result object and exits 0', async () => {
    const io = captureIo();
    const code = await main(syncArgs('--timeout', '60', '--json'), io);
    expect(code).toBe(0);
    const result = JSON.parse(io.out()) as SyncResult;
    expect(result.status).toBe('ok');
    expect(result.entities.map((e) => [e.entity, e.inserted])).toEqual([
      ['meter', 5],
      ['register', 6],
      ['device_register', 10],
    ]);
  });

  it('human output is a per-entity table; --dry-run writes nothing', async () => {
    await fx.remoteClient.query(`UPDATE register SET unit = 'MWh' WHERE tenant_id = 1`);
    const io = captureIo();
    const code = await main(syncArgs('--dry-run', '--entities', 'register'), io);
    expect(code).toBe(0);
    const lines = io.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/tenant 1 · DRY RUN \(nothing written\) · ok/);
    expect(lines[1]).toMatch(
      /^entity\s+status\s+remote\s+inserted\s+updated\s+deleted\s+skipped\s+unchanged\s+ms$/,
    );
    expect(lines[2]).toMatch(/^register\s+ok\s+6\s+0\s+6\s+0\s+0\s+0\s+\d+$/);
    expect(lines).toHaveLength(3);
    const { rows } = await fx.siteClient.query(`SELECT count(*)::int AS n FROM register WHERE unit = 'MWh'`);
    expect(rows[0].n).toBe(0);
  });

  it('exits 1 when the site is locked by another run', async () => {
    const holder = new Client({ connectionString: fx.site.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(7305818813071261000)');
      const io = captureIo();
      const code = await main(syncArgs(), io);
      expect(code).toBe(1);
      expect(io.out()).toBe('');
      expect(io.err()).toMatch(/^meter-sync: run locked: \[SITE_LOCKED\]/);
      // With --json the result is still the whole of stdout, and the error line still on stderr.
      const json = captureIo();
      expect(await main([...syncArgs(), '--json'], json)).toBe(1);
      expect(JSON.parse(json.out())).toMatchObject({ status: 'locked', error: { code: 'SITE_LOCKED' } });
      expect(json.err()).toMatch(/^meter-sync: run locked: \[SITE_LOCKED\][^\n]*\n$/);
    } finally {
      await holder.end();
    }
  });

  it('exits 1 and names the failed entity when the site rejects a row', async () => {
    await fx.siteClient.query(
      "ALTER TABLE register ADD CONSTRAINT unit_not_mwh CHECK (unit IS DISTINCT FROM 'MWh')",
    );
    try {
      const io = captureIo();
      const code = await main(syncArgs(), io);
      expect(code).toBe(1);
      expect(io.out()).toMatch(/^register\s+failed/m);
      expect(io.err()).toMatch(
        /^meter-sync: register failed: \[SITE_REJECTED_ROW\].*unit_not_mwh.*\(key id=\d+\)$/m,
      );
    } finally {
      await fx.siteClient.query('ALTER TABLE register DROP CONSTRAINT unit_not_mwh');
    }
  });

  it('--timeout ends a run that waits, rolled back, exit 1', async () => {
    // Arrange: the remote changed, and the site's register table is locked by another session.
    await fx.remoteClient.query(`UPDATE register SET unit = 'GWh' WHERE tenant_id = 1`);
    const holder = new Client({ connectionString: fx.site.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE register IN ACCESS EXCLUSIVE MODE');
      const io = captureIo();
      const started = Date.now();

      // Act
      const code = await main(syncArgs('--timeout', '0.5'), io);

      // Assert: ended at its deadline (cancelled, with a slack for a slow machine), nothing written.
      expect(code).toBe(1);
      expect(io.err()).toMatch(/DEADLINE_EXCEEDED/);
      expect(Date.now() - started).toBeLessThan(500 + 3_000);
    } finally {
      await holder.end();
    }
    const { rows } = await fx.siteClient.query(`SELECT count(*)::int AS n FROM register WHERE unit = 'GWh'`);
    expect(rows[0].n).toBe(0);
  });
});
