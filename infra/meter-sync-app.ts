/** Builds the whole deployment from a validated configuration: the sync stack, the site schedules shards, tags and cdk-nag. */
import { Annotations, type App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { InfraConfig, SiteConfig } from './config/infra-config';
import { SiteSchedulesStack } from './stacks/site-schedules-stack';
import { SyncStack } from './stacks/sync-stack';

export interface MeterSyncStacks {
  readonly sync: SyncStack;
  readonly siteSchedules: readonly SiteSchedulesStack[];
}

export interface BuildOptions {
  /** Only tests point the function at another entry file. */
  readonly handlerEntry?: string;
  /** Registers the AwsSolutions checks on the app (default true). */
  readonly nag?: boolean;
}

/**
 * Splits the sites, in configuration order, into consecutive shards of `size`. Order-based, so
 * appending sites never moves an existing one; removing a site moves one site per later shard to
 * the previous shard, which is safe because the names in a shard carry the shard's number.
 */
export function shardSites(sites: readonly SiteConfig[], size: number): SiteConfig[][] {
  const shards: SiteConfig[][] = [];
  for (let start = 0; start < sites.length; start += size) shards.push(sites.slice(start, start + size));
  return shards;
}

export function buildMeterSyncApp(
  app: App,
  config: InfraConfig,
  options: BuildOptions = {},
): MeterSyncStacks {
  // Each stack's id is its name, so that `cdk deploy <name>-sites-2` and `cdk destroy` find it.
  const sync = new SyncStack(app, config.name, {
    stackName: config.name,
    description: 'meter-sync: the sync function, its queues, alarms and dashboard',
    config,
    ...(options.handlerEntry ? { handlerEntry: options.handlerEntry } : {}),
  });
  const shards = shardSites(config.sites, config.sitesPerStack);
  // Stacks kept for a fleet that shrank hold no site: deploying them removes what they scheduled.
  while (shards.length < config.siteStacks) shards.push([]);
  const siteSchedules = shards.map((sites, i) => {
    const shardName = `${config.name}-sites-${i + 1}`;
    const stack = new SiteSchedulesStack(app, shardName, {
      stackName: shardName,
      description:
        sites.length > 0
          ? `meter-sync: schedules and staleness alarms of sites ${sites[0]!.id} to ${sites.at(-1)!.id}`
          : 'meter-sync: no sites now (kept by siteStacks so that their schedules were removed)',
      shardName,
      sites,
      sync: sync.names,
      flexibleWindowMinutes: config.flexibleWindowMinutes,
      staleAfterPeriods: config.staleAfterPeriods,
      paused: config.paused,
    });
    const disabled = sites.filter((site) => !site.enabled).map((site) => site.id);
    // Shown by `cdk synth`: what the configuration stops, before anyone deploys it.
    if (config.paused)
      Annotations.of(stack).addInfo(`paused: the ${sites.length} schedules of ${shardName} are disabled`);
    if (disabled.length > 0)
      Annotations.of(stack).addInfo(`disabled ("enabled": false), schedule kept: ${disabled.join(', ')}`);
    // Imported by name, not by export: the order of deployment is stated instead.
    stack.addStackDependency(sync);
    return stack;
  });
  // Every resource that takes tags, in every stack (cost allocation, ownership).
  for (const [key, value] of Object.entries(config.tags)) Tags.of(app).add(key, value);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { sync, siteSchedules };
}
