/**
 * Where the password of a URL without one comes from, as psql finds it: `PGPASSWORD`, else the
 * password file (`PGPASSFILE`, default `~/.pgpass`, ignored unless only its owner can read it).
 * node-postgres reads the file itself only until version 9; its deprecation notice asks for this
 * callback instead.
 */
import pgpass from 'pgpass';
import { MeterSyncError } from '../errors';

export interface PasswordLookup {
  host?: string;
  port?: number | string;
  database?: string;
  user?: string;
}

/** The password callback node-postgres calls, with the parameters it will connect with, when the server asks. */
export function environmentPassword(
  env: NodeJS.ProcessEnv = process.env,
): (connection: PasswordLookup) => Promise<string | undefined> {
  return (connection) => {
    if (env.PGPASSWORD !== undefined && env.PGPASSWORD !== '') return Promise.resolve(env.PGPASSWORD);
    const lookup = {
      host: connection.host ?? 'localhost',
      port: connection.port ?? 5432,
      database: connection.database ?? connection.user,
      user: connection.user,
    };
    return new Promise((resolve, reject) => {
      pgpass(lookup, (password) => {
        if (password !== undefined) resolve(password);
        // As libpq's "no password supplied", but saying where one is looked for.
        else
          reject(
            new MeterSyncError(
              'AUTHENTICATION_FAILED',
              `the server asks a password for user "${lookup.user}" (database ${lookup.database}) and none was given: put it in the URL, PGPASSWORD or the password file (PGPASSFILE, default ~/.pgpass)`,
            ),
          );
      });
    });
  };
}
