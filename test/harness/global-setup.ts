/**
 * Jest global setup: the command built afresh, and one PostgreSQL server for the whole run,
 * embedded unless TEST_DATABASE_URL names one.
 */
import { type EmbeddedServer, startEmbeddedServer } from '../../lib/db/embedded-server';
import { buildCli } from '../../scripts/build-cli';

declare global {
  // eslint-disable-next-line no-var
  var __METER_SYNC_SERVER__: EmbeddedServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  // The tests that run bin/meter-sync.js run its compiled form: from the sources as they are now,
  // not as they were at the last `npm install`.
  await buildCli();
  if (process.env.TEST_DATABASE_URL) return;
  const server = await startEmbeddedServer({ postgresFlags: ['-c', 'max_connections=300'] });
  globalThis.__METER_SYNC_SERVER__ = server;
  // Workers are started after global setup and inherit this environment.
  process.env.TEST_DATABASE_URL = server.url;
  process.env.TEST_DATABASE_EMBEDDED = '1';
}
