/**
 * A deploy that reaches the fleet gradually: CodeDeploy moves the alias `live` to the new version for
 * `canaryPercent` of the runs, waits `canaryMinutes`, then moves it all, and moves it back if an
 * alarm fires meanwhile. A site the new version migrated stays safe on a rollback: the older
 * version finds its schema newer than its own and touches nothing (SITE_SCHEMA_NEWER).
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type { IAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import {
  LambdaApplication,
  LambdaDeploymentConfig,
  LambdaDeploymentGroup,
  TimeBasedCanaryTrafficRouting,
} from 'aws-cdk-lib/aws-codedeploy';
import type { Alias } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { DeploymentConfig } from '../config/infra-config';

export interface GradualDeploymentProps {
  /** Names the CodeDeploy application and deployment group. */
  readonly name: string;
  readonly alias: Alias;
  readonly canary: DeploymentConfig;
  /** Any of them in ALARM during the canary rolls the deployment back. */
  readonly rollbackAlarms: readonly IAlarm[];
}

export class GradualDeployment extends Construct {
  readonly deploymentGroup: LambdaDeploymentGroup;

  constructor(scope: Construct, id: string, props: GradualDeploymentProps) {
    super(scope, id);
    const { canaryPercent, canaryMinutes } = props.canary;
    const application = new LambdaApplication(this, 'Application', { applicationName: props.name });
    const deploymentConfig = new LambdaDeploymentConfig(this, 'Canary', {
      deploymentConfigName: `${props.name}-canary-${canaryPercent}-percent-${canaryMinutes}-minutes`,
      trafficRouting: new TimeBasedCanaryTrafficRouting({
        percentage: canaryPercent,
        interval: Duration.minutes(canaryMinutes),
      }),
    });
    this.deploymentGroup = new LambdaDeploymentGroup(this, 'Group', {
      application,
      deploymentGroupName: props.name,
      alias: props.alias,
      deploymentConfig,
      alarms: [...props.rollbackAlarms],
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });
    Validations.of(this.deploymentGroup.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
      reason:
        "CodeDeploy's own managed policy for Lambda deployments: it may update aliases and read the alarms, and invoke only functions named CodeDeployHook_* (none here).",
    });
  }
}
