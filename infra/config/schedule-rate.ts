/** Parses the EventBridge Scheduler `rate(...)` expressions a site may be scheduled with. */

/** A fixed-interval schedule: the expression EventBridge Scheduler gets and its interval in minutes. */
export interface ScheduleRate {
  readonly expression: string;
  readonly minutes: number;
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const UNIT_MINUTES: Record<string, number> = { minute: 1, hour: 60, day: 1440 };

/**
 * Returns the rate, or a sentence saying what is wrong with the expression.
 *
 * Only `rate()` is accepted: the "no successful sync within N periods" alarm needs a fixed period,
 * which `cron()` does not have, and an `at()` schedule would sync a site once.
 */
export function parseScheduleRate(expression: unknown): ScheduleRate | string {
  if (typeof expression !== 'string') return 'must be a string such as "rate(5 minutes)"';
  const match = RATE.exec(expression);
  if (!match) {
    return `${JSON.stringify(expression)} is not a rate expression: use "rate(N minutes)", "rate(N hours)" or "rate(N days)" (cron and at expressions are not supported: the staleness alarm needs a fixed period)`;
  }
  const value = Number(match[1]);
  const unit = match[2]!;
  if (value < 1) return `${JSON.stringify(expression)}: the value must be a positive whole number`;
  // EventBridge Scheduler rejects "rate(1 minutes)" and "rate(5 minute)".
  const singular = !unit.endsWith('s');
  if (singular !== (value === 1)) {
    return `${JSON.stringify(expression)}: use the singular unit for 1 and the plural for more (rate(1 minute), rate(5 minutes))`;
  }
  return { expression, minutes: value * UNIT_MINUTES[singular ? unit : unit.slice(0, -1)]! };
}
