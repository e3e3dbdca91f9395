/**
 * Telling the remote database from a site by what the servers say of themselves (issue 21 §3): the
 * same database through another host name or a proxy is one; another database of the same server
 * is another; where the system identifier is out of reach, the start time tells servers apart.
 */
import { Client } from 'pg';
import {
  readServerIdentity,
  refuseRemoteAsSite,
  type ServerIdentity,
  sameDatabase,
} from '../../lib/db/server-identity';
import { startTcpProxy } from '../harness/tcp-proxy';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

async function identityOf(url: string): Promise<ServerIdentity> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await readServerIdentity(client);
  } finally {
    await client.end();
  }
}

describe('server identity', () => {
  let one: TestDatabase;
  let other: TestDatabase;

  beforeAll(async () => {
    [one, other] = await Promise.all([createTestDatabase('identity_a'), createTestDatabase('identity_b')]);
  });
  afterAll(async () => {
    await Promise.all([one.drop(), other.drop()]);
  });

  it('reads the same identity through another host name and through a TCP proxy, and another for another database', async () => {
    // Arrange
    const url = new URL(one.url);
    const proxy = await startTcpProxy(url.hostname, Number(url.port));
    const alias = new URL(one.url);
    alias.hostname = url.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    try {
      // Act
      const [direct, aliased, proxied, elsewhere] = await Promise.all([
        identityOf(one.url),
        identityOf(alias.toString()),
        identityOf(proxy.via(one.url)),
        identityOf(other.url),
      ]);

      // Assert
      expect(direct).toMatchObject({ systemIdentifier: expect.stringMatching(/^\d+$/), database: one.name });
      expect(aliased).toEqual(direct);
      expect(proxied).toEqual(direct);
      expect(elsewhere.systemIdentifier).toBe(direct.systemIdentifier);
      expect(elsewhere.databaseOid).not.toBe(direct.databaseOid);
      expect(sameDatabase(proxied, direct)).toMatch(
        /^the same database oid \d+ of a server of system identifier \d+$/,
      );
      expect(sameDatabase(elsewhere, direct)).toBeUndefined();
      expect(() => refuseRemoteAsSite(aliased, direct)).toThrow(
        expect.objectContaining({ code: 'SITE_IS_REMOTE' }),
      );
      expect(() => refuseRemoteAsSite(elsewhere, direct)).not.toThrow();
    } finally {
      await proxy.close();
    }
  });

  it('tells servers apart by their system identifier, or by their start time where that cannot be read', () => {
    const a: ServerIdentity = {
      systemIdentifier: '1',
      startedAt: '100.5',
      databaseOid: '16384',
      database: 'central',
    };
    // A replica of the same cluster: the same system identifier and oids, its own start time.
    expect(sameDatabase({ ...a, startedAt: '200.1' }, a)).toBeDefined();
    // Another cluster whose database happens to have the same oid.
    expect(sameDatabase({ ...a, systemIdentifier: '2' }, a)).toBeUndefined();
    // Without a system identifier on one side: the start time.
    expect(sameDatabase({ ...a, systemIdentifier: null }, a)).toMatch(/started at the same instant/);
    expect(sameDatabase({ ...a, systemIdentifier: null, startedAt: '200.1' }, a)).toBeUndefined();
  });
});
