/**
 * Whether the site database is the remote database itself (SITE_IS_REMOTE), told by what both
 * servers say of themselves (server-identity.ts): a run, a migration above all, would refuse it.
 */
import type { Client } from 'pg';
import { readServerIdentity, type ServerIdentity, sameDatabase } from '../../db/server-identity';
import { type Check, check, describeError } from './check';

const NAME = 'site identity';

/** Reads both sessions' identity, outside any transaction. */
export async function siteIdentityCheck(site: Client, remote: Client): Promise<Check> {
  let identities: [ServerIdentity, ServerIdentity];
  try {
    identities = [await readServerIdentity(site), await readServerIdentity(remote)];
  } catch (error) {
    return check(NAME, 'fail', `the servers' identity cannot be read: ${describeError(error)}`);
  }
  const [siteIdentity, remoteIdentity] = identities;
  const same = sameDatabase(siteIdentity, remoteIdentity);
  if (same !== undefined)
    return check(
      NAME,
      'fail',
      `the site database is the remote database (database ${siteIdentity.database}, ${same}) [SITE_IS_REMOTE]: a run or a migration refuses it`,
      "point the site's secret or --site URL at the site's own database",
    );
  const sameServer =
    siteIdentity.systemIdentifier !== null && remoteIdentity.systemIdentifier !== null
      ? siteIdentity.systemIdentifier === remoteIdentity.systemIdentifier
      : siteIdentity.startedAt === remoteIdentity.startedAt;
  return check(
    NAME,
    'ok',
    sameServer
      ? `the site is database ${siteIdentity.database} of the remote's server, not the remote's database ${remoteIdentity.database}`
      : `the site is database ${siteIdentity.database} of another server than the remote's`,
  );
}
