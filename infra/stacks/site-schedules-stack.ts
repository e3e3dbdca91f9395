/**
 * One shard of the fleet: a schedule group with one schedule per site of the shard, a staleness alarm
 * per enabled site, the few alarms that page for them, and a dashboard of the shard's stale sites.
 */
import { ArnFormat, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmRule,
  AlarmState,
  AlarmStatusWidget,
  AlarmStatusWidgetSortBy,
  ComparisonOperator,
  CompositeAlarm,
  Dashboard,
  type IAlarm,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
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
import { anyInAlarm, groupForRules, MAX_ALARMS_PER_RULE } from '../monitoring/alarm-groups';
import { notify } from '../monitoring/notify';
import { siteRunMetric } from '../monitoring/sync-metrics';
import type { SyncStackNames } from './sync-stack';

/** Scheduler retries a failed delivery (Lambda throttled or unavailable) this many times before the DLQ. */
export const SCHEDULE_RETRY_ATTEMPTS = 3;
/** The longest an event may wait for a retry in EventBridge Scheduler (its RetryPolicy allows 60 s to 1 day). */
const MAX_EVENT_AGE_MINUTES = 24 * 60;
/** After a fleet outage, a site that is still stale pages once its next run had time to succeed (at most an hour). */
const RECOVERY_MINUTES_CAP = 60;

export interface SiteSchedulesStackProps extends StackProps {
  /** Names the schedule group and prefixes the alarm names: `<name>-sites-<n>`. */
  readonly shardName: string;
  readonly sites: readonly SiteConfig[];
  /** The function, queue and topic of the sync stack, imported by name. */
  readonly sync: SyncStackNames;
  readonly flexibleWindowMinutes: number;
  readonly staleAfterPeriods: number;
  /** Every schedule disabled, and no staleness page. */
  readonly paused: boolean;
}

export class SiteSchedulesStack extends Stack {
  readonly scheduleGroup: ScheduleGroup;
  readonly schedules: Schedule[] = [];
  readonly staleAlarms: Alarm[] = [];
  /** The alarms of this stack that page: any stale site of their group, unless the fleet-outage alarm paged. */
  readonly notSyncing: CompositeAlarm[] = [];
  readonly dashboard: Dashboard;
  private readonly syncFunction: IFunction;
  private readonly deadLetterQueue: IQueue;
  private readonly alarmTopic: ITopic;

  constructor(scope: Construct, id: string, props: SiteSchedulesStackProps) {
    super(scope, id, props);
    const { sync } = props;
    // The alias: a deploy reaches the sites through it (and, gradually, through CodeDeploy).
    this.syncFunction = LambdaFunction.fromFunctionAttributes(this, 'SyncFunction', {
      functionArn: this.formatArn({
        service: 'lambda',
        resource: 'function',
        resourceName: `${sync.functionName}:${sync.aliasName}`,
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
    const role = this.createSchedulerRole(`${sync.functionName}:${sync.aliasName}`);

    const stale = new Map<string, Alarm>();
    for (const site of props.sites) {
      this.schedules.push(this.scheduleSite(site, props, role));
      // A disabled site is not expected to sync: it has no staleness alarm until it is enabled again.
      if (site.enabled) stale.set(this.staleAlarmName(site, props), this.alarmWhenNotSyncing(site, props));
    }
    this.staleAlarms.push(...stale.values());
    this.pageWhenNotSyncing(stale, props);
    this.dashboard = this.staleSitesDashboard(props);
  }

  private staleAlarmName(site: SiteConfig, props: SiteSchedulesStackProps): string {
    return `${props.shardName}-${site.id}-not-syncing`;
  }

  /**
   * The pages of this stack: one composite alarm per group of sites (as many as one alarm rule
   * holds), in ALARM while any site of the group is stale. CloudWatch names the site that set it
   * off in the message. A fleet outage pages once on its own alarm and holds these back; what is
   * still stale once the sites had a run to recover in pages then.
   */
  private pageWhenNotSyncing(stale: ReadonlyMap<string, Alarm>, props: SiteSchedulesStackProps): void {
    const outage: IAlarm = CompositeAlarm.fromCompositeAlarmName(
      this,
      'FleetOutage',
      props.sync.fleetOutageAlarmName,
    );
    const groups = groupForRules([...stale.keys()]);
    const slowest = Math.max(0, ...props.sites.filter((s) => s.enabled).map((s) => s.schedule.minutes));
    const recovery = Math.min(slowest, RECOVERY_MINUTES_CAP) + props.flexibleWindowMinutes + 5;
    groups.forEach((names, i) => {
      const first = names[0]!;
      const last = names.at(-1)!;
      const composite = new CompositeAlarm(this, `NotSyncing${i + 1}`, {
        compositeAlarmName: `${props.shardName}-not-syncing-${i + 1}`,
        alarmDescription: `A site of ${props.shardName} (${names.length} sites, ${first} to ${last}) has had no successful sync for ${props.staleAfterPeriods} of its schedule periods: the alarm named in this message is the site's. Dashboard ${props.shardName} lists every stale site of the stack; the saved Logs Insights query ${props.sync.staleSitesQueryName} their last error code. Another site of the group going stale while this alarm is in ALARM does not page again.`,
        alarmRule: AlarmRule.fromString(anyInAlarm(names)),
        actionsEnabled: !props.paused,
        actionsSuppressor: outage,
        actionsSuppressorWaitPeriod: Duration.minutes(5),
        actionsSuppressorExtensionPeriod: Duration.minutes(recovery),
      });
      // The rule names the alarms as text: CloudFormation must create them first all the same.
      composite.node.addDependency(...names.map((name) => stale.get(name)!));
      this.notSyncing.push(notify(composite, this.alarmTopic));
    });
  }

  /** Where a staleness page sends the on-call: this stack's stale sites, the most recently stale first. */
  private staleSitesDashboard(props: SiteSchedulesStackProps): Dashboard {
    const dashboard = new Dashboard(this, 'Dashboard', { dashboardName: props.shardName });
    dashboard.addWidgets(
      new TextWidget({
        markdown: `# ${props.shardName}: stale sites\nThe sites of this stack with no successful sync for ${props.staleAfterPeriods} of their schedule periods (their alarms in ALARM). Their last error codes: saved Logs Insights query \`${props.sync.staleSitesQueryName}\`, or the dashboard \`${props.sync.functionName}\`.${props.paused ? ' **Paused: every schedule of the fleet is disabled.**' : ''}`,
        width: 24,
        height: 2,
      }),
    );
    for (let start = 0; start < this.staleAlarms.length; start += MAX_ALARMS_PER_RULE) {
      const alarms = this.staleAlarms.slice(start, start + MAX_ALARMS_PER_RULE);
      dashboard.addWidgets(
        new AlarmStatusWidget({
          title: `Stale sites (${start + 1} to ${start + alarms.length} of ${this.staleAlarms.length})`,
          alarms,
          states: [AlarmState.ALARM],
          sortBy: AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
          width: 24,
          height: 6,
        }),
      );
    }
    return dashboard;
  }

  /**
   * One role for the shard's schedules, assumable by EventBridge Scheduler on behalf of this group
   * only (confused-deputy guard). Each LambdaInvoke target grants it the invoke and the DLQ send.
   */
  private createSchedulerRole(aliasArnName: string): Role {
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
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:${aliasArnName}:*]`,
      reason:
        'LambdaInvoke grants the alias it targets and that ARN followed by ":*", which matches no other function; Scheduler invokes the alias live.',
    });
    return role;
  }

  private scheduleSite(site: SiteConfig, props: SiteSchedulesStackProps, role: Role): Schedule {
    const interval = Duration.minutes(site.schedule.minutes);
    return new Schedule(this, `Schedule-${site.id}`, {
      scheduleName: site.id,
      scheduleGroup: this.scheduleGroup,
      description: `meter-sync of site ${site.id}${site.enabled ? '' : ' (disabled: "enabled": false)'}${props.paused ? ' (disabled: the fleet is paused)' : ''}`,
      // Kept when disabled: its history, and a schedule that a deploy turns back on.
      enabled: site.enabled && !props.paused,
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
   * metrics, is exactly the site that must page someone. It pages through its group's composite.
   */
  private alarmWhenNotSyncing(site: SiteConfig, props: SiteSchedulesStackProps): Alarm {
    const periods = props.staleAfterPeriods;
    const alarm = new Alarm(this, `NotSyncing-${site.id}`, {
      alarmName: this.staleAlarmName(site, props),
      alarmDescription: `Site ${site.id} has not synced successfully for ${periods} schedule periods (${periods} x ${site.schedule.expression}).`,
      metric: siteRunMetric(RunMetric.SyncSucceeded, site.id, Duration.minutes(site.schedule.minutes)),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: periods,
      datapointsToAlarm: periods,
      treatMissingData: TreatMissingData.BREACHING,
    });
    return alarm;
  }
}
