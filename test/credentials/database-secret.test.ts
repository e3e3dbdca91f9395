import fc from 'fast-check';
import { parseDatabaseSecret, parseSiteSecret, secretTarget } from '../../lib/credentials';

const ID = 'meter-sync/site/plant-1';
const valid = {
  engine: 'postgres',
  host: 'site-1.cluster-abc.eu-west-1.rds.amazonaws.com',
  port: 5432,
  username: 'meter_sync',
  password: 'correct horse battery staple',
  dbname: 'site',
  dbInstanceIdentifier: 'site-1',
  tenantId: 42,
};

function secret(fields: Record<string, unknown>): string {
  return JSON.stringify(fields);
}

function failure(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected a failure');
}

describe('the RDS JSON secret format', () => {
  it('reads a site secret, ignoring the fields RDS adds, with TLS verify-full for an RDS host', () => {
    const parsed = parseSiteSecret(ID, secret(valid));
    expect(parsed).toEqual({
      host: valid.host,
      port: 5432,
      username: 'meter_sync',
      password: valid.password,
      dbname: 'site',
      tenantId: 42,
    });
    const target = secretTarget(parsed);
    expect(target).toMatchObject({ host: valid.host, port: 5432, user: 'meter_sync', database: 'site' });
    expect(target.ssl).toMatchObject({ rejectUnauthorized: true });
    expect(target.ssl).toHaveProperty('secureContext');
  });

  it('accepts a port and a tenantId written as strings, and defaults the port to 5432', () => {
    const { port: _port, ...withoutPort } = valid;
    expect(parseSiteSecret(ID, secret({ ...valid, port: '6432', tenantId: '7' }))).toMatchObject({
      port: 6432,
      tenantId: 7,
    });
    expect(parseDatabaseSecret(ID, secret(withoutPort)).port).toBe(5432);
  });

  it.each([
    ['disable', false],
    ['require', { rejectUnauthorized: false }],
  ])('honours sslmode %s', (sslmode, ssl) => {
    expect(secretTarget(parseDatabaseSecret(ID, secret({ ...valid, sslmode }))).ssl).toEqual(ssl);
  });

  it('does not require tenantId in the remote secret', () => {
    const { tenantId: _t, ...remote } = valid;
    expect(parseDatabaseSecret('meter-sync/remote', secret(remote)).host).toBe(valid.host);
  });

  it.each([
    ['host', { host: undefined }, 'field "host" is missing'],
    ['host', { host: '' }, 'field "host" must be a non-empty string'],
    ['username', { username: 5 }, 'field "username" must be a non-empty string'],
    ['password', { password: null }, 'field "password" is missing'],
    ['dbname', { dbname: ['site'] }, 'field "dbname" must be a non-empty string'],
    ['port', { port: 0 }, 'field "port" must be an integer from 1 to 65535'],
    ['port', { port: '54x' }, 'field "port" must be an integer from 1 to 65535'],
    ['port', { port: 5432.5 }, 'field "port" must be an integer from 1 to 65535'],
    ['tenantId', { tenantId: -1 }, 'field "tenantId" must be an integer from 0 to 2147483647'],
    ['tenantId', { tenantId: 2_147_483_648 }, 'field "tenantId" must be an integer from 0 to 2147483647'],
    [
      'sslmode',
      { sslmode: 'allow' },
      'field "sslmode" must be one of disable, require, verify-ca, verify-full',
    ],
  ])('rejects a bad %s with BAD_SECRET naming the field', (_field, patch, message) => {
    const error = failure(() => parseSiteSecret(ID, secret({ ...valid, ...patch })));
    expect(error).toMatchObject({ code: 'BAD_SECRET', message: `secret "${ID}": ${message}` });
  });

  it('rejects text that is not a JSON object without quoting it', () => {
    for (const text of ['hunter2', '{"password": "hunter2"', '"hunter2"', '["hunter2"]', 'null']) {
      const error = failure(() => parseSiteSecret(ID, text));
      expect(error.code).toBe('BAD_SECRET');
      expect(error.message).not.toContain('hunter2');
    }
    expect(failure(() => parseSiteSecret(ID, undefined)).message).toContain('has no SecretString');
  });

  it('never puts a value of the secret in an error message (property)', () => {
    // Every string value carries a marker: if any value were echoed, the marker would show.
    const marked = fc.string().map((s) => `VAL:${s}`);
    const value = fc.oneof(
      marked,
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.array(marked, { maxLength: 2 }),
    );
    const fields = fc.record(
      {
        host: value,
        port: value,
        username: value,
        password: value,
        dbname: value,
        tenantId: value,
        sslmode: value,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fields, (secretFields) => {
        let message = '';
        try {
          parseSiteSecret(ID, JSON.stringify(secretFields));
        } catch (error) {
          message = (error as Error).message;
        }
        expect(message).not.toContain('VAL:');
      }),
      { numRuns: 500 },
    );
  });
});
