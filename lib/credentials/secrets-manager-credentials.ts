/**
 * Credentials from AWS Secrets Manager (DESIGN §4): the remote secret `REMOTE_SECRET_ID` and the
 * site secret `${SITE_SECRET_PREFIX}${siteId}`, both in the RDS JSON format, cached across warm
 * invocations for `SECRETS_TTL_SECONDS` (default 300) and re-read on demand after a rotation.
 */
import { createHash } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from './configuration-error';
import type { CredentialsSource, MigrationCredentials, SyncCredentials } from './credentials-source';
import { parseDatabaseSecret, parseSiteSecret, secretTarget } from './database-secret';
import { SecretUnavailableError } from './secret-unavailable-error';
import { TtlCache } from './ttl-cache';

export const DEFAULT_SECRETS_TTL_SECONDS = 300;

export interface SecretsManagerCredentialsOptions {
  client: Pick<SecretsManagerClient, 'send'>;
  /** Every operation reads it (a migration to tell that the site is not the remote); absent, each fails. */
  remoteSecretId?: string;
  siteSecretPrefix: string;
  ttlSeconds?: number;
  /** The clock of the cache, for tests. */
  now?: () => number;
}

interface SecretText {
  text: string | undefined;
  /** A digest of the text: tells two readings apart without keeping or showing the value twice. */
  digest: string;
}

function unavailable(secretId: string, error: unknown): SecretUnavailableError {
  const name = (error as { name?: string })?.name ?? 'Error';
  if (name === 'ResourceNotFoundException') {
    return new SecretUnavailableError(
      'SECRET_NOT_FOUND',
      `secret ${JSON.stringify(secretId)} does not exist`,
    );
  }
  // SDK messages name the secret and the principal, never the secret's value.
  const message = String((error as { message?: string })?.message ?? '').split('\n')[0];
  return new SecretUnavailableError(
    'SECRETS_UNAVAILABLE',
    `cannot read secret ${JSON.stringify(secretId)}: ${name}${message ? `: ${message}` : ''}`,
  );
}

export class SecretsManagerCredentials implements CredentialsSource {
  private readonly cache: TtlCache<SecretText>;

  constructor(private readonly options: SecretsManagerCredentialsOptions) {
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_SECRETS_TTL_SECONDS;
    this.cache = new TtlCache(ttlSeconds * 1000, options.now);
  }

  /** Reads the secret ids and the cache TTL from the function's environment. */
  static fromEnvironment(
    env: NodeJS.ProcessEnv = process.env,
    client: Pick<SecretsManagerClient, 'send'> = new SecretsManagerClient({}),
  ): SecretsManagerCredentials {
    const remoteSecretId = env.REMOTE_SECRET_ID;
    if (!remoteSecretId) throw new ConfigurationError('REMOTE_SECRET_ID is not set');
    const siteSecretPrefix = env.SITE_SECRET_PREFIX;
    if (siteSecretPrefix === undefined) throw new ConfigurationError('SITE_SECRET_PREFIX is not set');
    const ttl = env.SECRETS_TTL_SECONDS;
    if (ttl !== undefined && !/^\d{1,6}$/.test(ttl)) {
      throw new ConfigurationError('SECRETS_TTL_SECONDS must be a whole number of seconds');
    }
    return new SecretsManagerCredentials({
      client,
      remoteSecretId,
      siteSecretPrefix,
      ttlSeconds: ttl === undefined ? DEFAULT_SECRETS_TTL_SECONDS : Number(ttl),
    });
  }

  siteSecretId(siteId: string | undefined): string {
    if (siteId === undefined) throw new ConfigurationError('a site id is needed to find its secret');
    return `${this.options.siteSecretPrefix}${siteId}`;
  }

  async load(siteId: string | undefined, options: { refresh?: boolean } = {}): Promise<SyncCredentials> {
    const remoteId = this.options.remoteSecretId;
    if (remoteId === undefined) throw new ConfigurationError('the remote secret id is not set');
    const siteSecretId = this.siteSecretId(siteId);
    const [remote, site] = await Promise.all([
      this.read(remoteId, options),
      this.read(siteSecretId, options),
    ]);
    // Parsed on every load, not cached: a bad secret fails every run until it is fixed, loudly.
    const remoteSecret = parseDatabaseSecret(remoteId, remote.text);
    const siteSecret = parseSiteSecret(siteSecretId, site.text);
    return {
      remote: secretTarget(remoteSecret),
      site: secretTarget(siteSecret),
      tenantId: siteSecret.tenantId,
      version: `${remote.digest}:${site.digest}`,
    };
  }

  /** Both secrets, as for a sync: the migration compares the site with the remote, and the site secret gives the tenant. */
  loadForMigration(
    siteId: string | undefined,
    options: { refresh?: boolean } = {},
  ): Promise<MigrationCredentials> {
    return this.load(siteId, options);
  }

  private read(secretId: string, options: { refresh?: boolean }): Promise<SecretText> {
    return this.cache.get(
      secretId,
      async () => {
        let text: string | undefined;
        try {
          const output = await this.options.client.send(new GetSecretValueCommand({ SecretId: secretId }));
          text = output.SecretString;
        } catch (error) {
          throw unavailable(secretId, error);
        }
        return {
          text,
          digest: createHash('sha256')
            .update(text ?? '')
            .digest('hex')
            .slice(0, 16),
        };
      },
      options,
    );
  }
}
