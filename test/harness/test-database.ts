/** A fresh database per test file on the run's one server (see global-setup.ts). */
import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';

export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error(
      'TEST_DATABASE_URL is not set: run the tests through jest (global setup starts a server)',
    );
  return url;
}

/** True when the server is the embedded one, whose password authentication is real (not trust). */
export function serverChecksPasswords(): boolean {
  return process.env.TEST_DATABASE_EMBEDDED === '1';
}

export function databaseUrl(name: string, server = serverUrl()): string {
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (client: Client) => Promise<T>, server = serverUrl()): Promise<T> {
  const client = new Client({ connectionString: server });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A fresh database on the run's server, or on `server` (a superuser URL of another one); UTF8
 * unless `encoding` names another (a site database of an older plant, say: LATIN1).
 */
export async function createTestDatabase(
  prefix = 'test',
  server = serverUrl(),
  { encoding = 'UTF8' }: { encoding?: 'UTF8' | 'LATIN1' } = {},
): Promise<TestDatabase> {
  const name = `ms_${prefix}_${randomBytes(5).toString('hex')}`;
  // The C locale goes with every encoding.
  const locale = encoding === 'UTF8' ? '' : ` LC_COLLATE 'C' LC_CTYPE 'C'`;
  await withAdmin(
    (admin) =>
      admin.query(
        `CREATE DATABASE ${escapeIdentifier(name)} TEMPLATE template0 ENCODING '${encoding}'${locale}`,
      ),
    server,
  );
  return {
    name,
    url: databaseUrl(name, server),
    drop: () =>
      withAdmin(
        (admin) => admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`),
        server,
      ).then(() => {}),
  };
}
