/**
 * The time a run must be over by (epoch ms): checked between steps, and enforced on the run's
 * sessions so that a long statement cannot outlast it. At the deadline the statement in flight is
 * cancelled (and again every CANCEL_REPEAT_MS, since a cancel that arrives between two statements
 * is dropped by the server); if a session still has not let go after CANCEL_GRACE_MS, its socket is
 * closed, which ends its transaction without a commit.
 */
import type { Client } from 'pg';
import { destroySession, sendCancelRequest } from '../db/cancel-request';
import type { ConnectOptions } from '../db/connect';
import { DeadlineExceededError } from '../errors';

export const CANCEL_REPEAT_MS = 250;
export const CANCEL_GRACE_MS = 2_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export class RunDeadline {
  private readonly sessions = new Set<Client>();
  private readonly timers: NodeJS.Timeout[] = [];
  private reached = false;
  private stopped = false;

  /** `at` undefined: no deadline, every method is a no-op. */
  constructor(readonly at: number | undefined) {}

  get expired(): boolean {
    if (this.at === undefined) return false;
    this.reached ||= Date.now() >= this.at;
    return this.reached;
  }

  error(): DeadlineExceededError {
    return new DeadlineExceededError();
  }

  /** Throws DEADLINE_EXCEEDED once the deadline has passed; called before each step. */
  check(): void {
    if (this.expired) throw this.error();
  }

  /** The connect options with the connect timeout capped so that connecting cannot outlast the deadline. */
  limit(options: ConnectOptions = {}): ConnectOptions {
    if (this.at === undefined) return options;
    const remaining = Math.max(1, this.at - Date.now());
    const timeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return { ...options, connectTimeoutMs: timeout > 0 ? Math.min(timeout, remaining) : remaining };
  }

  /** Enforces the deadline on a session until stop(). */
  watch(client: Client): void {
    if (this.at === undefined || this.stopped) return;
    this.sessions.add(client);
    if (this.timers.length === 0) this.arm(this.at);
    if (this.expired) void sendCancelRequest(client);
  }

  /** Ends the enforcement; called when the run is over, whatever its outcome. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.length = 0;
    this.sessions.clear();
  }

  private arm(at: number): void {
    const delay = Math.max(0, at - Date.now());
    const later = (ms: number, fn: () => void) => {
      const timer = setTimeout(fn, ms);
      timer.unref();
      this.timers.push(timer);
    };
    later(delay, () => {
      this.reached = true;
      let graceOver = false;
      const cancelAll = () => {
        if (this.stopped || graceOver) return;
        for (const client of this.sessions) void sendCancelRequest(client);
        later(CANCEL_REPEAT_MS, cancelAll);
      };
      cancelAll();
      later(CANCEL_GRACE_MS, () => {
        graceOver = true;
        for (const client of this.sessions) destroySession(client);
      });
    });
  }
}
