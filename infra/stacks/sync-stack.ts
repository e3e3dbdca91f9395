/** The stack every deployment has once: the function and its alias, its queues, the alarm topic, the fleet-wide alarms, the dashboard and the stale-sites query. */
import { CfnOutput, Duration, Fn, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnQueryDefinition, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { defaultRegistry } from '../../lib/entities';
import type { InfraConfig, VpcConfig } from '../config/infra-config';
import { GradualDeployment } from '../constructs/gradual-deployment';
import { LIVE_ALIAS, SyncFunction, type SyncFunctionNetwork } from '../constructs/sync-function';
import { STALE_SITES_QUERY } from '../monitoring/stale-sites-query';
import { SyncAlarms } from '../monitoring/sync-alarms';
import { SyncDashboard } from '../monitoring/sync-dashboard';

/**
 * What a schedules stack needs from this stack, by name rather than by CloudFormation export: the
 * stacks stay independently updatable (an export in use can never change), and a name is stable.
 */
export interface SyncStackNames {
  readonly functionName: string;
  /** The alias schedules invoke. */
  readonly aliasName: string;
  /** While this alarm is in ALARM, the sites' staleness pages no one: the outage already paged. */
  readonly fleetOutageAlarmName: string;
  /** The saved Logs Insights query a staleness page points at. */
  readonly staleSitesQueryName: string;
  readonly scheduleDeadLetterQueueName: string;
  /** The configured topic's ARN, or the name of the topic this stack creates. */
  readonly alarmTopic: { readonly arn: string } | { readonly name: string };
}

export interface SyncStackProps extends StackProps {
  readonly config: InfraConfig;
  /** Only tests point this elsewhere. */
  readonly handlerEntry?: string;
}

/** Imports the configured network by id: no lookup, so synthesis needs no AWS account. */
function importNetwork(scope: Construct, vpc: VpcConfig): SyncFunctionNetwork {
  // The function is given its subnets explicitly, so the VPC needs no subnet lists, and its zones
  // stay the region's (a token): nothing here needs to know them.
  const imported = Vpc.fromVpcAttributes(scope, 'Vpc', { vpcId: vpc.vpcId, availabilityZones: Fn.getAzs() });
  Validations.of(imported).acknowledge({
    id: 'Annotation::@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
    reason:
      'The VPC is imported by id only to place the function in the configured subnets; no construct selects its subnets by zone.',
  });
  const subnets = vpc.subnetIds.map((id) => {
    const subnet = Subnet.fromSubnetId(scope, `Subnet-${id}`, id);
    Validations.of(subnet).acknowledge({
      id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
      reason:
        'Subnets are imported by id without a lookup (synthesis needs no AWS account); nothing reads their route tables.',
    });
    return subnet;
  });
  return {
    vpc: imported,
    subnets,
    securityGroups: vpc.securityGroupIds.map((id) =>
      SecurityGroup.fromSecurityGroupId(scope, `SecurityGroup-${id}`, id, { mutable: false }),
    ),
  };
}

export class SyncStack extends Stack {
  readonly syncFunction: SyncFunction;
  /** EventBridge Scheduler parks here what it could not deliver to the function. */
  readonly scheduleDeadLetterQueue: Queue;
  /** Lambda parks here the asynchronous invocations that failed every attempt. */
  readonly failedInvocationsQueue: Queue;
  readonly alarmTopic: ITopic;
  readonly alarms: SyncAlarms;
  readonly names: SyncStackNames;
  /** With a `deployment` configured: the CodeDeploy canary of every deploy. */
  readonly gradualDeployment?: GradualDeployment;

  constructor(scope: Construct, id: string, props: SyncStackProps) {
    super(scope, id, props);
    const { config } = props;
    const entities = defaultRegistry.names;
    this.names = {
      functionName: config.name,
      aliasName: LIVE_ALIAS,
      fleetOutageAlarmName: `${config.name}-fleet-outage`,
      staleSitesQueryName: `${config.name}/stale-sites`,
      scheduleDeadLetterQueueName: `${config.name}-schedule-dlq`,
      alarmTopic: config.alarms.topicArn
        ? { arn: config.alarms.topicArn }
        : { name: `${config.name}-alarms` },
    };

    this.alarmTopic = this.createAlarmTopic(config);
    this.scheduleDeadLetterQueue = this.createParkingQueue(
      'ScheduleDeadLetterQueue',
      this.names.scheduleDeadLetterQueueName,
    );
    this.failedInvocationsQueue = this.createParkingQueue(
      'FailedInvocationsQueue',
      `${config.name}-failed-invocations`,
    );

    this.syncFunction = new SyncFunction(this, 'SyncFunction', {
      functionName: this.names.functionName,
      remoteSecret: config.remoteSecret,
      siteSecretPrefix: config.siteSecretPrefix,
      ...(config.secretsKmsKeyArn ? { secretsKmsKeyArn: config.secretsKmsKeyArn } : {}),
      secretsTtlSeconds: config.secretsTtlSeconds,
      siteMigrations: config.siteMigrations,
      syncRunRetentionDays: config.syncRunRetentionDays,
      maxDeleteRatio: config.maxDeleteRatio,
      massDeleteMinRows: config.massDeleteMinRows,
      timeout: Duration.seconds(config.timeoutSeconds),
      memorySizeMb: config.memorySizeMb,
      ...(config.reservedConcurrency !== undefined
        ? { reservedConcurrency: config.reservedConcurrency }
        : {}),
      logRetention: config.logRetentionDays as RetentionDays,
      failedInvocations: this.failedInvocationsQueue,
      ...(config.vpc ? { network: importNetwork(this, config.vpc) } : {}),
      logLevel: config.logLevel,
      tracing: config.tracing,
      ...(props.handlerEntry ? { entry: props.handlerEntry } : {}),
    });
    // Raw text: the construct's query builder cannot filter after `stats`.
    new CfnQueryDefinition(this, 'StaleSitesQuery', {
      name: this.names.staleSitesQueryName,
      queryString: STALE_SITES_QUERY,
      logGroupNames: [this.syncFunction.functionLogGroup.logGroupName],
    });

    this.alarms = new SyncAlarms(this, 'Alarms', {
      name: config.name,
      syncFunction: this.syncFunction,
      timeout: Duration.seconds(config.timeoutSeconds),
      entities,
      scheduleDeadLetterQueue: {
        key: 'schedule-dlq',
        queue: this.scheduleDeadLetterQueue,
        meaning:
          'EventBridge Scheduler could not invoke the sync function after its retries (function missing, permission, Lambda throttling). Each message names the schedule, i.e. the site.',
      },
      failedInvocationsQueue: {
        key: 'failed-invocations',
        queue: this.failedInvocationsQueue,
        meaning:
          'A scheduled sync failed every attempt or expired in the Lambda queue. Each message holds the event ({"siteId"}) and the error.',
      },
      topic: this.alarmTopic,
      dashboardName: config.name,
      staleSitesQueryName: this.names.staleSitesQueryName,
    });
    if (config.deployment) {
      this.gradualDeployment = new GradualDeployment(this, 'Deployment', {
        name: config.name,
        alias: this.syncFunction.live,
        canary: config.deployment,
        rollbackAlarms: [this.alarms.functionErrors, this.alarms.runFailed, ...this.alarms.entityFailed],
      });
    }
    new SyncDashboard(this, 'Dashboard', {
      dashboardName: config.name,
      syncFunction: this.syncFunction,
      entities,
      logGroupName: this.syncFunction.functionLogGroup.logGroupName,
      queues: [
        { title: 'schedule DLQ', queue: this.scheduleDeadLetterQueue },
        { title: 'failed invocations', queue: this.failedInvocationsQueue },
      ],
    });

    new CfnOutput(this, 'FunctionName', { value: this.syncFunction.functionName });
    new CfnOutput(this, 'LiveAliasArn', { value: this.syncFunction.live.functionArn });
    new CfnOutput(this, 'ScheduleDeadLetterQueueUrl', { value: this.scheduleDeadLetterQueue.queueUrl });
    new CfnOutput(this, 'FailedInvocationsQueueUrl', { value: this.failedInvocationsQueue.queueUrl });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  /** Encrypted, TLS-only, and kept 14 days: long enough to read and redrive after a weekend. */
  private createParkingQueue(id: string, queueName: string): Queue {
    const queue = new Queue(this, id, {
      queueName,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue (of EventBridge Scheduler or of Lambda asynchronous invocation), which cdk-nag only recognises for SQS redrive policies.',
    });
    return queue;
  }

  /**
   * The existing topic when one is configured; otherwise a new one encrypted with a customer managed
   * key, because CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key.
   */
  private createAlarmTopic(config: InfraConfig): ITopic {
    let topic: ITopic;
    const named = this.names.alarmTopic;
    if ('arn' in named) {
      topic = Topic.fromTopicArn(this, 'AlarmTopic', named.arn);
    } else {
      const key = new Key(this, 'AlarmTopicKey', {
        description: `${config.name}: encrypts the alarm topic`,
        enableKeyRotation: true,
      });
      key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
      topic = new Topic(this, 'AlarmTopic', {
        topicName: named.name,
        displayName: `${config.name} alarms`,
        masterKey: key,
        enforceSSL: true,
      });
    }
    if (config.alarms.email) topic.addSubscription(new EmailSubscription(config.alarms.email));
    return topic;
  }
}
