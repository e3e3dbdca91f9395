/**
 * Whether a COMMIT whose answer never came went through. A session lost during COMMIT may have
 * committed or not, and its backend may still be running (blocked in a deferred trigger, say) and
 * commit later. A fresh session asks the server about the transaction's id; a transaction still in
 * progress is ended first (its backend terminated, as the session's own role may), so the answer is
 * final: nothing of the run lands after the run has been reported.
 */
import type { Client } from 'pg';
import { destroySession } from './cancel-request';
import { type ConnectOptions, connect, type DatabaseTarget } from './connect';
import { siteSql } from './sync-sql';

export type CommitOutcome = 'committed' | 'aborted' | 'unknown';

/** The transaction being committed and the backend that runs it. */
export interface PendingCommit {
  /** Its full 64-bit id (xid8), as text. */
  readonly xid: string;
  readonly pid: number;
}

/** How long the question may take in all: connecting, ending the old backend, asking. */
export const COMMIT_CHECK_MS = 2_000;

/** Read before COMMIT, inside the transaction: it writes, so it has an id. */
export async function pendingCommit(client: Client): Promise<PendingCommit> {
  const { rows } = await client.query<{ xid: string; pid: number }>(siteSql.pendingCommit);
  return { xid: rows[0]!.xid, pid: rows[0]!.pid };
}

/**
 * True when COMMIT failed with the server's own answer on a session that lives on (a deferred
 * constraint, a cancel): the transaction was rolled back. Otherwise the session is gone, and with
 * it any word of what became of the transaction.
 */
export function answeredByServer(error: unknown): boolean {
  const severity = (error as { severity?: unknown } | null)?.severity;
  return severity === 'ERROR';
}

async function endQuietly(client: Client | undefined): Promise<void> {
  await client?.end().catch(() => {});
}

/** Asks the server over a new session what became of `pending`; `unknown` if it cannot be asked. */
export async function commitOutcome(
  target: DatabaseTarget,
  pending: PendingCommit,
  options: ConnectOptions = {},
): Promise<CommitOutcome> {
  let client: Client | undefined;
  let abandoned = false;
  const ask = async (): Promise<CommitOutcome> => {
    client = await connect(target, 'site', {
      ...options,
      connectTimeoutMs: COMMIT_CHECK_MS,
      statementTimeoutMs: COMMIT_CHECK_MS,
    });
    if (abandoned) return 'unknown';
    // A transaction still under way could commit after the run reports: it is ended first.
    await client.query(siteSql.endPendingCommit, [pending.xid, pending.pid, COMMIT_CHECK_MS / 2]);
    const { rows } = await client.query<{ status: string | null }>(siteSql.commitStatus, [pending.xid]);
    const status = rows[0]?.status;
    return status === 'committed' ? 'committed' : status === 'aborted' ? 'aborted' : 'unknown';
  };
  let finished = false;
  const asking = ask()
    .catch((): CommitOutcome => 'unknown')
    .finally(() => {
      finished = true;
    });
  // One budget for the whole question: a Lambda's deadline margin must still cover it.
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<CommitOutcome>((resolve) => {
    timer = setTimeout(() => resolve('unknown'), COMMIT_CHECK_MS);
  });
  const outcome = await Promise.race([asking, timeUp]);
  clearTimeout(timer);
  abandoned = true;
  const session = () => client as Client | undefined;
  if (finished) {
    await endQuietly(session());
  } else {
    // Cut off past its budget: the session ends once the question lets go of it, never later.
    const late = session();
    if (late) destroySession(late);
    void asking.finally(() => endQuietly(session()));
  }
  return outcome;
}
