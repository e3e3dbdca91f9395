/** The fleet-wide alarms of the sync: entity failures, function errors, throttles, duration near the timeout, parked events. */
import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IMetric, Stats, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EntityMetric } from '../../lib/observability/metric-names';
import { notify } from './notify';
import { fleetEntityMetric } from './sync-metrics';

/** Duration alarm threshold, as a share of the timeout: a run this slow is about to be cut off. */
export const DURATION_ALARM_SHARE = 0.8;
const PERIOD = Duration.minutes(5);

export interface ParkedEventsQueue {
  /** The alarm is named `<name>-<key>-not-empty`. */
  readonly key: string;
  readonly queue: IQueue;
  /** What a message in it means, for the person paged. */
  readonly meaning: string;
}

export interface SyncAlarmsProps {
  /** Prefix of the alarm names. */
  readonly name: string;
  readonly syncFunction: IFunction;
  readonly timeout: Duration;
  readonly entities: readonly string[];
  /** Queues that must stay empty. */
  readonly deadLetterQueues: readonly ParkedEventsQueue[];
  readonly topic: ITopic;
}

export class SyncAlarms extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: SyncAlarmsProps) {
    super(scope, id);
    const { name, syncFunction: fn } = props;

    for (const entity of props.entities) {
      this.add(`EntityFailed-${entity}`, {
        alarmName: `${name}-entity-failed-${entity}`,
        alarmDescription: `At least one site failed to sync entity "${entity}" (EntityFailed, summed over all sites). The function log names the site and the error code.`,
        metric: fleetEntityMetric(EntityMetric.EntityFailed, entity, 'SUM', PERIOD),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // No data means no run; the per-site staleness alarms cover that.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    this.add('FunctionErrors', {
      alarmName: `${name}-function-errors`,
      alarmDescription:
        'The sync function failed instead of returning a result: a bad event, a missing setting, a secret it cannot read or parse, or a timeout. Database trouble is reported in the result, not here.',
      metric: fn.metricErrors({ period: PERIOD, statistic: Stats.SUM }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.add('FunctionThrottles', {
      alarmName: `${name}-function-throttles`,
      alarmDescription:
        'Invocations were throttled in each of the last 15 minutes: the concurrency cap (or the account quota) cannot keep up with the schedules.',
      metric: fn.metricThrottles({ period: PERIOD, statistic: Stats.SUM }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // Lambda retries a throttled asynchronous invocation by itself: only sustained throttling matters.
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.add('DurationNearTimeout', {
      alarmName: `${name}-duration-near-timeout`,
      alarmDescription: `The slowest runs (p99) took more than ${DURATION_ALARM_SHARE * 100}% of the ${props.timeout.toSeconds()} s timeout.`,
      metric: fn.metricDuration({ period: PERIOD, statistic: Stats.p(99) }),
      threshold: props.timeout.toMilliseconds() * DURATION_ALARM_SHARE,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    for (const { key, queue, meaning } of props.deadLetterQueues) {
      this.add(`QueueNotEmpty-${key}`, {
        alarmName: `${name}-${key}-not-empty`,
        alarmDescription: meaning,
        metric: queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: Stats.MAXIMUM }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }
    for (const alarm of this.alarms) notify(alarm, props.topic);
  }

  private add(id: string, props: ConstructorParameters<typeof Alarm>[2] & { metric: IMetric }): void {
    this.alarms.push(new Alarm(this, id, props));
  }
}
