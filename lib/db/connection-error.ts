/**
 * Why a connection could not be made, as a code an operator can act on and a message that names
 * the database (site or remote), its host and its port, never the password. A login refused, TLS
 * the server lacks or will not prove, a database that is not there: configuration, which running
 * again will not mend. Nothing listening, a name that does not resolve, no answer: the network's,
 * which may pass.
 */
import { MeterSyncError, toMeterSyncError } from '../errors';

export type ConnectionRole = 'site' | 'remote';

export interface ConnectionPlace {
  role: ConnectionRole;
  host: string;
  port: number | string;
  database: string;
}

/** Connection failures no retry mends: the CLI exits 2 on them, as on bad usage. */
export const CONFIGURATION_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'AUTHENTICATION_FAILED',
  'TLS_UNAVAILABLE',
  'TLS_UNTRUSTED',
  'DATABASE_NOT_FOUND',
]);

/** Node's codes of a certificate the client does not trust, or that is not the host's. */
const UNTRUSTED_CERTIFICATE =
  /^(ERR_TLS_CERT_ALTNAME_INVALID|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_UNTRUSTED|CERT_REJECTED)$/;

export function connectionError(error: unknown, place: ConnectionPlace): MeterSyncError {
  const { role, host, port, database } = place;
  const where = `the ${role} database at ${host}:${port}`;
  const raw = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: string;
    message?: string;
  };
  const code = raw.code ?? '';
  const message = (raw.message ?? String(error)).split('\n')[0]!;
  const fail = (name: string, text: string) => new MeterSyncError(name, text);
  // The password lookup of a URL without one says where it looked (environment-password.ts).
  if (error instanceof MeterSyncError && error.code === 'AUTHENTICATION_FAILED')
    return fail(error.code, `${where}: ${error.message}`);
  if (code === '28P01' || code === '28000')
    return fail('AUTHENTICATION_FAILED', `${where} refused the login: ${message}`);
  if (/empty password returned by client|client password must be a string/i.test(message))
    return fail(
      'AUTHENTICATION_FAILED',
      `${where} asks for a password and none was given: put it in the URL, PGPASSWORD or ~/.pgpass (for the function, the secret)`,
    );
  if (/does not support SSL connections/i.test(message))
    return fail(
      'TLS_UNAVAILABLE',
      `${where} does not offer TLS, which the connection requires (sslmode require or verify-*, the default for a host that is not this machine): enable TLS on the server, or connect with sslmode=disable where the network is trusted`,
    );
  if (UNTRUSTED_CERTIFICATE.test(code))
    return fail(
      'TLS_UNTRUSTED',
      `${where} presented a certificate this client does not trust for it (${code}): ${message}; check the host name and the server's certificate, or connect with sslmode=require to encrypt without verifying`,
    );
  if (code === '3D000') return fail('DATABASE_NOT_FOUND', `${where} has no database "${database}"`);
  if (code === 'ECONNREFUSED')
    return fail(
      'CONNECTION_REFUSED',
      `nothing accepts connections at ${host}:${port} (the ${role} database): is the server running, and the port right?`,
    );
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return fail(
      'HOST_NOT_FOUND',
      `the ${role} database's host "${host}" does not resolve (${code}): check the host name`,
    );
  if (code === 'ETIMEDOUT' || /^timeout expired$/i.test(message))
    return fail(
      'CONNECTION_TIMEOUT',
      `${where} did not answer in time: a firewall, a security group or the route to it`,
    );
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return fail('HOST_UNREACHABLE', `${where} cannot be reached (${code}): no route to it`);
  return toMeterSyncError(error, `cannot connect to ${where}`);
}
