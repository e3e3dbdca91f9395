/**
 * The fleet-wide alarms of the sync, and the three that page: a fleet outage, failing syncs, slow or
 * throttled runs. Every other alarm here is a condition they combine; it notifies nobody itself.
 */
import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmRule,
  ComparisonOperator,
  CompositeAlarm,
  type IMetric,
  MathExpression,
  Stats,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EntityMetric, RunMetric } from '../../lib/observability/metric-names';
import { anyInAlarm } from './alarm-groups';
import { notify } from './notify';
import { fleetEntityMetric, fleetRunMetric } from './sync-metrics';

/** Duration alarm threshold, as a share of the timeout: a run this slow is about to be cut off. */
export const DURATION_ALARM_SHARE = 0.8;
/** Below this share of successful runs in a period, the fleet as a whole is failing. */
export const FLEET_OUTAGE_SUCCESS_SHARE = 0.5;
const PERIOD = Duration.minutes(5);
/**
 * How long a suppressed alarm waits for the fleet-outage alarm before paging: its conditions and the
 * outage's are read from the same five-minute periods, one of which may reach CloudWatch late.
 */
export const OUTAGE_WAIT = Duration.minutes(10);
/** After an outage, how long before what is still failing pages: the sites' next runs. */
export const OUTAGE_EXTENSION = Duration.minutes(15);

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
  /** EventBridge Scheduler's dead-letter queue: nothing reaches the function. */
  readonly scheduleDeadLetterQueue: ParkedEventsQueue;
  /** Lambda's failed asynchronous invocations. */
  readonly failedInvocationsQueue: ParkedEventsQueue;
  readonly topic: ITopic;
  /** Where a page tells the on-call to look. */
  readonly dashboardName: string;
  readonly staleSitesQueryName: string;
}

type MetricAlarmProps = ConstructorParameters<typeof Alarm>[2] & { metric: IMetric };

export class SyncAlarms extends Construct {
  /** The conditions, none of which notifies by itself. */
  readonly conditions: Alarm[] = [];
  readonly entityFailed: Alarm[] = [];
  /** Runs that failed before any entity ran: no EntityFailed counts them (RunFailed). */
  readonly runFailed: Alarm;
  readonly functionErrors: Alarm;
  /** The alarms that page, each at most once per state change. */
  readonly fleetOutage: CompositeAlarm;
  readonly syncFailing: CompositeAlarm;
  readonly runsSlow: CompositeAlarm;
  /** The alarms' literal names (their `alarmName` is a reference CloudFormation resolves). */
  private readonly names = new Map<Alarm, string>();

