/**
 * The synthesized templates of a small deployment: the function, least-privilege IAM, encryption,
 * one schedule per site, every alarm with its metric, dimensions, threshold and missing-data
 * treatment, the dashboard, and cdk-nag. Two syntheses for the whole file (shared with beforeAll).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { defaultRegistry } from '../../lib/entities';
import {
  EntityMetric,
  METRICS_NAMESPACE,
  RunMetric,
  SERVICE_NAME,
} from '../../lib/observability/metric-names';
import { rawConfig, SYNTH_TIMEOUT_MS, type Synthesized, synthesize, untagged } from './synthesize';

const VPC = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  subnetIds: ['subnet-0a1b2c3d4e5f60711', 'subnet-0a1b2c3d4e5f60722'],
  securityGroupIds: ['sg-0a1b2c3d4e5f60733'],
};
const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:oncall';
const REMOTE_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/remote-AbCdEf';
const KMS_KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

// biome-ignore lint/suspicious/noExplicitAny: a synthesized template is untyped JSON, as aws-cdk-lib/assertions returns it.
type CfnProperties = Record<string, any>;

/** `arn:${Partition}:<service>:${Region}:${AccountId}:<rest>` as CloudFormation renders a formatted ARN. */
function stackArn(service: string, rest: string): unknown {
  return {
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        `:${service}:`,
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        `:${rest}`,
      ],
    ],
  };
}

function onlyResource(template: Template, type: string, props: Record<string, unknown> = {}): CfnProperties {
  const found = Object.values(template.findResources(type, { Properties: Match.objectLike(props) }));
  expect(found).toHaveLength(1);
  return found[0]!.Properties;
}

function policyStatements(template: Template, roleLogicalIdPrefix: string): CfnProperties[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
    p.Properties.Roles.some((r: { Ref: string }) => r.Ref.startsWith(roleLogicalIdPrefix)),
  );
  expect(policies).toHaveLength(1);
  return policies[0]!.Properties.PolicyDocument.Statement;
}

