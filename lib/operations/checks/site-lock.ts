/**
 * The site's run lock: the site role can take it, and it is free, or else who holds it and since
 * when. The check takes it for an instant in its read-only transaction, which the caller ends
 * right after, so the lock is released with it.
 */
import type { Client } from 'pg';
import { SITE_LOCK_KEY } from '../../db/site-database';
import { siteSql } from '../../db/sync-sql';
import { type Check, check, describeError } from './check';
import { underSavepoint } from './savepoint';

/**
 * The sessions holding the advisory lock on the bigint `$1` in this database: pg_locks shows such
 * a key as its high 32 bits (classid) and low 32 bits (objid), objsubid 1 for the one-bigint form.
 */
const HOLDERS = `SELECT l.pid, a.usename AS user, a.application_name AS application, a.state,
    date_trunc('second', coalesce(a.xact_start, a.backend_start))::text AS since,
    round(extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start)))::integer AS seconds
  FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND l.classid = (($1::bigint >> 32) & 4294967295)::oid AND l.objid = ($1::bigint & 4294967295)::oid
  ORDER BY l.pid`;

interface Holder {
  pid: number;
  user: string | null;
  application: string | null;
  state: string | null;
  since: string | null;
  seconds: number | null;
}

function describeHolder(h: Holder): string {
  const who = [
    h.application ? `application ${h.application}` : undefined,
    h.user ? `user ${h.user}` : undefined,
    h.state ?? undefined,
  ]
    .filter((part) => part !== undefined)
    .join(', ');
  // Another role's session shows no times unless the site role may read all statistics.
  const since =
    h.since !== null ? ` since ${h.since} (${h.seconds} s)` : ' (since when is not shown to this role)';
  return `pid ${h.pid}${who ? ` (${who})` : ''}${since}`;
}

export async function siteLockCheck(client: Client): Promise<Check> {
  const name = 'site lock';
  let locked: boolean;
  try {
    const { rows } = await underSavepoint(client, () =>
      client.query<{ locked: boolean }>(siteSql.tryLock, [SITE_LOCK_KEY]),
    );
    locked = rows[0]?.locked === true;
  } catch (error) {
    return check(
      name,
      'fail',
      `the site role cannot take the run lock: ${describeError(error)}`,
      'grant the site role EXECUTE on pg_try_advisory_xact_lock(bigint)',
    );
  }
  if (locked) return check(name, 'ok', 'the run lock is free, and the site role can take it');
  const { rows } = await underSavepoint(client, () => client.query<Holder>(HOLDERS, [SITE_LOCK_KEY]));
  const holders =
    rows.length > 0 ? rows.map(describeHolder).join('; ') : 'a session that has let go of it since';
  return check(
    name,
    'warn',
    `the run lock is held by ${holders}: a run is at work on the site now`,
    'a run now would return `locked`; one that holds the lock for long may be stuck: look at its pid in pg_stat_activity',
  );
}
