/** Where a sync's database credentials come from, and a sync that re-reads them after a rotation. */
export { BadSecretError } from './bad-secret-error';
export { ConfigurationError } from './configuration-error';
export type { CredentialsSource, SyncCredentials } from './credentials-source';
export {
  type DatabaseSecret,
  parseDatabaseSecret,
  parseSiteSecret,
  type SiteSecret,
  secretTarget,
} from './database-secret';
export { LocalCredentials, type LocalCredentialsOptions, type LocalSite } from './local-credentials';
export { SecretUnavailableError } from './secret-unavailable-error';
export {
  DEFAULT_SECRETS_TTL_SECONDS,
  SecretsManagerCredentials,
  type SecretsManagerCredentialsOptions,
} from './secrets-manager-credentials';
export { type SiteSyncOptions, type SiteSyncRequest, syncWithCredentials } from './sync-with-credentials';
