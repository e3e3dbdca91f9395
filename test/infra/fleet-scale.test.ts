/** 1,000 sites: the schedules are sharded over stacks so that every stack stays under CloudFormation's limits. */
import { statSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { MAX_SITES_PER_STACK } from '../../infra/config/infra-config';
import { shardSites } from '../../infra/meter-sync-app';
import { rawConfig, SYNTH_TIMEOUT_MS, type Synthesized, siteList, synthesize } from './synthesize';

/** CloudFormation's per-stack quotas. */
const MAX_RESOURCES = 500;
const MAX_TEMPLATE_BYTES = 1_000_000;
const SITES = 1000;

describe('a fleet of 1,000 sites', () => {
  let synthesized: Synthesized;

  beforeAll(() => {
    synthesized = synthesize(rawConfig({ sites: siteList(SITES) }));
    console.info(`synthesized ${SITES} sites in ${synthesized.durationMs} ms`);
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => synthesized?.cleanup());

  it('synthesizes into the sync stack and five schedules stacks, each under 500 resources and 1 MB', () => {
    const stacks = synthesized.assembly.stacks.map((s) => ({
      name: s.stackName,
      resources: Object.keys(s.template.Resources).length,
      bytes: statSync(s.templateFullPath).size,
    }));
    console.info(stacks.map((s) => `${s.name}: ${s.resources} resources, ${s.bytes} bytes`).join('\n'));
    expect(stacks.map((s) => s.name)).toEqual([
      'meter-sync',
      'meter-sync-sites-1',
      'meter-sync-sites-2',
      'meter-sync-sites-3',
      'meter-sync-sites-4',
      'meter-sync-sites-5',
    ]);
    for (const stack of stacks) {
      expect(stack.resources).toBeLessThan(MAX_RESOURCES);
      expect(stack.bytes).toBeLessThan(MAX_TEMPLATE_BYTES);
    }
  });

  it('would still fit with the largest shard the configuration allows', () => {
    const [shard] = synthesized.assembly.stacks.filter((s) => s.stackName === 'meter-sync-sites-1');
    const perStack = Object.keys(shard!.template.Resources).length - 2 * 200;
    // Two resources per site (schedule, alarm); the CLI adds one CDKMetadata resource the tests do not.
    expect(perStack + 1 + 2 * MAX_SITES_PER_STACK).toBeLessThan(MAX_RESOURCES);
    const bytesPerSite = statSync(shard!.templateFullPath).size / 200;
    expect(bytesPerSite * MAX_SITES_PER_STACK * 1.1).toBeLessThan(MAX_TEMPLATE_BYTES);
  });

  it('schedules every site exactly once, with its own input, and alarms on each one', () => {
    const inputs = synthesized.siteSchedules.flatMap((t) =>
      Object.values(t.findResources('AWS::Scheduler::Schedule')).map((s) =>
        JSON.parse(s.Properties.Target.Input),
      ),
    );
    expect(inputs).toEqual(siteList(SITES).map(({ id }) => ({ siteId: id })));
    const alarmed = synthesized.siteSchedules.flatMap((t) =>
      Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties.Dimensions[0].Value),
    );
    expect(alarmed).toEqual(siteList(SITES).map(({ id }) => id));
  });

  it('pages through a handful of alarms per stack (the composite ones), however many sites', () => {
    const counts = synthesized.assembly.stacks.map(
      (s) =>
        Object.values(
          s.template.Resources as Record<string, { Type: string; Properties: { AlarmActions?: unknown[] } }>,
        ).filter(
          (r) => r.Type.startsWith('AWS::CloudWatch::') && (r.Properties.AlarmActions ?? []).length > 0,
        ).length,
    );
    console.info(`notifying alarms at ${SITES} sites, per stack: ${counts.join(', ')}`);
    expect(counts).toEqual([3, 2, 2, 2, 2, 2]);
  });

  it('gives each schedules stack its own group, so schedule names never collide when a site changes stack', () => {
    const groups = synthesized.siteSchedules.map(
      (t) => Object.values(t.findResources('AWS::Scheduler::ScheduleGroup'))[0]!.Properties.Name,
    );
    expect(groups).toEqual([1, 2, 3, 4, 5].map((n) => `meter-sync-sites-${n}`));
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(synthesized.nagViolations).toEqual([]);
  });
});

describe('shardSites', () => {
  it('keeps configuration order and fills each shard before the next', () => {
    const sites = siteList(5).map(({ id }) => ({
      id,
      schedule: { expression: 'rate(5 minutes)', minutes: 5 },
      enabled: true,
    }));
    expect(shardSites(sites, 2).map((shard) => shard.map((s) => s.id))).toEqual([
      ['site-0001', 'site-0002'],
      ['site-0003', 'site-0004'],
      ['site-0005'],
    ]);
  });
});

describe('a fleet that shrank, with siteStacks kept', () => {
  let synthesized: Synthesized;

  beforeAll(() => {
    // Three stacks of two sites were deployed; three sites are left.
    synthesized = synthesize(rawConfig({ sites: siteList(3), sitesPerStack: 2, siteStacks: 3 }));
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => synthesized?.cleanup());

  it('still makes the third stack, with its group and no schedule or alarm: a deploy removes them', () => {
    expect(synthesized.assembly.stacks.map((s) => s.stackName)).toEqual([
      'meter-sync',
      'meter-sync-sites-1',
      'meter-sync-sites-2',
      'meter-sync-sites-3',
    ]);
    const count = (type: string) =>
      synthesized.siteSchedules.map((t) => Object.keys(t.findResources(type)).length);
    expect(count('AWS::Scheduler::Schedule')).toEqual([2, 1, 0]);
    expect(count('AWS::CloudWatch::Alarm')).toEqual([2, 1, 0]);
    expect(count('AWS::Scheduler::ScheduleGroup')).toEqual([1, 1, 1]);
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(synthesized.nagViolations).toEqual([]);
  });
});

describe('the cdk-nag check', () => {
  it('does report a finding nobody acknowledged (the check above is not vacuous)', () => {
    const app = new App();
    const stack = new Stack(app, 'Probe');
    new Queue(stack, 'Plain', { encryption: QueueEncryption.UNENCRYPTED });
    const rules = new AwsSolutionsChecks().validateScope(app).violations.map((v) => v.ruleName);
    expect(rules).toEqual(
      expect.arrayContaining(['AwsSolutions-SQS2', 'AwsSolutions-SQS3', 'AwsSolutions-SQS4']),
    );
  });
});
