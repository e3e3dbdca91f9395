/** A remote and a site database on the test server, with the reference schema, migrations and helpers to inspect them. */
import { Client } from 'pg';
import { createRemoteSchema } from '../../lib/db/remote-schema';
import { type Row, TEXT_TYPES } from '../../lib/db/rows';
import { applySiteMigrations } from '../../lib/db/site-migrations';
import { performSync, type SyncOptions, type SyncResult } from '../../lib/engine';
import { type SeedOptions, seedRemote } from '../../lib/seed/seed-remote';
import { createTestDatabase, type TestDatabase } from './test-database';

export interface SyncFixture {
  readonly remote: TestDatabase;
  readonly site: TestDatabase;
  /** Open admin connections for arranging and asserting. */
  readonly remoteClient: Client;
  readonly siteClient: Client;
  seed(options: SeedOptions): Promise<void>;
  sync(options?: Partial<SyncOptions>): Promise<SyncResult>;
  /** All rows of a table as server text, ordered by the given columns. */
  rows(side: 'remote' | 'site', table: string, orderBy: string): Promise<Row[]>;
  close(): Promise<void>;
}

/** A client of a test database, with the session settings the tests read server text under. */
export async function openTestClient(url: string): Promise<Client> {
  const client = new Client({
    connectionString: url,
    options: '-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3',
  });
  await client.connect();
  return client;
}

/** `remoteServer`: put the remote on another server (e.g. another PostgreSQL version) than the site. */
export async function createSyncFixture(tenantId = 1, remoteServer?: string): Promise<SyncFixture> {
  const [remote, site] = await Promise.all([
    createTestDatabase('remote', remoteServer),
    createTestDatabase('site'),
  ]);
  const [remoteClient, siteClient] = await Promise.all([
    openTestClient(remote.url),
    openTestClient(site.url),
  ]);
  await createRemoteSchema(remoteClient);
  await applySiteMigrations(siteClient);
  return {
    remote,
    site,
    remoteClient,
    siteClient,
    async seed(options) {
      await seedRemote(remoteClient, options);
    },
    sync(options = {}) {
      return performSync({ remote: remote.url, site: site.url, tenantId, ...options });
    },
    async rows(side, table, orderBy) {
      const client = side === 'remote' ? remoteClient : siteClient;
      const { rows } = await client.query<Row>({
        text: `SELECT * FROM ${table} ORDER BY ${orderBy}`,
        types: TEXT_TYPES,
      });
      return rows;
    },
    async close() {
      await Promise.all([remoteClient.end(), siteClient.end()]);
      await Promise.all([remote.drop(), site.drop()]);
    },
  };
}
