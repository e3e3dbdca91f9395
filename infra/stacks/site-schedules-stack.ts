/** One shard of the fleet: a schedule group with one schedule and one staleness alarm per site of the shard. */
import { ArnFormat, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { type IFunction, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import {
  Schedule,
  ScheduleExpression,
  ScheduleGroup,
  ScheduleTargetInput,
  TimeWindow,
} from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { type IQueue, Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { RunMetric } from '../../lib/observability/metric-names';
import type { SiteConfig } from '../config/infra-config';
import { notify } from '../monitoring/notify';
import { siteRunMetric } from '../monitoring/sync-metrics';
import type { SyncStackNames } from './sync-stack';

/** Scheduler retries a failed delivery (Lambda throttled or unavailable) this many times before the DLQ. */
export const SCHEDULE_RETRY_ATTEMPTS = 3;
/** The longest an event may wait for a retry in EventBridge Scheduler (its RetryPolicy allows 60 s to 1 day). */
const MAX_EVENT_AGE_MINUTES = 24 * 60;

export interface SiteSchedulesStackProps extends StackProps {
  /** Names the schedule group and prefixes the alarm names: `<name>-sites-<n>`. */
  readonly shardName: string;
  readonly sites: readonly SiteConfig[];
  /** The function, queue and topic of the sync stack, imported by name. */
  readonly sync: SyncStackNames;
  readonly flexibleWindowMinutes: number;
  readonly staleAfterPeriods: number;
}

export class SiteSchedulesStack extends Stack {
  readonly scheduleGroup: ScheduleGroup;
  readonly schedules: Schedule[] = [];
  readonly staleAlarms: Alarm[] = [];
  private readonly syncFunction: IFunction;
  private readonly deadLetterQueue: IQueue;
  private readonly alarmTopic: ITopic;

  constructor(scope: Construct, id: string, props: SiteSchedulesStackProps) {
    super(scope, id, props);
    const { sync } = props;
    this.syncFunction = LambdaFunction.fromFunctionAttributes(this, 'SyncFunction', {
      functionArn: this.formatArn({
        service: 'lambda',
        resource: 'function',
        resourceName: sync.functionName,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
      sameEnvironment: true,
    });
    this.deadLetterQueue = Queue.fromQueueArn(
      this,
      'ScheduleDeadLetterQueue',
      this.formatArn({ service: 'sqs', resource: sync.scheduleDeadLetterQueueName }),
    );
    this.alarmTopic = Topic.fromTopicArn(
      this,
      'AlarmTopic',
      'arn' in sync.alarmTopic
        ? sync.alarmTopic.arn
        : this.formatArn({ service: 'sns', resource: sync.alarmTopic.name }),
    );
    this.scheduleGroup = new ScheduleGroup(this, 'Group', { scheduleGroupName: props.shardName });
    const role = this.createSchedulerRole(sync.functionName);

    for (const site of props.sites) {
      this.schedules.push(this.scheduleSite(site, props, role));
      this.staleAlarms.push(this.alarmWhenNotSyncing(site, props));
    }
  }

  /**
   * One role for the shard's schedules, assumable by EventBridge Scheduler on behalf of this group
   * only (confused-deputy guard). Each LambdaInvoke target grants it the invoke and the DLQ send.
   */
  private createSchedulerRole(functionName: string): Role {
    const role = new Role(this, 'SchedulerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': this.account,
            'aws:SourceArn': this.scheduleGroup.scheduleGroupArn,
          },
        },
      }),
      description: 'EventBridge Scheduler invokes the meter-sync function for the sites of this group',
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:${functionName}:*]`,
      reason:
        'LambdaInvoke grants the function and its qualified ARNs (versions, aliases) of this one function only; Scheduler invokes the unqualified ARN.',
    });
    return role;
  }

  private scheduleSite(site: SiteConfig, props: SiteSchedulesStackProps, role: Role): Schedule {
    const interval = Duration.minutes(site.schedule.minutes);
    return new Schedule(this, `Schedule-${site.id}`, {
      scheduleName: site.id,
      scheduleGroup: this.scheduleGroup,
      description: `meter-sync of site ${site.id}`,
      schedule: ScheduleExpression.expression(site.schedule.expression),
      // Spreads the fleet's runs over the window instead of hitting the remote all at once.
      timeWindow:
        props.flexibleWindowMinutes > 0
          ? TimeWindow.flexible(Duration.minutes(props.flexibleWindowMinutes))
          : TimeWindow.off(),
      target: new LambdaInvoke(this.syncFunction, {
        role,
        input: ScheduleTargetInput.fromObject({ siteId: site.id }),
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: SCHEDULE_RETRY_ATTEMPTS,
        // An event older than one interval is superseded by the next run; Scheduler keeps none
        // longer than a day.
        maxEventAge:
          site.schedule.minutes <= MAX_EVENT_AGE_MINUTES ? interval : Duration.minutes(MAX_EVENT_AGE_MINUTES),
      }),
    });
  }

  /**
   * Fires when a site had no successful sync in `staleAfterPeriods` consecutive schedule periods.
   * Missing data breaches: a site whose function never runs, or never gets as far as emitting
   * metrics, is exactly the site that must page someone.
   */
  private alarmWhenNotSyncing(site: SiteConfig, props: SiteSchedulesStackProps): Alarm {
    const periods = props.staleAfterPeriods;
    const alarm = new Alarm(this, `NotSyncing-${site.id}`, {
      alarmName: `${props.shardName}-${site.id}-not-syncing`,
      alarmDescription: `Site ${site.id} has not synced successfully for ${periods} schedule periods (${periods} x ${site.schedule.expression}).`,
      metric: siteRunMetric(RunMetric.SyncSucceeded, site.id, Duration.minutes(site.schedule.minutes)),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: periods,
      datapointsToAlarm: periods,
      treatMissingData: TreatMissingData.BREACHING,
    });
    return notify(alarm, this.alarmTopic);
  }
}