  constructor(scope: Construct, id: string, props: SyncAlarmsProps) {
    super(scope, id);
    const { name, syncFunction: fn } = props;
    const where = `Dashboard ${props.dashboardName}; saved Logs Insights query ${props.staleSitesQueryName} lists the sites whose last run failed, with the error code.`;

    // 1. A fleet outage: most runs fail, or the function fails most invocations, or nothing reaches it.
    const runsFailing = this.condition('RunsFailing', {
      alarmName: `${name}-runs-failing`,
      alarmDescription: `Fewer than ${FLEET_OUTAGE_SUCCESS_SHARE * 100}% of the runs of the last 5 minutes succeeded (SyncSucceeded averaged over every site): the remote, the network or the function fails for most sites.`,
      metric: fleetRunMetric(RunMetric.SyncSucceeded, 'AVG', PERIOD),
      threshold: FLEET_OUTAGE_SUCCESS_SHARE,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No runs at all is not this alarm's: the schedule DLQ and the sites' staleness say it.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const invocationsFailing = this.condition('InvocationsFailing', {
      alarmName: `${name}-invocations-failing`,
      alarmDescription:
        'More than half of the invocations of the last 5 minutes failed (function Errors / Invocations): a secret or setting every run needs, a bad deploy.',
      metric: new MathExpression({
        expression: 'errors / invocations',
        usingMetrics: {
          errors: fn.metricErrors({ period: PERIOD, statistic: Stats.SUM }),
          invocations: fn.metricInvocations({ period: PERIOD, statistic: Stats.SUM }),
        },
        label: 'failed share of invocations',
        period: PERIOD,
      }),
      threshold: 0.5,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const scheduleDlq = this.queueNotEmpty(name, props.scheduleDeadLetterQueue);
    this.fleetOutage = new CompositeAlarm(this, 'FleetOutage', {
      compositeAlarmName: `${name}-fleet-outage`,
      alarmDescription: `The fleet as a whole is not syncing: the alarm named in this message says how (${this.namesOf([runsFailing, invocationsFailing, scheduleDlq]).join(', ')}). While it is in ALARM, site staleness and failures page no one: this is the one page of the outage. ${where}`,
      alarmRule: AlarmRule.fromString(
        anyInAlarm(this.namesOf([runsFailing, invocationsFailing, scheduleDlq])),
      ),
    });
    this.fleetOutage.node.addDependency(runsFailing, invocationsFailing, scheduleDlq);

    // 2. Runs that fail while the fleet does not: an entity of a site, an error, a parked invocation.
    for (const entity of props.entities) {
      this.entityFailed.push(
        this.condition(`EntityFailed-${entity}`, {
          alarmName: `${name}-entity-failed-${entity}`,
          alarmDescription: `At least one site failed to sync entity "${entity}" (EntityFailed, summed over all sites). The function log names the site and the error code.`,
          metric: fleetEntityMetric(EntityMetric.EntityFailed, entity, 'SUM', PERIOD),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          // No data means no run; the per-site staleness alarms cover that.
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    this.runFailed = this.condition('RunFailed', {
      alarmName: `${name}-run-failed`,
      alarmDescription:
        "At least one site's run failed before any entity ran (RunFailed, summed over all sites): a connection, the site schema (SITE_NOT_MIGRATED, SITE_SCHEMA_NEWER), a site bound to another tenant (TENANT_MISMATCH), its credentials. The function log names the site and the error code.",
      metric: fleetRunMetric(RunMetric.RunFailed, 'SUM', PERIOD),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.functionErrors = this.condition('FunctionErrors', {
      alarmName: `${name}-function-errors`,
      alarmDescription:
        'The sync function failed instead of returning a result: a bad event, a missing setting, a secret it cannot read or parse, or a timeout. Database trouble is reported in the result, not here.',
      metric: fn.metricErrors({ period: PERIOD, statistic: Stats.SUM }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const failedInvocations = this.queueNotEmpty(name, props.failedInvocationsQueue);
    this.syncFailing = this.pageUnlessOutage(
      'SyncFailing',
      `${name}-sync-failing`,
      `Syncs fail while the fleet as a whole does not: the alarm named in this message says which (an entity, a run that failed before its entities, function errors, parked invocations). ${where}`,
      [...this.entityFailed, this.runFailed, this.functionErrors, failedInvocations],
    );

    // 3. Runs that are slow or cannot start: the capacity the schedules need.
    const throttles = this.condition('FunctionThrottles', {
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
    const slow = this.condition('DurationNearTimeout', {
      alarmName: `${name}-duration-near-timeout`,
      alarmDescription: `The slowest runs (p99) took more than ${DURATION_ALARM_SHARE * 100}% of the ${props.timeout.toSeconds()} s timeout.`,
      metric: fn.metricDuration({ period: PERIOD, statistic: Stats.p(99) }),
      threshold: props.timeout.toMilliseconds() * DURATION_ALARM_SHARE,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.runsSlow = this.pageUnlessOutage(
      'RunsSlow',
      `${name}-runs-slow`,
      `Runs are throttled or near the timeout: the alarm named in this message says which. ${where}`,
      [throttles, slow],
    );

    notify(this.fleetOutage, props.topic);
    notify(this.syncFailing, props.topic);
    notify(this.runsSlow, props.topic);
  }

  /** A composite that pages when any of `alarms` is in ALARM, unless the fleet-outage alarm already paged. */
  private pageUnlessOutage(
    id: string,
    alarmName: string,
    description: string,
    alarms: Alarm[],
  ): CompositeAlarm {
    const composite = new CompositeAlarm(this, id, {
      compositeAlarmName: alarmName,
      alarmDescription: description,
      alarmRule: AlarmRule.fromString(anyInAlarm(this.namesOf(alarms))),
      actionsSuppressor: this.fleetOutage,
      actionsSuppressorWaitPeriod: OUTAGE_WAIT,
      actionsSuppressorExtensionPeriod: OUTAGE_EXTENSION,
    });
    // The rule names the alarms as text: CloudFormation must create them first all the same.
    composite.node.addDependency(...alarms);
    return composite;
  }

  private queueNotEmpty(name: string, { key, queue, meaning }: ParkedEventsQueue): Alarm {
    return this.condition(`QueueNotEmpty-${key}`, {
      alarmName: `${name}-${key}-not-empty`,
      alarmDescription: meaning,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: Stats.MAXIMUM }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }

  private condition(id: string, props: MetricAlarmProps & { alarmName: string }): Alarm {
    const alarm = new Alarm(this, id, props);
    this.conditions.push(alarm);
    this.names.set(alarm, props.alarmName);
    return alarm;
  }

  private namesOf(alarms: readonly Alarm[]): string[] {
    return alarms.map((alarm) => this.names.get(alarm)!);
  }
}
