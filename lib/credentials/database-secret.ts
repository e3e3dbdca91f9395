/**
 * The RDS JSON secret format (DESIGN §4): `host`, `port`, `username`, `password`, `dbname`, optional
 * `sslmode`, and `tenantId` in a site secret. Other fields (`engine`, `dbInstanceIdentifier`, ...) are
 * ignored, as RDS and its rotation functions add them. Every error names the field, never its value.
 */
import type { ClientConfig } from 'pg';
import { isSslMode, SSL_MODES, type SslMode, tlsOptions } from '../db/tls';
import { BadSecretError } from './bad-secret-error';

export interface DatabaseSecret {
  host: string;
  port: number;
  username: string;
  password: string;
  dbname: string;
  sslmode?: SslMode;
}

export interface SiteSecret extends DatabaseSecret {
  tenantId: number;
}

const DEFAULT_PORT = 5432;
const MAX_TENANT_ID = 2_147_483_647;

function text(secretId: string, fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (value === undefined || value === null) throw new BadSecretError(secretId, `field "${name}" is missing`);
  if (typeof value !== 'string' || value.length === 0) {
    throw new BadSecretError(secretId, `field "${name}" must be a non-empty string`);
  }
  return value;
}

/** An integer given as a JSON number or as a string of digits (both are seen in RDS secrets). */
function integer(
  secretId: string,
  fields: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  const number =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\d{1,10}$/.test(value)
        ? Number(value)
        : NaN;
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new BadSecretError(secretId, `field "${name}" must be an integer from ${min} to ${max}`);
  }
  return number;
}

function parseFields(secretId: string, secretString: string | undefined): Record<string, unknown> {
  if (secretString === undefined || secretString === '') {
    throw new BadSecretError(secretId, 'has no SecretString (a binary secret is not supported)');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    // JSON.parse quotes the text around the error, which would be the secret itself.
    throw new BadSecretError(secretId, 'SecretString is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BadSecretError(secretId, 'SecretString must be a JSON object in the RDS secret format');
  }
  return parsed as Record<string, unknown>;
}

function databaseSecret(secretId: string, fields: Record<string, unknown>): DatabaseSecret {
  const sslmode = fields.sslmode;
  if (sslmode !== undefined && !isSslMode(sslmode)) {
    throw new BadSecretError(secretId, `field "sslmode" must be one of ${SSL_MODES.join(', ')}`);
  }
  return {
    host: text(secretId, fields, 'host'),
    port: integer(secretId, fields, 'port', 1, 65_535) ?? DEFAULT_PORT,
    username: text(secretId, fields, 'username'),
    password: text(secretId, fields, 'password'),
    dbname: text(secretId, fields, 'dbname'),
    ...(sslmode !== undefined ? { sslmode } : {}),
  };
}

export function parseDatabaseSecret(secretId: string, secretString: string | undefined): DatabaseSecret {
  return databaseSecret(secretId, parseFields(secretId, secretString));
}

export function parseSiteSecret(secretId: string, secretString: string | undefined): SiteSecret {
  const fields = parseFields(secretId, secretString);
  const secret = databaseSecret(secretId, fields);
  const tenantId = integer(secretId, fields, 'tenantId', 0, MAX_TENANT_ID);
  if (tenantId === undefined) throw new BadSecretError(secretId, 'field "tenantId" is missing');
  return { ...secret, tenantId };
}

/** The node-postgres configuration of a secret, with TLS as its sslmode (or the host's default) says. */
export function secretTarget(secret: DatabaseSecret): ClientConfig {
  return {
    host: secret.host,
    port: secret.port,
    user: secret.username,
    password: secret.password,
    database: secret.dbname,
    ssl: tlsOptions(secret.host, secret.sslmode),
  };
}
