/**
 * Fault 7: credentials rotated between two runs of a warm handler (Secrets Manager mocked, the
 * passwords real: the embedded server checks them). Unlike the site-only rotation of
 * test/functions/sync-handler.test.ts, here both secrets rotate while remote changes wait, and the
 * rotation's own window (the server already has the new password, the secret not yet) is crossed.
 * Nothing is lost: the site ends exactly as a full run leaves it. Skipped on a server that trusts.
 */
import '../functions/lambda-environment';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { createSyncHandler } from '../../functions/sync/handler';
import { SecretsManagerCredentials } from '../../lib/credentials';
import type { SyncResult } from '../../lib/engine';
import { lambdaContext } from '../functions/lambda-context';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import {
  arrangeChangedRemote,
  expectNextRunConverges,
  expectSiteAfterFault,
  TENANT,
} from '../harness/fault-scenario';
import { SecretScan } from '../harness/secret-scan';
import { contentsDiff, reportedCounts, siteContents } from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { serverChecksPasswords, serverUrl } from '../harness/test-database';
import { logLines } from '../observability/captured-output';

const REMOTE_SECRET = 'rotation/remote';
const SITE_PREFIX = 'rotation/site/';
const SITE = 'plant-rotation';
const SITE_SECRET = `${SITE_PREFIX}${SITE}`;

const secretsManager = mockClient(SecretsManagerClient);
const describePasswords = serverChecksPasswords() ? describe : describe.skip;

describePasswords('fault: credentials rotated between two runs of a warm handler', () => {
  let fx: SyncFixture;
  let remoteRole: LoginRole;
  let siteRole: LoginRole;
  const scan = new SecretScan();

  /** The RDS secret of a role as it is now; the password and the whole text go to the scan. */
  function secretOf(database: string, role: LoginRole, extra: object = {}): string {
    const server = new URL(serverUrl());
    scan.secret(role.password);
    return scan.secret(
      JSON.stringify({
        engine: 'postgres',
        host: server.hostname,
        port: Number(server.port),
        username: role.name,
        password: role.password,
        dbname: database,
        ...extra,
      }),
    );
  }

  /** Secrets Manager now returns the roles' current passwords. */
  function publishSecrets(): void {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: REMOTE_SECRET })
      .resolves({ SecretString: secretOf(fx.remote.name, remoteRole) });
    secretsManager
      .on(GetSecretValueCommand, { SecretId: SITE_SECRET })
      .resolves({ SecretString: secretOf(fx.site.name, siteRole, { tenantId: TENANT }) });
  }

  function reads(secretId: string): number {
    return secretsManager
      .commandCalls(GetSecretValueCommand)
      .filter((c) => c.args[0].input.SecretId === secretId).length;
  }

  function warmHandler() {
    return createSyncHandler({
      credentials: () =>
        new SecretsManagerCredentials({
          client: new SecretsManagerClient({ region: 'eu-west-1' }),
          remoteSecretId: REMOTE_SECRET,
          siteSecretPrefix: SITE_PREFIX,
        }),
    });
  }

  async function invoke(handler: ReturnType<typeof warmHandler>) {
    const { value, error, lines } = await scan.capture(
      () => handler({ siteId: SITE }, lambdaContext(120_000)) as Promise<SyncResult>,
    );
    if (error) throw error;
    return { result: value!, lines };
  }

  beforeAll(async () => {
    fx = await createSyncFixture(TENANT);
    remoteRole = await createLoginRole([fx.remote.name]);
    siteRole = await createLoginRole([fx.site.name]);
  });
  beforeEach(() => {
    secretsManager.reset();
  });
  afterAll(async () => {
    secretsManager.restore();
    await fx.close();
    await remoteRole.drop();
    await siteRole.drop();
  });

  it('both passwords rotated while remote changes wait: one re-read, every change applied once', async () => {
    // Arrange: a warm handler synced the site and cached both secrets; then the remote changed and
    // both passwords were rotated, on the server and in Secrets Manager.
    await arrangeChangedRemote(fx);
    publishSecrets();
    const handler = warmHandler();
    await fx.remoteClient.query(`UPDATE register SET description = 'before rotation' WHERE id % 3 = 0`);
    expect((await invoke(handler)).result.status).toBe('ok');
    await fx.remoteClient.query(`UPDATE meter SET name = name || ' (rotated)' WHERE id % 2 = 0`);
    await remoteRole.rotate();
    await siteRole.rotate();
    publishSecrets();
    const before = await siteContents(fx.siteClient);

    // Act
    const { result, lines } = await invoke(handler);

    // Assert: the cached passwords failed, both secrets were read again once, and the run applied
    // exactly the changes, once: the site is the slice, and one sync_run row was added.
    expect(result).toMatchObject({ ok: true, status: 'ok' });
    expect([reads(REMOTE_SECRET), reads(SITE_SECRET)]).toEqual([2, 2]);
    const retries = logLines(lines).filter((l) => String(l.message).includes('trying again'));
    expect(retries).toHaveLength(1);
    expect(await expectSiteAfterFault(fx, before, result)).toBe('after');
    expect(reportedCounts(result)).toEqual(contentsDiff(before, await siteContents(fx.siteClient)));
    expect(result.entities[0]!.updated).toBeGreaterThan(0);

    // The fresh secrets are cached again: the next run reads nothing and writes nothing.
    const next = await invoke(handler);
    expect(next.result.entities.map((e) => e.inserted + e.updated + e.deleted)).toEqual([0, 0, 0]);
    expect([reads(REMOTE_SECRET), reads(SITE_SECRET)]).toEqual([2, 2]);
  });

  it("in the rotation's window (new password on the server, old in the secret) the run fails cleanly; after it, the next run converges", async () => {
    // Arrange: a warm handler; the rotation changed the site password on the server, but the
    // secret still holds the old one (the rotation has not finished).
    const before = await arrangeChangedRemote(fx);
    publishSecrets();
    const handler = warmHandler();
    await siteRole.rotate();

    // Act: the run in the window.
    const { result } = await invoke(handler);

    // Assert: refused, re-read once, unchanged, so not retried; the site was not touched.
    expect(result).toMatchObject({ status: 'failed', error: { code: 'AUTHENTICATION_FAILED' } });
    expect(reads(SITE_SECRET)).toBe(2);
    expect(await expectSiteAfterFault(fx, before, result)).toBe('before');

    // The rotation finishes: the secret holds the new password. The warm handler's cache still
    // has the old one; the next run fails on it, re-reads, and applies everything.
    publishSecrets();
    await expectNextRunConverges(fx, async () => (await invoke(handler)).result);
    expect(reads(SITE_SECRET)).toBe(3);
  });

  it('wrote no password or secret string in any log line, error or result of this file', () => {
    expect(scan.counts.secrets).toBeGreaterThanOrEqual(8);
    expect(scan.counts.produced).toBeGreaterThan(40);
    expect(scan.leaks()).toEqual([]);
  });
});
