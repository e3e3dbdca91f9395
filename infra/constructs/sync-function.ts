/**
 * The sync Lambda with the project's defaults: Node.js 24 on ARM64, local esbuild, its own log group
 * and role, secrets-only access, X-Ray, and a version per deploy behind the alias `live`.
 */
import { join } from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { ISecurityGroup, ISubnet, IVpc } from 'aws-cdk-lib/aws-ec2';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Alias, Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  SYNC_ALIASES,
  SYNC_MAIN_FIELDS,
  XRAY_TRACING_ENTRY,
  XRAY_TRACING_FILE,
  XRAY_TRACING_IMPORT,
} from '../../functions/sync/bundling';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../lib/observability/metric-names';
import type { SiteMigrationsMode } from '../../lib/operations/operation-options';
import type { LogLevel } from '../config/infra-config';
import { ALLOCATOR_ENVIRONMENT, YOUNG_GENERATION_OPTION } from './memory-settings';

const REPOSITORY_ROOT = join(__dirname, '..', '..');
/** The handler the other half of the project ships (issue 4); exported as `handler`. */
export const SYNC_HANDLER_ENTRY = join(REPOSITORY_ROOT, 'functions', 'sync', 'handler.ts');
/** What schedules and people invoke: the version the last deploy published (or is shifting to). */
export const LIVE_ALIAS = 'live';
/** A failed run is retried once (a blip), then parked; the next scheduled run is the real retry. */
const RETRY_ATTEMPTS = 1;
const MAX_EVENT_AGE = Duration.hours(1);

export interface SyncFunctionNetwork {
  readonly vpc: IVpc;
  readonly subnets: readonly ISubnet[];
  readonly securityGroups: readonly ISecurityGroup[];
}

export interface SyncFunctionProps {
  readonly functionName: string;
  /** Name or complete ARN of the remote database secret. */
  readonly remoteSecret: string;
  /** A site's secret is `${siteSecretPrefix}${siteId}`. */
  readonly siteSecretPrefix: string;
  readonly secretsKmsKeyArn?: string;
  readonly secretsTtlSeconds: number;
  /** `SITE_MIGRATIONS`: whether a sync migrates an out-of-date site schema first. */
  readonly siteMigrations: SiteMigrationsMode;
  /** `SYNC_RUN_RETENTION_DAYS`: the days of `sync_run` history a site keeps. */
  readonly syncRunRetentionDays: number;
  /** `MAX_DELETE_RATIO` and `MASS_DELETE_MIN_ROWS`: the mass-delete guard. */
  readonly maxDeleteRatio: number;
  readonly massDeleteMinRows: number;
  readonly timeout: Duration;
  readonly memorySizeMb: number;
  readonly reservedConcurrency?: number;
  readonly logRetention: RetentionDays;
  /** Where an asynchronous invocation goes once Lambda gives up on it. */
  readonly failedInvocations: IQueue;
  readonly network?: SyncFunctionNetwork;
  /** POWERTOOLS_LOG_LEVEL. */
  readonly logLevel: LogLevel;
  /** X-Ray active tracing, through Powertools Tracer. */
  readonly tracing: boolean;
  /** Only tests point this elsewhere. */
  readonly entry?: string;
}

