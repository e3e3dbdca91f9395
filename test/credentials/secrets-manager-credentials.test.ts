import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { SecretsManagerCredentials } from '../../lib/credentials';

const REMOTE = 'meter-sync/remote';
const PREFIX = 'meter-sync/site/';
const secretsManager = mockClient(SecretsManagerClient);

function rds(password: string, extra: object = {}): string {
  return JSON.stringify({
    host: 'db.example.com',
    port: 5432,
    username: 'sync',
    password,
    dbname: 'x',
    ...extra,
  });
}

function reads(secretId?: string): number {
  return secretsManager
    .commandCalls(GetSecretValueCommand)
    .filter((call) => secretId === undefined || call.args[0].input.SecretId === secretId).length;
}

function source(options: { ttlSeconds?: number; now?: () => number } = {}): SecretsManagerCredentials {
  return new SecretsManagerCredentials({
    client: new SecretsManagerClient({ region: 'eu-west-1' }),
    remoteSecretId: REMOTE,
    siteSecretPrefix: PREFIX,
    ...options,
  });
}

beforeEach(() => {
  secretsManager.reset();
  secretsManager.on(GetSecretValueCommand, { SecretId: REMOTE }).resolves({ SecretString: rds('r1') });
  secretsManager
    .on(GetSecretValueCommand, { SecretId: `${PREFIX}a` })
    .resolves({ SecretString: rds('s1', { tenantId: 4 }) });
});
afterAll(() => secretsManager.restore());

describe('SecretsManagerCredentials', () => {
  it('loads the remote secret and the site secret named from the prefix', async () => {
    const credentials = await source().load('a');
    expect(credentials.tenantId).toBe(4);
    expect(credentials.remote).toMatchObject({
      host: 'db.example.com',
      user: 'sync',
      password: 'r1',
      database: 'x',
    });
    expect(credentials.site).toMatchObject({ password: 's1' });
    expect(credentials.version).not.toContain('s1');
    expect(reads(REMOTE)).toBe(1);
    expect(reads(`${PREFIX}a`)).toBe(1);
  });

  it('caches each secret for its TTL, then reads it again', async () => {
    // Arrange
    let now = 1_000_000;
    const credentials = source({ ttlSeconds: 300, now: () => now });

    // Act / Assert
    await credentials.load('a');
    now += 299_000;
    await credentials.load('a');
    expect(reads()).toBe(2);
    now += 2_000;
    await credentials.load('a');
    expect(reads()).toBe(4);
  });

  it('re-reads on refresh, and the version tells whether a secret changed', async () => {
    const credentials = source();
    const first = await credentials.load('a');
    const same = await credentials.load('a', { refresh: true });
    expect(same.version).toBe(first.version);
    secretsManager
      .on(GetSecretValueCommand, { SecretId: `${PREFIX}a` })
      .resolves({ SecretString: rds('s2', { tenantId: 4 }) });
    const rotated = await credentials.load('a', { refresh: true });
    expect(rotated.version).not.toBe(first.version);
    expect(rotated.site).toMatchObject({ password: 's2' });
    expect(reads()).toBe(6);
    // The refreshed value is what the cache serves next.
    expect((await credentials.load('a')).site).toMatchObject({ password: 's2' });
    expect(reads()).toBe(6);
  });

  it('with a TTL of 0 reads on every load', async () => {
    const credentials = source({ ttlSeconds: 0 });
    await credentials.load('a');
    await credentials.load('a');
    expect(reads()).toBe(4);
  });

  it('shares one read between concurrent loads, and forgets a read that failed', async () => {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: `${PREFIX}b` })
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .resolves({ SecretString: rds('s', { tenantId: 1 }) });
    const credentials = source();
    await Promise.all([credentials.load('a'), credentials.load('a'), credentials.load('a')]);
    expect(reads()).toBe(2);
    await expect(credentials.load('b')).rejects.toMatchObject({ code: 'SECRETS_UNAVAILABLE' });
    await expect(credentials.load('b')).resolves.toMatchObject({ tenantId: 1 });
    expect(reads(`${PREFIX}b`)).toBe(2);
  });

  it('maps a missing secret to SECRET_NOT_FOUND and other failures to SECRETS_UNAVAILABLE', async () => {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: `${PREFIX}gone` })
      .rejects(new ResourceNotFoundException({ message: 'not found', $metadata: {} }));
    secretsManager
      .on(GetSecretValueCommand, { SecretId: `${PREFIX}locked` })
      .rejects(Object.assign(new Error('Access to KMS is not allowed'), { name: 'DecryptionFailure' }));
    await expect(source().load('gone')).rejects.toMatchObject({
      code: 'SECRET_NOT_FOUND',
      message: `secret "${PREFIX}gone" does not exist`,
    });
    await expect(source().load('locked')).rejects.toMatchObject({
      code: 'SECRETS_UNAVAILABLE',
      message: `cannot read secret "${PREFIX}locked": DecryptionFailure: Access to KMS is not allowed`,
    });
  });

  it('reports a bad secret each time it is loaded, not only the first', async () => {
    secretsManager.on(GetSecretValueCommand, { SecretId: `${PREFIX}c` }).resolves({ SecretString: rds('s') });
    const credentials = source();
    await expect(credentials.load('c')).rejects.toMatchObject({ code: 'BAD_SECRET' });
    await expect(credentials.load('c')).rejects.toMatchObject({ code: 'BAD_SECRET' });
  });
});

describe('SecretsManagerCredentials.fromEnvironment', () => {
  const client = new SecretsManagerClient({ region: 'eu-west-1' });
  it.each([
    [{ SITE_SECRET_PREFIX: PREFIX }, 'REMOTE_SECRET_ID is not set'],
    [{ REMOTE_SECRET_ID: REMOTE }, 'SITE_SECRET_PREFIX is not set'],
    [
      { REMOTE_SECRET_ID: REMOTE, SITE_SECRET_PREFIX: PREFIX, SECRETS_TTL_SECONDS: '5m' },
      'SECRETS_TTL_SECONDS must be a whole number of seconds',
    ],
  ])('refuses %j with BAD_CONFIGURATION', (env, message) => {
    expect(() => SecretsManagerCredentials.fromEnvironment(env, client)).toThrow(
      expect.objectContaining({ code: 'BAD_CONFIGURATION', message }),
    );
  });

  it('takes the TTL from SECRETS_TTL_SECONDS', async () => {
    const credentials = SecretsManagerCredentials.fromEnvironment(
      { REMOTE_SECRET_ID: REMOTE, SITE_SECRET_PREFIX: PREFIX, SECRETS_TTL_SECONDS: '0' },
      client,
    );
    expect(credentials.siteSecretId('a')).toBe(`${PREFIX}a`);
    await credentials.load('a');
    await credentials.load('a');
    expect(reads()).toBe(4);
  });
});
