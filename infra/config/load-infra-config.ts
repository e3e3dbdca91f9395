/** Reads the deployment configuration file named by the CDK context and validates it. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type InfraConfig, parseInfraConfig } from './infra-config';
import { InfraConfigError } from './infra-config-error';

/** The CDK context key naming the configuration file: `npx cdk synth -c config=infra/config/prod.json`. */
export const CONFIG_CONTEXT_KEY = 'config';

export function loadInfraConfig(path: unknown): InfraConfig {
  if (typeof path !== 'string' || path.length === 0) {
    // No default: a deploy without its own configuration would deploy the sample's placeholders.
    throw new InfraConfigError('the CDK context', [
      `"${CONFIG_CONTEXT_KEY}" must name the configuration file to deploy, e.g. -c ${CONFIG_CONTEXT_KEY}=infra/config/prod.json (npm run synth synthesizes infra/config/sample.json)`,
    ]);
  }
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (error) {
    throw new InfraConfigError(path, [
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InfraConfigError(path, [`is not JSON: ${(error as Error).message}`]);
  }
  return parseInfraConfig(raw, path);
}