function shellQuoted(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command that builds the bundle's tracing file beside index.js, with the options the construct
 * bundles index.js with (scripts/build.ts does the same for `npm run build`). Runs in the repository root.
 */
function buildXrayTracing(outputDir: string): string {
  // esbuild's own launcher: the native binary once installed, a Node.js script where it could not be.
  return [
    require.resolve('esbuild/bin/esbuild'),
    XRAY_TRACING_ENTRY,
    '--bundle',
    '--platform=node',
    '--target=node24',
    '--format=cjs',
    '--minify',
    '--sourcemap',
    '--sources-content=false',
    `--main-fields=${SYNC_MAIN_FIELDS.join(',')}`,
    ...Object.entries(SYNC_ALIASES).map(([from, to]) => `--alias:${from}=${to}`),
    `--outfile=${join(outputDir, XRAY_TRACING_FILE)}`,
    '--log-level=warning',
  ]
    .map(shellQuoted)
    .join(' ');
}

function secretArn(scope: Construct, resourceName: string): string {
  return Stack.of(scope).formatArn({
    service: 'secretsmanager',
    resource: 'secret',
    resourceName,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/** The IAM resource a secret name or complete ARN stands for: a name matches the 6-character suffix Secrets Manager adds. */
function remoteSecretResource(scope: Construct, nameOrArn: string): string {
  return nameOrArn.startsWith('arn:') ? nameOrArn : secretArn(scope, `${nameOrArn}-??????`);
}

/**
 * One function serves every site: a schedule or an operator invokes it with `{ siteId }`.
 *
 * The role is built here rather than from the AWS managed policies, which grant logs on every
 * log group: this one may write its own log group and read the named secrets, nothing else.
 */
export class SyncFunction extends NodejsFunction {
  /** The function's own log group (the base class's `logGroup` is typed as the interface). */
  readonly functionLogGroup: LogGroup;
  readonly executionRole: Role;
  /** `live`: the version schedules and people invoke. */
  readonly live: Alias;

  constructor(scope: Construct, id: string, props: SyncFunctionProps) {
    // Created beside the function (it does not exist yet) so that the function can be handed both.
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.functionName}: its log group, the meter-sync secrets and, in a VPC, its network interfaces`,
    });
    super(scope, id, {
      functionName: props.functionName,
      description: 'meter-sync: makes one site database equal to its tenant slice of the remote database',
      entry: props.entry ?? SYNC_HANDLER_ENTRY,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySizeMb,
      timeout: props.timeout,
      ...(props.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrency }
        : {}),
      role,
      logGroup,
      environment: {
        REMOTE_SECRET_ID: props.remoteSecret,
        SITE_SECRET_PREFIX: props.siteSecretPrefix,
        SECRETS_TTL_SECONDS: String(props.secretsTtlSeconds),
        SITE_MIGRATIONS: props.siteMigrations,
        SYNC_RUN_RETENTION_DAYS: String(props.syncRunRetentionDays),
        MAX_DELETE_RATIO: String(props.maxDeleteRatio),
        MASS_DELETE_MIN_ROWS: String(props.massDeleteMinRows),
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        POWERTOOLS_TRACE_ENABLED: String(props.tracing),
        NODE_OPTIONS: `--enable-source-maps ${YOUNG_GENERATION_OPTION}`,
        ...ALLOCATOR_ENVIRONMENT,
      },
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      retryAttempts: RETRY_ATTEMPTS,
      maxEventAge: MAX_EVENT_AGE,
      onFailure: new SqsDestination(props.failedInvocations),
      ...(props.network
        ? {
            vpc: props.network.vpc,
            vpcSubnets: { subnets: [...props.network.subnets] },
            securityGroups: [...props.network.securityGroups],
          }
        : {}),
      projectRoot: REPOSITORY_ROOT,
      depsLockFilePath: join(REPOSITORY_ROOT, 'package-lock.json'),
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.CJS,
        target: 'node24',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // pg requires pg-native only when asked to; the pinned AWS SDK is bundled rather than the runtime's.
        // The tracing is the bundle's second file, built after index.js.
        externalModules: ['pg-native', XRAY_TRACING_IMPORT],
        // As `npm run build` bundles it: the SDK's ES module builds, four credential sources left out.
        mainFields: [...SYNC_MAIN_FIELDS],
        esbuildArgs: { '--alias': Object.entries(SYNC_ALIASES).map(([from, to]) => `${from}=${to}`) },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir, outputDir) => [buildXrayTracing(outputDir)],
        },
      },
    });
    this.functionLogGroup = logGroup;
    this.executionRole = role;
    this.grantOwnLogs();
    this.grantSecrets(props);
    if (props.network) this.grantNetworkInterfaces();
    this.acknowledgeUnscopedActions(props);
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'The function runs on Node.js 24, the LTS the project builds for and tests on (its bundle targets node24, CI runs every test on it); moving to a newer runtime is a decision of its own, taken with the tests on that version.',
    });
    // Every deploy that changes the code or the configuration publishes a version; `live` points at it
    // (or CodeDeploy moves it there, with a gradual deployment). Asynchronous invocations of the alias
    // are retried and parked as those of the function are.
    this.live = new Alias(this, 'Live', {
      aliasName: LIVE_ALIAS,
      version: this.currentVersion,
      description: 'What the schedules and people invoke: the version the last deploy published',
      retryAttempts: RETRY_ATTEMPTS,
      maxEventAge: MAX_EVENT_AGE,
      onFailure: new SqsDestination(props.failedInvocations),
    });
  }

  /** X-Ray's and the network interfaces' actions take no resource: one finding, with every reason. */
  private acknowledgeUnscopedActions(props: SyncFunctionProps): void {
    const reasons = [
      ...(props.network
        ? [
            'Lambda creates and deletes the function network interfaces with EC2 actions that do not support resource-level scoping when Lambda validates the role (the same statement as AWSLambdaVPCAccessExecutionRole, without its logs-on-every-group grant).',
          ]
        : []),
      ...(props.tracing
        ? [
            'xray:PutTraceSegments and xray:PutTelemetryRecords, which Lambda adds for active tracing, do not support resource-level permissions.',
          ]
        : []),
    ];
    if (reasons.length === 0) return;
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: reasons.join(' '),
    });
  }

  private grantOwnLogs(): void {
    this.executionRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.functionLogGroup.logGroupArn],
      }),
    );
  }

  private grantSecrets(props: SyncFunctionProps): void {
    this.executionRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadMeterSyncSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [
          remoteSecretResource(this, props.remoteSecret),
          secretArn(this, `${props.siteSecretPrefix}*`),
        ],
      }),
    );
    Validations.of(this.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${props.siteSecretPrefix}*]`,
      reason:
        'A site secret is named SITE_SECRET_PREFIX + site id and sites come and go with the configuration: the prefix is the narrowest stable grant.',
    });
    if (props.secretsKmsKeyArn) {
      this.executionRole.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'DecryptMeterSyncSecrets',
          actions: ['kms:Decrypt'],
          resources: [props.secretsKmsKeyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
          },
        }),
      );
    }
  }

  private grantNetworkInterfaces(): void {
    this.executionRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ManageLambdaNetworkInterfaces',
        effect: Effect.ALLOW,
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    );
  }
}
