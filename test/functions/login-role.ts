/**
 * A login role with its own password on the test server, allowed to sync the given databases: the
 * handler tests put it in their secrets, so a password is distinctive (the log scan can find it)
 * and can be rotated with ALTER ROLE.
 */
import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier, escapeLiteral } from 'pg';
import { databaseUrl, serverUrl } from '../harness/test-database';

export interface LoginRole {
  readonly name: string;
  password: string;
  /** Changes the password on the server, as a Secrets Manager rotation does. */
  rotate(): Promise<string>;
  drop(): Promise<void>;
}

async function admin<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function newPassword(): string {
  return `pw-${randomBytes(12).toString('base64url')}`;
}

export async function createLoginRole(databases: readonly string[]): Promise<LoginRole> {
  const name = `ms_login_${randomBytes(4).toString('hex')}`;
  const role = escapeIdentifier(name);
  let password = newPassword();
  await admin(serverUrl(), (c) => c.query(`CREATE ROLE ${role} LOGIN PASSWORD ${escapeLiteral(password)}`));
  for (const database of databases) {
    await admin(databaseUrl(database), async (c) => {
      await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${escapeIdentifier(database)} TO ${role}`);
      await c.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      await c.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
      await c.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    });
  }
  return {
    name,
    get password() {
      return password;
    },
    set password(value: string) {
      password = value;
    },
    async rotate() {
      password = newPassword();
      await admin(serverUrl(), (c) => c.query(`ALTER ROLE ${role} PASSWORD ${escapeLiteral(password)}`));
      return password;
    },
    async drop() {
      for (const database of databases) {
        await admin(databaseUrl(database), (c) => c.query(`DROP OWNED BY ${role}`)).catch(() => {});
      }
      await admin(serverUrl(), async (c) => {
        // Databases the role made itself (the soak's), left behind by a test that failed midway:
        // dropped here, so that the role can go and the failure is the only error reported.
        const { rows } = await c.query<{ name: string }>(
          'SELECT datname AS name FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)',
          [name],
        );
        for (const { name: database } of rows) {
          await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
        }
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    },
  };
}
