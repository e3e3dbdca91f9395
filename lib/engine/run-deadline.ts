/**
 * The time a run must be over by (epoch ms), and the signal that cancels it: checked between steps,
 * and enforced on the run's sessions so that a long statement cannot outlast it. At the deadline the
 * run's sessions let go of their servers (cancel-request.ts: the statement cancelled, the socket
 * closed if that is not enough), which ends their transactions without a commit. A cancelled run's
 * sessions are let go by the connect layer, which opened them with the signal.
 */
import type { Client } from 'pg';
import { letGo } from '../db/cancel-request';
import type { ConnectOptions } from '../db/connect';
import { CancelledError, DeadlineExceededError } from '../errors';

export { CANCEL_GRACE_MS, CANCEL_REPEAT_MS } from '../db/cancel-request';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Whether a session has a statement in flight: its server has yet to answer. */
const busy = (client: Client) =>
  (client as unknown as { _getActiveQuery(): unknown })._getActiveQuery() != null;

export class RunDeadline {
  private readonly sessions = new Map<Client, string>();
  /** The databases that had a statement in flight when the deadline came. */
  private waitingOn: string[] = [];
  private readonly stops: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reached = false;
  private stopped = false;

  /** `at` undefined: no deadline; `signal` absent: no cancel. With neither, every method is a no-op. */
  constructor(
    readonly at: number | undefined,
    private readonly signal?: AbortSignal,
  ) {}

  /** True once the run must stop: past its deadline, or cancelled. */
  get expired(): boolean {
    if (this.signal?.aborted) return true;
    if (this.at === undefined) return false;
    this.reached ||= Date.now() >= this.at;
    return this.reached;
  }

  /** Why the run stopped: cancelled (the signal's reason, e.g. SIGINT), or its deadline. */
  error(): DeadlineExceededError | CancelledError {
    if (this.signal?.aborted) return new CancelledError(this.signal.reason);
    return new DeadlineExceededError(this.waitingOn);
  }

  /** Throws DEADLINE_EXCEEDED or CANCELLED once the run must stop; called before each step. */
  check(): void {
    if (this.expired) throw this.error();
  }

  /** The connect options with the connect timeout capped by the deadline, and the signal that cancels the run. */
  limit(options: ConnectOptions = {}): ConnectOptions {
    const withSignal = this.signal ? { ...options, signal: this.signal } : options;
    if (this.at === undefined) return withSignal;
    const remaining = Math.max(1, this.at - Date.now());
    const timeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return { ...withSignal, connectTimeoutMs: timeout > 0 ? Math.min(timeout, remaining) : remaining };
  }

  /** Enforces the deadline on a session (of the `role` database) until stop(). */
  watch(client: Client, role: 'site' | 'remote'): void {
    if (this.at === undefined || this.stopped) return;
    this.sessions.set(client, role);
    if (this.reached) {
      this.stops.push(letGo(client));
      return;
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.reach(), Math.max(0, this.at - Date.now()));
      this.timer.unref();
    }
  }

  /** Ends the enforcement; called when the run is over, whatever its outcome. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const stop of this.stops) stop();
    this.sessions.clear();
  }

  private reach(): void {
    this.reached = true;
    if (this.stopped) return;
    this.waitingOn = [...this.sessions].filter(([client]) => busy(client)).map(([, role]) => role);
    for (const client of this.sessions.keys()) this.stops.push(letGo(client));
  }
}
