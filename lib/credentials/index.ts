/** Where a site operation's database credentials come from: Secrets Manager, local URLs by site id, URLs of one site. */
export { BadSecretError } from './bad-secret-error';
export { ConfigurationError } from './configuration-error';
export type { CredentialsSource, MigrationCredentials, SyncCredentials } from './credentials-source';
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
export { UrlCredentials, type UrlCredentialsOptions } from './url-credentials';
