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

/** Asks the server over a new session what became of `pending`; `unknown` if it cannot be asked. */
export async function commitOutcome(
  target: DatabaseTarget,
  pending: PendingCommit,
  options: ConnectOptions = {},
): Promise<CommitOutcome> {
  // Held in an object: the question fills it in while the budget below may already have run out.
  const question: { client?: Client; over: boolean } = { over: false };
  const ask = async (): Promise<CommitOutcome> => {
    question.client = await connect(target, 'site', {
      ...options,
      connectTimeoutMs: COMMIT_CHECK_MS,
      statementTimeoutMs: COMMIT_CHECK_MS,
    });
    if (question.over) return 'unknown';
    // A transaction still under way could commit after the run reports: it is ended first.
    await question.client.query(siteSql.endPendingCommit, [pending.xid, pending.pid, COMMIT_CHECK_MS / 2]);
    const { rows } = await question.client.query<{ status: string | null }>(siteSql.commitStatus, [
      pending.xid,
    ]);
    const status = rows[0]?.status;
    return status === 'committed' ? 'committed' : status === 'aborted' ? 'aborted' : 'unknown';
  };
  const asking = ask().catch((): CommitOutcome => 'unknown');
  // One budget for the whole question: a Lambda's deadline margin must still cover it.
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), COMMIT_CHECK_MS);
  });
  const outcome = await Promise.race([asking, timeUp]);
  clearTimeout(timer);
  question.over = true;
  // Cut off past its budget, a question still connecting or asking ends as soon as it lets go.
  if (outcome === undefined && question.client) destroySession(question.client);
  const closed = asking.then(() => question.client?.end().catch(() => {}));
  if (outcome !== undefined) await closed;
  return outcome ?? 'unknown';
}