describe('meter-sync CDK app (VPC, e-mail alarms, reserved concurrency)', () => {
  let synthesized: Synthesized;
  let sync: Template;
  let sites: Template;

  beforeAll(() => {
    synthesized = synthesize(
      rawConfig({ vpc: VPC, reservedConcurrency: 20, timeoutSeconds: 120, staleAfterPeriods: 4 }),
    );
    sync = synthesized.sync;
    [sites] = synthesized.siteSchedules as [Template];
    console.info(`synthesized the 3-site app in ${synthesized.durationMs} ms`);
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => synthesized?.cleanup());

  describe('the function', () => {
    it('runs Node.js 24 on ARM64 with a timeout under the schedule interval, in the configured VPC', () => {
      const fn = onlyResource(sync, 'AWS::Lambda::Function');
      expect(fn).toMatchObject({
        FunctionName: 'meter-sync',
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        Timeout: 120,
        MemorySize: 1024,
        ReservedConcurrentExecutions: 20,
        VpcConfig: { SubnetIds: VPC.subnetIds, SecurityGroupIds: VPC.securityGroupIds },
        LoggingConfig: { LogGroup: { Ref: expect.stringMatching(/^SyncFunctionLogs/) } },
      });
    });

    it('gets its settings from the configuration and its metric names from the shared constants', () => {
      expect(onlyResource(sync, 'AWS::Lambda::Function').Environment.Variables).toEqual({
        REMOTE_SECRET_ID: 'meter-sync/remote',
        SITE_SECRET_PREFIX: 'meter-sync/site/',
        SECRETS_TTL_SECONDS: '300',
        // The defaults: a sync migrates an out-of-date site first, and sync_run keeps 30 days.
        SITE_MIGRATIONS: 'auto',
        SYNC_RUN_RETENTION_DAYS: '30',
        // The mass-delete guard's defaults: half of 20 rows or more, never all of them.
        MAX_DELETE_RATIO: '0.5',
        MASS_DELETE_MIN_ROWS: '20',
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        // The defaults: INFO, and traced.
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_TRACE_ENABLED: 'true',
        // Small semi-spaces, and an allocator that gives freed memory back (memory-settings.ts), as the bench measures it.
        NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=2',
        MALLOC_MMAP_THRESHOLD_: '131072',
        MALLOC_TRIM_THRESHOLD_: '131072',
      });
    });

    it('is traced by X-Ray (active tracing), as Powertools Tracer needs', () => {
      expect(onlyResource(sync, 'AWS::Lambda::Function').TracingConfig).toEqual({ Mode: 'Active' });
    });

    it('publishes a version per deploy behind the alias live, whose asynchronous invocations are retried once and parked', () => {
      const version = Object.keys(sync.findResources('AWS::Lambda::Version'));
      expect(version).toHaveLength(1);
      expect(onlyResource(sync, 'AWS::Lambda::Alias')).toMatchObject({
        Name: 'live',
        FunctionName: { Ref: expect.stringMatching(/^SyncFunction/) },
        FunctionVersion: { 'Fn::GetAtt': [version[0], 'Version'] },
      });
      // Without a `deployment`, CloudFormation moves the alias at once: no CodeDeploy.
      sync.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 0);
      const configs = Object.values(sync.findResources('AWS::Lambda::EventInvokeConfig')).map(
        (c) => c.Properties,
      );
      // The alias's qualifier is read off its ARN by CloudFormation.
      expect(configs.map((c) => c.Qualifier)).toEqual([
        '$LATEST',
        { 'Fn::Select': [7, { 'Fn::Split': [':', { Ref: expect.stringMatching(/^SyncFunctionLive/) }] }] },
      ]);
      for (const config of configs) {
        expect(config).toMatchObject({
          MaximumRetryAttempts: 1,
          MaximumEventAgeInSeconds: 3600,
          DestinationConfig: {
            OnFailure: {
              Destination: { 'Fn::GetAtt': [expect.stringMatching(/^FailedInvocationsQueue/), 'Arn'] },
            },
          },
        });
      }
    });

    it('writes to its own log group, kept for the configured days', () => {
      expect(onlyResource(sync, 'AWS::Logs::LogGroup')).toMatchObject({
        LogGroupName: '/aws/lambda/meter-sync',
        RetentionInDays: 30,
      });
    });

    it('is bundled by local esbuild (there is no Docker here) into one minified file and its tracing file, with source maps', () => {
      const key: string = onlyResource(sync, 'AWS::Lambda::Function').Code.S3Key;
      const asset = join(synthesized.assembly.directory, `asset.${key.replace(/\.zip$/, '')}`);
      expect(readdirSync(asset).sort()).toEqual([
        'index.js',
        'index.js.map',
        'xray-tracing.js',
        'xray-tracing.js.map',
      ]);
      // The handler requires the tracing file beside it, which holds the X-Ray SDK; index.js does not.
      expect(readFileSync(join(asset, 'index.js'), 'utf8')).toContain('require("./xray-tracing")');
      expect(readFileSync(join(asset, 'index.js'), 'utf8')).not.toContain('AWSXRay');
      expect(readFileSync(join(asset, 'xray-tracing.js'), 'utf8')).toContain('AWSXRay');
      // Bundled as `npm run build` does (functions/sync/bundling.ts): the SDK's ES module builds, without
      // the credential sources Lambda never has (their STS and SSO clients), within the size budget.
      const code = readFileSync(join(asset, 'index.js'), 'utf8');
      expect(code).toContain("credentials are not in the sync function's bundle");
      expect(code).not.toContain('sso-oidc');
      expect(Buffer.byteLength(code)).toBeLessThanOrEqual(650 * 1024);
    });
  });

  describe('least privilege', () => {
    it('lets the function read the remote secret and the site secrets, write its log group and traces, and manage its ENIs; nothing else', () => {
      const statements = policyStatements(sync, 'SyncFunctionRole');
      expect(statements).toEqual([
        {
          Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          Effect: 'Allow',
          Resource: '*',
        },
        {
          Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
          Effect: 'Allow',
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^FailedInvocationsQueue/), 'Arn'] },
        },
        {
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Effect: 'Allow',
          Resource: { 'Fn::GetAtt': [expect.stringMatching(/^SyncFunctionLogs/), 'Arn'] },
        },
        {
          Sid: 'ReadMeterSyncSecrets',
          Action: 'secretsmanager:GetSecretValue',
          Effect: 'Allow',
          Resource: [
            stackArn('secretsmanager', 'secret:meter-sync/remote-??????'),
            stackArn('secretsmanager', 'secret:meter-sync/site/*'),
          ],
        },
        {
          Sid: 'ManageLambdaNetworkInterfaces',
          Action: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          Effect: 'Allow',
          Resource: '*',
        },
      ]);
    });

    it('attaches no managed policy to the function role (they grant logs on every log group)', () => {
      const role = onlyResource(sync, 'AWS::IAM::Role', {
        AssumeRolePolicyDocument: Match.objectLike({
          Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })],
        }),
      });
      expect(role.ManagedPolicyArns).toBeUndefined();
    });

    it('lets the schedulers invoke only the alias live of the sync function and send only to the schedule DLQ, assumed for their own group', () => {
      expect(policyStatements(sites, 'SchedulerRole')).toEqual([
        {
          Action: 'lambda:InvokeFunction',
          Effect: 'Allow',
          Resource: [
            stackArn('lambda', 'function:meter-sync:live'),
            stackArn('lambda', 'function:meter-sync:live:*'),
          ],
        },
        { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: stackArn('sqs', 'meter-sync-schedule-dlq') },
      ]);
      expect(onlyResource(sites, 'AWS::IAM::Role').AssumeRolePolicyDocument.Statement).toEqual([
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: {
            StringEquals: {
              'aws:SourceAccount': { Ref: 'AWS::AccountId' },
              'aws:SourceArn': { 'Fn::GetAtt': [expect.stringMatching(/^Group/), 'Arn'] },
            },
          },
        },
      ]);
    });
  });

  describe('encryption', () => {
    it('encrypts both queues and refuses requests without TLS', () => {
      const queues = sync.findResources('AWS::SQS::Queue');
      expect(Object.values(queues).map((q) => q.Properties)).toEqual([
        {
          QueueName: 'meter-sync-schedule-dlq',
          SqsManagedSseEnabled: true,
          MessageRetentionPeriod: 1209600,
          Tags: [{ Key: 'project', Value: 'meter-sync' }],
        },
        {
          QueueName: 'meter-sync-failed-invocations',
          SqsManagedSseEnabled: true,
          MessageRetentionPeriod: 1209600,
          Tags: [{ Key: 'project', Value: 'meter-sync' }],
        },
      ]);
      for (const logicalId of Object.keys(queues)) {
        sync.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: logicalId }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({
                Effect: 'Deny',
                Action: 'sqs:*',
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              }),
            ]),
          },
        });
      }
    });

    it('encrypts the alarm topic with a rotating key CloudWatch may use, requires TLS, and subscribes the e-mail', () => {
      const topic = onlyResource(sync, 'AWS::SNS::Topic');
      expect(topic).toMatchObject({
        TopicName: 'meter-sync-alarms',
        KmsMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^AlarmTopicKey/), 'Arn'] },
      });
      const key = onlyResource(sync, 'AWS::KMS::Key');
      expect(key.EnableKeyRotation).toBe(true);
      expect(key.KeyPolicy.Statement).toContainEqual({
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Resource: '*',
      });
      sync.hasResourceProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
      expect(onlyResource(sync, 'AWS::SNS::Subscription')).toMatchObject({
        Protocol: 'email',
        Endpoint: 'oncall@example.com',
      });
    });
  });

  describe('schedules', () => {
    it('has one schedule per site, named after it, invoking the alias live with {"siteId"}, retrying, with a DLQ', () => {
      const schedules = Object.values(sites.findResources('AWS::Scheduler::Schedule')).map(
        (s) => s.Properties,
      );
      expect(schedules.map((s) => [s.Name, s.ScheduleExpression, JSON.parse(s.Target.Input)])).toEqual([
        ['plant-north', 'rate(5 minutes)', { siteId: 'plant-north' }],
        ['plant-south', 'rate(5 minutes)', { siteId: 'plant-south' }],
        ['office-hq', 'rate(15 minutes)', { siteId: 'office-hq' }],
      ]);
      for (const schedule of schedules) {
        expect(schedule).toMatchObject({
          GroupName: 'meter-sync-sites-1',
          State: 'ENABLED',
          FlexibleTimeWindow: { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 2 },
          Target: {
            // The alias: every schedule runs the version the last deploy published.
            Arn: stackArn('lambda', 'function:meter-sync:live'),
            RoleArn: { 'Fn::GetAtt': [expect.stringMatching(/^SchedulerRole/), 'Arn'] },
            DeadLetterConfig: { Arn: stackArn('sqs', 'meter-sync-schedule-dlq') },
            RetryPolicy: { MaximumRetryAttempts: 3 },
          },
        });
      }
      // An event older than one interval is superseded by the next run.
      expect(schedules.map((s) => s.Target.RetryPolicy.MaximumEventAgeInSeconds)).toEqual([300, 300, 900]);
      expect(onlyResource(sites, 'AWS::Scheduler::ScheduleGroup')).toMatchObject({
        Name: 'meter-sync-sites-1',
      });
    });

    it('depends on the sync stack by name, not by CloudFormation export', () => {
      expect(synthesized.stacks.siteSchedules[0]!.dependencies).toEqual([synthesized.stacks.sync]);
      expect(JSON.stringify(sites.toJSON())).not.toContain('Fn::ImportValue');
      expect(Object.keys(sync.toJSON().Outputs).filter((name) => name.startsWith('Exports'))).toEqual([]);
    });
  });

  describe('alarms', () => {
    const topicRef = { Ref: expect.stringMatching(/^AlarmTopic/) };

    function alarm(template: Template, name: string): CfnProperties {
      return onlyResource(template, 'AWS::CloudWatch::Alarm', { AlarmName: name });
    }

    function composite(template: Template, name: string): CfnProperties {
      return onlyResource(template, 'AWS::CloudWatch::CompositeAlarm', { AlarmName: name });
    }

    /** The alarm names an alarm rule is made of, in order. */
    function ruleNames(rule: string): string[] {
      return [...rule.matchAll(/ALARM\("([^"]+)"\)/g)].map((m) => m[1]!);
    }

    it('watches each site for N of its schedule periods without a successful sync, missing data breaching, notifying no one itself', () => {
      const alarms = Object.values(sites.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
      expect(alarms.map((a) => [a.AlarmName, a.Period])).toEqual([
        ['meter-sync-sites-1-plant-north-not-syncing', 300],
        ['meter-sync-sites-1-plant-south-not-syncing', 300],
        ['meter-sync-sites-1-office-hq-not-syncing', 900],
      ]);
      for (const [i, siteId] of ['plant-north', 'plant-south', 'office-hq'].entries()) {
        expect(alarms[i]).toMatchObject({
          Namespace: METRICS_NAMESPACE,
          MetricName: RunMetric.SyncSucceeded,
          Dimensions: [
            { Name: 'SiteId', Value: siteId },
            { Name: 'service', Value: SERVICE_NAME },
          ],
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'LessThanThreshold',
          EvaluationPeriods: 4,
          DatapointsToAlarm: 4,
          TreatMissingData: 'breaching',
        });
        expect(alarms[i]!.AlarmActions).toBeUndefined();
      }
    });

    it("pages for the shard's stale sites through one composite alarm, held back while the fleet-outage alarm has paged", () => {
      const page = composite(sites, 'meter-sync-sites-1-not-syncing-1');
      expect(ruleNames(page.AlarmRule)).toEqual([
        'meter-sync-sites-1-plant-north-not-syncing',
        'meter-sync-sites-1-plant-south-not-syncing',
        'meter-sync-sites-1-office-hq-not-syncing',
      ]);
      expect(page).toMatchObject({
        ActionsEnabled: true,
        ActionsSuppressor: stackArn('cloudwatch', 'alarm:meter-sync-fleet-outage'),
        ActionsSuppressorWaitPeriod: 300,
        // The slowest site (15 minutes) plus the flexible window and five minutes: its next run.
        ActionsSuppressorExtensionPeriod: (15 + 2 + 5) * 60,
        AlarmActions: [stackArn('sns', 'meter-sync-alarms')],
        OKActions: [stackArn('sns', 'meter-sync-alarms')],
      });
      // The page says where to look.
      expect(page.AlarmDescription).toContain('Dashboard meter-sync-sites-1 lists every stale site');
      expect(page.AlarmDescription).toContain('meter-sync/stale-sites');
    });

    it('pages a fleet outage once: most runs failing, most invocations failing, or nothing reaching the function', () => {
      const outage = composite(sync, 'meter-sync-fleet-outage');
      expect(ruleNames(outage.AlarmRule)).toEqual([
        'meter-sync-runs-failing',
        'meter-sync-invocations-failing',
        'meter-sync-schedule-dlq-not-empty',
      ]);
      expect(outage).toMatchObject({ AlarmActions: [topicRef], OKActions: [topicRef] });
      expect(outage.ActionsSuppressor).toBeUndefined();
      expect(alarm(sync, 'meter-sync-runs-failing')).toMatchObject({
        Metrics: [
          {
            Expression: `SELECT AVG(${RunMetric.SyncSucceeded}) FROM SCHEMA("${METRICS_NAMESPACE}", SiteId, service) WHERE service = '${SERVICE_NAME}'`,
            Period: 300,
          },
        ],
        Threshold: 0.5,
        ComparisonOperator: 'LessThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
      expect(alarm(sync, 'meter-sync-run-failed')).toMatchObject({
        Metrics: [
          {
            Expression: `SELECT SUM(${RunMetric.RunFailed}) FROM SCHEMA("${METRICS_NAMESPACE}", SiteId, service) WHERE service = '${SERVICE_NAME}'`,
            Period: 300,
          },
        ],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      const invocations = alarm(sync, 'meter-sync-invocations-failing');
      expect(invocations).toMatchObject({ Threshold: 0.5, ComparisonOperator: 'GreaterThanThreshold' });
      expect(
        invocations.Metrics.map(
          (m: { Expression?: string; MetricStat?: { Metric: { MetricName: string } } }) =>
            m.Expression ?? m.MetricStat?.Metric.MetricName,
        ),
      ).toEqual(['errors / invocations', 'Errors', 'Invocations']);
    });

    it('pages failing syncs (an entity, a run that failed before its entities, function errors, parked invocations) and slow or throttled runs, unless the outage paged', () => {
      for (const [name, children] of [
        [
          'meter-sync-sync-failing',
          [
            ...defaultRegistry.names.map((entity) => `meter-sync-entity-failed-${entity}`),
            'meter-sync-run-failed',
            'meter-sync-function-errors',
            'meter-sync-failed-invocations-not-empty',
          ],
        ],
        ['meter-sync-runs-slow', ['meter-sync-function-throttles', 'meter-sync-duration-near-timeout']],
      ] as const) {
        const page = composite(sync, name);
        expect(ruleNames(page.AlarmRule)).toEqual(children);
        expect(page).toMatchObject({
          ActionsSuppressor: { 'Fn::GetAtt': [expect.stringMatching(/FleetOutage/), 'Arn'] },
          ActionsSuppressorWaitPeriod: 600,
          ActionsSuppressorExtensionPeriod: 900,
          AlarmActions: [topicRef],
          OKActions: [topicRef],
        });
      }
    });

    it('watches EntityFailed per entity type, summed over sites with the exact dimensions the function emits', () => {
      for (const entity of defaultRegistry.names) {
        expect(alarm(sync, `meter-sync-entity-failed-${entity}`)).toMatchObject({
          Metrics: [
            {
              Id: expect.any(String),
              Expression: `SELECT SUM(${EntityMetric.EntityFailed}) FROM SCHEMA("${METRICS_NAMESPACE}", Entity, SiteId, service) WHERE Entity = '${entity}' AND service = '${SERVICE_NAME}'`,
              Period: 300,
              ReturnData: true,
            },
          ],
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          EvaluationPeriods: 1,
          TreatMissingData: 'notBreaching',
        });
      }
    });

    it('watches function errors, sustained throttles, and p99 duration above 80% of the timeout', () => {
      const lambdaMetric = (metric: string) => ({
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: expect.stringMatching(/^SyncFunction/) } }],
        TreatMissingData: 'notBreaching',
      });
      expect(alarm(sync, 'meter-sync-function-errors')).toMatchObject({
        ...lambdaMetric('Errors'),
        Statistic: 'Sum',
        Period: 300,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 1,
      });
      expect(alarm(sync, 'meter-sync-function-throttles')).toMatchObject({
        ...lambdaMetric('Throttles'),
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
      });
      expect(alarm(sync, 'meter-sync-duration-near-timeout')).toMatchObject({
        ...lambdaMetric('Duration'),
        ExtendedStatistic: 'p99',
        Threshold: 120_000 * 0.8,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    });

    it('watches either dead-letter queue for a message', () => {
      for (const [name, queue] of [
        ['meter-sync-schedule-dlq-not-empty', '^ScheduleDeadLetterQueue'],
        ['meter-sync-failed-invocations-not-empty', '^FailedInvocationsQueue'],
      ] as const) {
        expect(alarm(sync, name)).toMatchObject({
          Namespace: 'AWS/SQS',
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Dimensions: [
            {
              Name: 'QueueName',
              Value: { 'Fn::GetAtt': [expect.stringMatching(new RegExp(queue)), 'QueueName'] },
            },
          ],
          Statistic: 'Maximum',
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          TreatMissingData: 'notBreaching',
        });
      }
    });

    it('has exactly these alarms, and only the composite ones notify', () => {
      expect(Object.keys(sync.findResources('AWS::CloudWatch::Alarm'))).toHaveLength(
        defaultRegistry.names.length + 8,
      );
      expect(Object.keys(sites.findResources('AWS::CloudWatch::Alarm'))).toHaveLength(3);
      for (const template of [sync, sites]) {
        for (const a of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
          expect(a.Properties.AlarmActions).toBeUndefined();
          expect(a.Properties.OKActions).toBeUndefined();
        }
      }
      const notifying = (template: Template) =>
        Object.values(template.findResources('AWS::CloudWatch::CompositeAlarm')).map(
          (a) => a.Properties.AlarmName,
        );
      expect(notifying(sync)).toEqual([
        'meter-sync-fleet-outage',
        'meter-sync-sync-failing',
        'meter-sync-runs-slow',
      ]);
      expect(notifying(sites)).toEqual(['meter-sync-sites-1-not-syncing-1']);
    });

    it('keeps a saved Logs Insights query of the sites whose last run failed, with their last error code', () => {
      const query = onlyResource(sync, 'AWS::Logs::QueryDefinition');
      expect(query.Name).toBe('meter-sync/stale-sites');
      expect(query.LogGroupNames).toEqual([{ Ref: expect.stringMatching(/^SyncFunctionLogs/) }]);
      expect(query.QueryString).toContain(
        'stats latest(status) as lastStatus, latest(error.code) as lastErrorCode',
      );
      expect(query.QueryString).toContain('filter lastStatus != "ok"');
    });

    it("gives each schedules stack a dashboard of its stale sites, the page's first place to look", () => {
      const dashboard = onlyResource(sites, 'AWS::CloudWatch::Dashboard');
      expect(dashboard.DashboardName).toBe('meter-sync-sites-1');
      const body = JSON.stringify(dashboard.DashboardBody);
      expect(body).toContain('Stale sites (1 to 3 of 3)');
      expect(body).toContain('\\"states\\":[\\"ALARM\\"]');
      for (const logicalId of Object.keys(sites.findResources('AWS::CloudWatch::Alarm'))) {
        expect(body).toContain(`{"Fn::GetAtt":["${logicalId}","Arn"]}`);
      }
    });
  });

  it('has a dashboard with rows inserted, updated, deleted and skipped per entity, and the sync duration', () => {
    const dashboard = onlyResource(sync, 'AWS::CloudWatch::Dashboard');
    expect(dashboard.DashboardName).toBe('meter-sync');
    // The body is a Fn::Join around the region and resource references; only the literal parts matter here.
    const body = JSON.parse(
      dashboard.DashboardBody['Fn::Join'][1]
        .map((part: unknown) => (typeof part === 'string' ? part : 'REF'))
        .join(''),
    );
    const graphs = new Map<string, string[]>(
      body.widgets
        .filter((w: { type: string }) => w.type === 'metric')
        .map((w: { properties: { title: string; metrics: unknown[][] } }) => [
          w.properties.title,
          w.properties.metrics.map((m) => {
            const last = m.at(-1) as { expression?: string };
            return last.expression ?? m.slice(0, 2).join(' ');
          }),
        ]),
    );
    const insights = (metric: string, entity: string) =>
      `SELECT SUM(${metric}) FROM SCHEMA("MeterSync", Entity, SiteId, service) WHERE Entity = '${entity}' AND service = 'meter-sync'`;
    for (const entity of defaultRegistry.names) {
      expect(graphs.get(`${entity}: rows inserted, updated, deleted, skipped`)).toEqual(
        ['RowsInserted', 'RowsUpdated', 'RowsDeleted', 'RowsSkipped'].map((metric) =>
          insights(metric, entity),
        ),
      );
      expect(graphs.get(`${entity}: failures and step duration`)?.[0]).toBe(insights('EntityFailed', entity));
    }
    expect(graphs.get('Sync duration (ms)')).toEqual([
      `SELECT AVG(SyncDurationMs) FROM SCHEMA("MeterSync", SiteId, service) WHERE service = 'meter-sync'`,
      `SELECT MAX(SyncDurationMs) FROM SCHEMA("MeterSync", SiteId, service) WHERE service = 'meter-sync'`,
      'AWS/Lambda Duration',
    ]);
    expect(graphs.get('Site schema migrations applied (all sites)')).toEqual([
      `SELECT SUM(SiteMigrated) FROM SCHEMA("MeterSync", SiteId, service) WHERE service = 'meter-sync'`,
    ]);
  });

  it('tags every resource that takes tags with project: meter-sync', () => {
    for (const stack of [synthesized.stacks.sync, ...synthesized.stacks.siteSchedules]) {
      expect(untagged(stack, { project: 'meter-sync' })).toEqual([]);
    }
  });

  it('shows site migrations on the dashboard only: no alarm watches SiteMigrated', () => {
    for (const template of [sync, sites]) {
      const alarms = JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'));
      expect(alarms).not.toContain(RunMetric.SiteMigrated);
    }
    expect(JSON.stringify(onlyResource(sync, 'AWS::CloudWatch::Dashboard'))).toContain(
      RunMetric.SiteMigrated,
    );
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(synthesized.nagViolations).toEqual([]);
  });
});

describe('meter-sync CDK app (no VPC, existing topic, secret ARN and key, manual migrations)', () => {
  let synthesized: Synthesized;

  beforeAll(() => {
    synthesized = synthesize(
      rawConfig({
        name: 'ms-prod',
        remoteSecret: REMOTE_SECRET_ARN,
        secretsKmsKeyArn: KMS_KEY_ARN,
        alarms: { topicArn: TOPIC_ARN },
        flexibleWindowMinutes: 0,
        siteMigrations: 'manual',
        syncRunRetentionDays: 7,
        sites: [{ id: 'plant-north' }, { id: 'archive', schedule: 'rate(2 days)' }],
      }),
    );
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => synthesized?.cleanup());

  it('runs outside any VPC, with no reserved concurrency, and no network permissions', () => {
    const fn = onlyResource(synthesized.sync, 'AWS::Lambda::Function', { FunctionName: 'ms-prod' });
    expect(fn.VpcConfig).toBeUndefined();
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
    expect(JSON.stringify(policyStatements(synthesized.sync, 'SyncFunctionRole'))).not.toContain('ec2:');
  });

  it('gives the function the configured migrations mode and sync_run retention', () => {
    const fn = onlyResource(synthesized.sync, 'AWS::Lambda::Function', { FunctionName: 'ms-prod' });
    expect(fn.Environment.Variables).toMatchObject({
      REMOTE_SECRET_ID: REMOTE_SECRET_ARN,
      SITE_MIGRATIONS: 'manual',
      SYNC_RUN_RETENTION_DAYS: '7',
    });
  });

  it('reads exactly the configured secret ARN and decrypts with the key only through Secrets Manager', () => {
    const statements = policyStatements(synthesized.sync, 'SyncFunctionRole');
    expect(statements).toContainEqual({
      Sid: 'ReadMeterSyncSecrets',
      Action: 'secretsmanager:GetSecretValue',
      Effect: 'Allow',
      Resource: [REMOTE_SECRET_ARN, stackArn('secretsmanager', 'secret:meter-sync/site/*')],
    });
    expect(statements).toContainEqual({
      Sid: 'DecryptMeterSyncSecrets',
      Action: 'kms:Decrypt',
      Effect: 'Allow',
      Resource: KMS_KEY_ARN,
      Condition: {
        StringEquals: {
          'kms:ViaService': {
            'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']],
          },
        },
      },
    });
  });

  it('notifies the existing topic and creates none', () => {
    synthesized.sync.resourceCountIs('AWS::SNS::Topic', 0);
    synthesized.sync.resourceCountIs('AWS::KMS::Key', 0);
    const [sites] = synthesized.siteSchedules as [Template];
    for (const template of [synthesized.sync, sites]) {
      const notifying = Object.values(template.findResources('AWS::CloudWatch::CompositeAlarm'));
      expect(notifying.length).toBeGreaterThan(0);
      for (const a of notifying) expect(a.Properties.AlarmActions).toEqual([TOPIC_ARN]);
    }
  });

  it("keeps a retried event one interval, and a day at most (Scheduler's limit), for a daily schedule too", () => {
    const [sites] = synthesized.siteSchedules as [Template];
    const ages = Object.values(sites.findResources('AWS::Scheduler::Schedule')).map((s) => [
      s.Properties.Name,
      s.Properties.Target.RetryPolicy.MaximumEventAgeInSeconds,
    ]);
    expect(ages).toEqual([
      ['plant-north', 300],
      ['archive', 86_400],
    ]);
  });

  it('turns the flexible time window off when it is 0', () => {
    const [sites] = synthesized.siteSchedules as [Template];
    for (const s of Object.values(sites.findResources('AWS::Scheduler::Schedule'))) {
      expect(s.Properties.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
      expect(s.Properties.GroupName).toBe('ms-prod-sites-1');
    }
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(synthesized.nagViolations).toEqual([]);
  });
});
