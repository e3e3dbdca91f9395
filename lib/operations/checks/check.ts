/** One line of a check report: what was checked, how it stands, and what to do about it. */
import { toMeterSyncError } from '../../errors';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  /** Short and stable: scripts and alarms match on it. */
  name: string;
  status: CheckStatus;
  /** One line; never a password or another secret value. */
  message: string;
  hint?: string;
}

/** Server messages may span lines (a DETAIL, a query excerpt): a report line must not. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

export function check(name: string, status: CheckStatus, message: string, hint?: string): Check {
  return { name, status, message: oneLine(message), ...(hint !== undefined ? { hint: oneLine(hint) } : {}) };
}

/** A check that could not run because something it needs is missing; counted as failed. */
export function notChecked(name: string, why: string): Check {
  return check(name, 'fail', `not checked: ${why}`);
}

/** What the server or the driver threw, as `message [CODE]`, first line only. */
export function describeError(error: unknown): string {
  const failure = toMeterSyncError(error);
  return `${failure.message} [${failure.code}]`;
}

/** The worst of some statuses: a fail outweighs a warn, a warn an ok. */
export function worst(statuses: readonly CheckStatus[]): CheckStatus {
  if (statuses.includes('fail')) return 'fail';
  return statuses.includes('warn') ? 'warn' : 'ok';
}
