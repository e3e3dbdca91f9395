/** The CDK app entry (cdk.json): loads the configuration named by `-c config=...` and builds the stacks. */
import { App } from 'aws-cdk-lib';
import { InfraConfigError } from './config/infra-config-error';
import { CONFIG_CONTEXT_KEY, loadInfraConfig } from './config/load-infra-config';
import { buildMeterSyncApp } from './meter-sync-app';

const app = new App();
try {
  buildMeterSyncApp(app, loadInfraConfig(app.node.tryGetContext(CONFIG_CONTEXT_KEY)));
} catch (error) {
  // A configuration mistake is the operator's to fix: the list of problems, without a stack trace.
  if (!(error instanceof InfraConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
app.synth();
