import { LocalCredentials } from '../../lib/credentials';

describe('LocalCredentials', () => {
  const remote = 'postgres://sync:pw@127.0.0.1:5432/remote';

  it('gives the URLs of a known site, without TLS on this machine', async () => {
    const credentials = new LocalCredentials({
      remote,
      sites: { a: { url: 'postgres://s:pw@localhost/site_a', tenantId: 3 } },
    });
    await expect(credentials.load('a')).resolves.toEqual({
      remote: { connectionString: remote, ssl: false },
      site: { connectionString: 'postgres://s:pw@localhost/site_a', ssl: false },
      tenantId: 3,
      version: 'local',
    });
  });

  it('defaults to verify-full for a remote host, and applies the sslmode a URL gives with the meaning libpq gives it (require: encrypted, not verified)', async () => {
    const credentials = new LocalCredentials({
      remote: 'postgres://sync:pw@db.example.com/remote',
      sites: () => ({ url: 'postgres://s:pw@db.example.com/site?sslmode=require', tenantId: 1 }),
    });
    const { remote: remoteTarget, site } = await credentials.load('any');
    expect(remoteTarget).toMatchObject({ ssl: { rejectUnauthorized: true } });
    expect(site).toEqual({
      connectionString: 'postgres://s:pw@db.example.com/site',
      ssl: { rejectUnauthorized: false },
    });
  });

  it('refuses an unknown site with SECRET_NOT_FOUND', async () => {
    const credentials = new LocalCredentials({ remote, sites: {} });
    await expect(credentials.load('toString')).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND' });
  });
});
