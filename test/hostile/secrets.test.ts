/**
 * Hostile input: secrets fuzzed with fast-check, read through the Lambda handler and the Secrets
 * Manager source (the SDK mocked). Text that is not JSON, JSON that is not an object, a field
 * missing or of the wrong type: BAD_SECRET naming the secret and the field, never a value. Each
 * case adds to test/credentials/database-secret.test.ts (the parser's own cases) what reaches the
 * handler: every log line, error and result is scanned for every secret value used.
 */
import '../functions/lambda-environment';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { createSyncHandler } from '../../functions/sync/handler';
import { SecretsManagerCredentials } from '../../lib/credentials';
import { lambdaContext } from '../functions/lambda-context';
import { SecretScan } from '../harness/secret-scan';
import { logLines } from '../observability/captured-output';

const REMOTE_SECRET = 'fuzz/remote';
const SITE_PREFIX = 'fuzz/site/';
const SITE = 'plant-fuzz';
const SITE_SECRET = `${SITE_PREFIX}${SITE}`;

const secretsManager = mockClient(SecretsManagerClient);
const scan = new SecretScan();

/** A value that would be recognised anywhere it leaked to. */
const marked = fc.string({ minLength: 4, maxLength: 40 }).map((s) => scan.secret(`V4L-${s}-${s.length}`));

const VALID = {
  engine: 'postgres',
  host: 'db.internal.example',
  port: 5432,
  username: 'meter_sync',
  password: 'correct horse battery staple',
  dbname: 'site',
  tenantId: 7,
};
scan.secret(VALID.password);

/** Fields a secret must get right, and values of the wrong kind for each (all marked or harmless). */
const WRONG: Record<string, fc.Arbitrary<unknown>> = {
  host: fc.oneof(
    fc.constant(''),
    fc.integer(),
    fc.boolean(),
    fc.array(marked, { minLength: 1 }),
    fc.dictionary(fc.string(), marked),
  ),
  port: fc.oneof(
    marked,
    fc.integer({ min: 65_536 }),
    fc.integer({ max: 0 }),
    // JSON has no NaN or infinity: JSON.stringify writes them as null, a port left to its default.
    fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
  ),
  username: fc.oneof(fc.constant(''), fc.integer(), fc.array(marked, { minLength: 1 })),
  password: fc.oneof(
    fc.constant(''),
    fc.integer(),
    fc.boolean(),
    fc.array(marked, { minLength: 1 }),
    fc.dictionary(fc.string(), marked),
  ),
  dbname: fc.oneof(fc.constant(''), fc.integer(), fc.array(marked, { minLength: 1 })),
  tenantId: fc.oneof(
    marked,
    fc.integer({ max: -1 }),
    fc.double({ noInteger: true }),
    fc.boolean(),
    fc.array(marked),
  ),
  sslmode: fc.oneof(marked, fc.constantFrom('prefer', 'allow', 'VERIFY-FULL', ''), fc.integer()),
};

function mockSecrets(site: string | undefined, remote: string = JSON.stringify(VALID)): void {
  secretsManager.reset();
  secretsManager.on(GetSecretValueCommand, { SecretId: REMOTE_SECRET }).resolves({ SecretString: remote });
  secretsManager.on(GetSecretValueCommand, { SecretId: SITE_SECRET }).resolves({ SecretString: site });
}

function handler() {
  return createSyncHandler({
    credentials: () =>
      new SecretsManagerCredentials({
        client: new SecretsManagerClient({ region: 'eu-west-1' }),
        remoteSecretId: REMOTE_SECRET,
        siteSecretPrefix: SITE_PREFIX,
        ttlSeconds: 0,
      }),
  });
}

/** One invocation: what it threw (it must throw: no database is reachable), with its log lines. */
async function invoke(): Promise<{
  error: { code?: string; message: string; name?: string };
  lines: string[];
}> {
  const { value, error, lines } = await scan.capture(() => handler()({ siteId: SITE }, lambdaContext()));
  expect(value).toBeUndefined();
  return { error: error as { code?: string; message: string }, lines };
}

describe('hostile input: secrets (fuzzed through the handler)', () => {
  afterAll(() => secretsManager.restore());

  it('rejects text that is not a JSON object with BAD_SECRET, quoting none of it (property)', async () => {
    const notAnObject = fc.oneof(
      marked,
      marked.map((s) => `{"password": "${s}"`),
      marked.map((s) => `{"password": "${s}", }`),
      marked.map((s) => JSON.stringify(s)),
      marked.map((s) => JSON.stringify([s])),
      fc.json().filter((text) => {
        const parsed = JSON.parse(text);
        return typeof parsed !== 'object' || parsed === null || Array.isArray(parsed);
      }),
      fc.constantFrom('null', '[]', '1', 'true', '{', '\u0000', '\ufeff{}'),
    );
    await fc.assert(
      fc.asyncProperty(notAnObject, fc.boolean(), async (text, remoteSide) => {
        // Long texts are secrets to look for; short ones ("1", "null") would be found everywhere.
        if (text.length >= 12) scan.secret(text);
        if (remoteSide) mockSecrets(JSON.stringify(VALID), text);
        else mockSecrets(text);

        const { error, lines } = await invoke();

        const secretId = remoteSide ? REMOTE_SECRET : SITE_SECRET;
        expect(error).toMatchObject({ code: 'BAD_SECRET', name: 'BadSecretError' });
        expect(error.message).toMatch(
          new RegExp(
            `^secret "${secretId}": (SecretString is not valid JSON|SecretString must be a JSON object|has no SecretString)`,
          ),
        );
        expect(logLines(lines).find((l) => l.level === 'ERROR')).toMatchObject({
          error: { code: 'BAD_SECRET' },
        });
      }),
      { numRuns: 150 },
    );
  });

  it('names the one field that is missing or of the wrong kind, never its value (property)', async () => {
    const field = fc.constantFrom(...Object.keys(WRONG));
    const mutation = field.chain((name) =>
      fc.record({
        name: fc.constant(name),
        value: fc.oneof(WRONG[name]!, fc.constant(null), fc.constant(undefined)),
      }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, fc.boolean(), async ({ name, value }, remoteSide) => {
        // Arrange: a valid secret with one field wrong (undefined: the field is left out).
        // (The remote secret has no tenantId; sslmode and port may be left out, port may be null.)
        fc.pre(!(remoteSide && name === 'tenantId'));
        fc.pre(!(name === 'sslmode' && value === undefined));
        fc.pre(!(name === 'port' && (value === undefined || value === null)));
        const secret: Record<string, unknown> = { ...VALID, [name]: value };
        if (remoteSide) delete secret.tenantId;
        if (value === undefined) delete secret[name];
        const text = scan.secret(JSON.stringify(secret));
        if (remoteSide) mockSecrets(JSON.stringify(VALID), text);
        else mockSecrets(text);

        // Act
        const { error } = await invoke();

        // Assert
        expect(error).toMatchObject({ code: 'BAD_SECRET' });
        expect(error.message).toContain(
          `secret "${remoteSide ? REMOTE_SECRET : SITE_SECRET}": field "${name}" `,
        );
      }),
      { numRuns: 200 },
    );
  });

  it('wrote no secret value in any log line, error or result of this file', () => {
    expect(scan.counts.secrets).toBeGreaterThan(200);
    expect(scan.counts.produced).toBeGreaterThan(700);
    expect(scan.leaks()).toEqual([]);
  });
});
