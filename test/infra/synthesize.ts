/** Builds and synthesizes the CDK app from a raw configuration, once per test file: synthesis is the slow part. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnResource, type Stack, TagManager } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseInfraConfig } from '../../infra/config/infra-config';
import { buildMeterSyncApp, type MeterSyncStacks } from '../../infra/meter-sync-app';

/** A synthesis can take a minute on a busy two-core machine; the default hook timeout is the jest testTimeout. */
export const SYNTH_TIMEOUT_MS = 300_000;

/** A valid configuration; tests override what they look at. */
export function rawConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    remoteSecret: 'meter-sync/remote',
    siteSecretPrefix: 'meter-sync/site/',
    alarms: { email: 'oncall@example.com' },
    sites: [{ id: 'plant-north' }, { id: 'plant-south' }, { id: 'office-hq', schedule: 'rate(15 minutes)' }],
    ...overrides,
  };
}

export function siteList(count: number): { id: string }[] {
  return Array.from({ length: count }, (_, i) => ({ id: `site-${String(i + 1).padStart(4, '0')}` }));
}

export interface Synthesized {
  readonly app: App;
  readonly stacks: MeterSyncStacks;
  readonly assembly: CloudAssembly;
  readonly sync: Template;
  readonly siteSchedules: Template[];
  /** What cdk-nag AwsSolutions still reports after the acknowledgements. */
  readonly nagViolations: ReturnType<AwsSolutionsChecks['validateScope']>['violations'];
  readonly durationMs: number;
  cleanup(): void;
}

/**
 * Synthesizes with the real bundling (local esbuild) and the cdk-nag plugin registered, as
 * `cdk synth` does; a nag error would make synthesis throw. CDK's built-in CloudFormation schema
 * check is left to `npm run synth` (it costs about a second per hundred resources).
 */
export function synthesize(raw: Record<string, unknown>): Synthesized {
  const started = Date.now();
  const outdir = mkdtempSync(join(tmpdir(), 'meter-sync-cdk-'));
  const app = new App({ outdir, builtinCloudFormationValidation: false });
  const stacks = buildMeterSyncApp(app, parseInfraConfig(raw, 'test configuration'));
  const assembly = app.synth();
  return {
    app,
    stacks,
    assembly,
    sync: Template.fromStack(stacks.sync),
    siteSchedules: stacks.siteSchedules.map((stack) => Template.fromStack(stack)),
    nagViolations: new AwsSolutionsChecks().validateScope(app).violations,
    durationMs: Date.now() - started,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/**
 * The resources of a stack that take tags (CloudFormation's tag property, as TagManager.of knows it)
 * and lack one of `expected` in the synthesized template: `Type logicalId` each.
 */
export function untagged(stack: Stack, expected: Readonly<Record<string, string>>): string[] {
  const resources = Template.fromStack(stack).toJSON().Resources as Record<
    string,
    { Type: string; Properties?: { Tags?: unknown } }
  >;
  const missing: string[] = [];
  for (const construct of stack.node.findAll()) {
    if (!CfnResource.isCfnResource(construct) || !TagManager.of(construct)) continue;
    const logicalId = stack.resolve(construct.logicalId) as string;
    const resource = resources[logicalId];
    if (!resource) continue;
    const raw = resource.Properties?.Tags;
    // A list of { Key, Value } for most types, a map for a few.
    const tags: Record<string, unknown> = Array.isArray(raw)
      ? Object.fromEntries(raw.map((t: { Key: string; Value: unknown }) => [t.Key, t.Value]))
      : ((raw as Record<string, unknown>) ?? {});
    if (Object.entries(expected).some(([key, value]) => tags[key] !== value))
      missing.push(`${resource.Type} ${logicalId}`);
  }
  return missing;
}

/** Every resource type of a stack's template, and whether TagManager lets it carry tags. */
export function resourceTypes(stack: Stack): { taggable: string[]; untaggable: string[] } {
  const taggable = new Set<string>();
  const untaggable = new Set<string>();
  for (const construct of stack.node.findAll()) {
    if (!CfnResource.isCfnResource(construct)) continue;
    (TagManager.of(construct) ? taggable : untaggable).add(construct.cfnResourceType);
  }
  return { taggable: [...taggable].sort(), untaggable: [...untaggable].sort() };
}
