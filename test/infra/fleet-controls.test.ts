/**
 * The fleet controls of issue 20, read off the synthesized templates: a site's `enabled: false` and
 * the fleet's `paused: true` (disabled schedules), one page per outage at 300 sites, tracing and the
 * log level, a canary deployment through the alias `live`, and tags on every resource that takes them.
 */
import type { Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { MAX_ALARMS_PER_RULE, MAX_RULE_LENGTH } from '../../infra/monitoring/alarm-groups';
import { defaultRegistry } from '../../lib/entities';
import {
  rawConfig,
  resourceTypes,
  SYNTH_TIMEOUT_MS,
  type Synthesized,
  siteList,
  synthesize,
  untagged,
} from './synthesize';

// biome-ignore lint/suspicious/noExplicitAny: a synthesized template is untyped JSON, as aws-cdk-lib/assertions returns it.
type CfnProperties = Record<string, any>;

function propertiesOf(template: Template, type: string): CfnProperties[] {
  return Object.values(template.findResources(type)).map((r) => r.Properties);
}

/** Every alarm of a template that notifies someone (has an action), metric or composite. */
function notifyingAlarms(template: Template): CfnProperties[] {
  return [
    ...propertiesOf(template, 'AWS::CloudWatch::Alarm'),
    ...propertiesOf(template, 'AWS::CloudWatch::CompositeAlarm'),
  ].filter((a) => (a.AlarmActions ?? []).length > 0 || (a.OKActions ?? []).length > 0);
}

function ruleNames(rule: string): string[] {
  return [...rule.matchAll(/ALARM\("([^"]+)"\)/g)].map((m) => m[1]!);
}

const TAGS = { owner: 'metering ops', 'cost-center': '4711' };

describe('300 sites, one disabled, custom tags, DEBUG logs, no tracing, a canary deployment', () => {
  let synthesized: Synthesized;
  let templates: Template[];
  const sites: { id: string; enabled?: boolean }[] = siteList(300).map((site, i) =>
    i === 1 ? { ...site, enabled: false } : site,
  );

  beforeAll(() => {
    synthesized = synthesize(
      rawConfig({
        sites,
        tags: TAGS,
        logLevel: 'DEBUG',
        tracing: false,
        deployment: { canaryPercent: 10, canaryMinutes: 10 },
      }),
    );
    templates = [synthesized.sync, ...synthesized.siteSchedules];
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => synthesized?.cleanup());

  describe('1. pause and resume', () => {
    it("keeps a disabled site's schedule, disabled, and every other schedule enabled", () => {
      const states = synthesized.siteSchedules.flatMap((t) =>
        propertiesOf(t, 'AWS::Scheduler::Schedule').map((s) => [s.Name, s.State]),
      );
      expect(states).toHaveLength(300);
      expect(states.filter(([, state]) => state === 'DISABLED')).toEqual([['site-0002', 'DISABLED']]);
    });

    it('keeps a disabled site from paging: it has no staleness alarm, and no page names it', () => {
      const alarms = synthesized.siteSchedules.flatMap((t) =>
        propertiesOf(t, 'AWS::CloudWatch::Alarm').map((a) => a.AlarmName),
      );
      expect(alarms).toHaveLength(299);
      expect(alarms).not.toContain('meter-sync-sites-1-site-0002-not-syncing');
      const rules = templates.flatMap((t) => propertiesOf(t, 'AWS::CloudWatch::CompositeAlarm'));
      expect(JSON.stringify(rules)).not.toContain('site-0002');
    });
  });

  describe('2. one page per outage, and still a page for one site', () => {
    it('has at most 30 alarms that notify anyone for 300 sites, a handful per stack', () => {
      const counts = templates.map((t) => notifyingAlarms(t).length);
      console.info(
        `notifying alarms at 300 sites, per stack: ${counts.join(', ')} (total ${counts.reduce((a, b) => a + b)})`,
      );
      expect(counts.reduce((a, b) => a + b)).toBeLessThanOrEqual(30);
      for (const count of counts) expect(count).toBeLessThanOrEqual(5);
      // Every one of them is a composite alarm: the metric alarms are their conditions.
      for (const t of templates) {
        for (const a of propertiesOf(t, 'AWS::CloudWatch::Alarm')) expect(a.AlarmActions).toBeUndefined();
      }
    });

    it('puts every enabled site in exactly one page, whose alarm rule CloudWatch can hold, and which names the site that set it off', () => {
      const pages = synthesized.siteSchedules.flatMap((t) =>
        propertiesOf(t, 'AWS::CloudWatch::CompositeAlarm'),
      );
      const named = pages.flatMap((page) => {
        const names = ruleNames(page.AlarmRule);
        expect(names.length).toBeLessThanOrEqual(MAX_ALARMS_PER_RULE);
        expect(page.AlarmRule.length).toBeLessThanOrEqual(MAX_RULE_LENGTH);
        return names;
      });
      const expected = sites
        .filter((s) => s.enabled !== false)
        .map((s, i) => `meter-sync-sites-${i < 199 ? 1 : 2}-${s.id}-not-syncing`);
      expect(named).toEqual(expected);
      // A single stale site: its own alarm is what puts its group's page in ALARM (OR of the sites).
      const page = pages.find((p) => p.AlarmRule.includes('site-0150'))!;
      expect(page.AlarmRule).toMatch(/^ALARM\("[^"]+"\)( OR ALARM\("[^"]+"\))*$/);
      // And a fleet outage holds every site page back: it pages once, on its own alarm.
      for (const p of pages) {
        expect(p.ActionsSuppressor).toEqual({
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':cloudwatch:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':alarm:meter-sync-fleet-outage',
            ],
          ],
        });
      }
    });
  });

  describe('3. tracing and the log level', () => {
    it('turns tracing off and sets the log level from the configuration', () => {
      const [fn] = propertiesOf(synthesized.sync, 'AWS::Lambda::Function');
      expect(fn!.TracingConfig).toBeUndefined();
      expect(fn!.Environment.Variables).toMatchObject({
        POWERTOOLS_LOG_LEVEL: 'DEBUG',
        POWERTOOLS_TRACE_ENABLED: 'false',
      });
      expect(JSON.stringify(propertiesOf(synthesized.sync, 'AWS::IAM::Policy'))).not.toContain('xray:');
    });
  });

  describe('4. versioned deploys', () => {
    it('makes every schedule invoke the alias live', () => {
      for (const t of synthesized.siteSchedules) {
        for (const s of propertiesOf(t, 'AWS::Scheduler::Schedule')) {
          expect(JSON.stringify(s.Target.Arn)).toMatch(/:function:meter-sync:live"\]\]\}$/);
        }
      }
    });

    it('shifts the alias through CodeDeploy: 10% for 10 minutes, rolled back on the function-errors and entity-failed alarms', () => {
      const [config] = propertiesOf(synthesized.sync, 'AWS::CodeDeploy::DeploymentConfig');
      expect(config).toMatchObject({
        ComputePlatform: 'Lambda',
        TrafficRoutingConfig: {
          Type: 'TimeBasedCanary',
          TimeBasedCanary: { CanaryPercentage: 10, CanaryInterval: 10 },
        },
      });
      const [group] = propertiesOf(synthesized.sync, 'AWS::CodeDeploy::DeploymentGroup');
      expect(group!.AutoRollbackConfiguration).toEqual({
        Enabled: true,
        Events: ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST', 'DEPLOYMENT_STOP_ON_ALARM'],
      });
      const alarmIds = group!.AlarmConfiguration.Alarms.map((a: { Name: { Ref: string } }) => a.Name.Ref);
      const alarmNames = alarmIds.map(
        (id: string) => synthesized.sync.toJSON().Resources[id].Properties.AlarmName,
      );
      // A run that fails before its entities (SITE_SCHEMA_NEWER on a site the new version migrated) rolls back too.
      expect(alarmNames).toEqual([
        'meter-sync-function-errors',
        'meter-sync-run-failed',
        ...defaultRegistry.names.map((entity) => `meter-sync-entity-failed-${entity}`),
      ]);
      const aliases = Object.values(synthesized.sync.findResources('AWS::Lambda::Alias'));
      expect(aliases).toHaveLength(1);
      expect(aliases[0]!.UpdatePolicy).toEqual({
        CodeDeployLambdaAliasUpdate: {
          ApplicationName: { Ref: expect.stringMatching(/Application/) },
          DeploymentGroupName: { Ref: expect.stringMatching(/Group/) },
        },
      });
    });
  });

  describe('5. tags', () => {
    it('puts the configured tags and project: meter-sync on every resource that takes tags, in every stack', () => {
      const stacks: Stack[] = [synthesized.stacks.sync, ...synthesized.stacks.siteSchedules];
      for (const stack of stacks) {
        expect(untagged(stack, { project: 'meter-sync', ...TAGS })).toEqual([]);
      }
      // What takes tags here, and what CloudFormation gives no tags to (said in the README).
      const types = resourceTypes(synthesized.stacks.sync);
      const sitesTypes = resourceTypes(synthesized.stacks.siteSchedules[0]!);
      expect(new Set([...types.taggable, ...sitesTypes.taggable])).toEqual(
        new Set([
          'AWS::CloudWatch::Alarm',
          'AWS::CloudWatch::CompositeAlarm',
          'AWS::CloudWatch::Dashboard',
          'AWS::CodeDeploy::Application',
          'AWS::CodeDeploy::DeploymentGroup',
          'AWS::IAM::Role',
          'AWS::KMS::Key',
          'AWS::Lambda::Function',
          'AWS::Logs::LogGroup',
          'AWS::SNS::Topic',
          'AWS::SQS::Queue',
          'AWS::Scheduler::ScheduleGroup',
        ]),
      );
      console.info(`untaggable: ${[...new Set([...types.untaggable, ...sitesTypes.untaggable])].join(', ')}`);
    });
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(synthesized.nagViolations).toEqual([]);
  });
});

describe('a paused fleet', () => {
  let synthesized: Synthesized;

  beforeAll(() => {
    synthesized = synthesize(rawConfig({ paused: true }));
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => synthesized?.cleanup());

  it('disables every schedule (kept, not deleted) and every staleness page, and says so when synthesized', () => {
    const [sites] = synthesized.siteSchedules as [Template];
    expect(propertiesOf(sites, 'AWS::Scheduler::Schedule').map((s) => [s.Name, s.State])).toEqual([
      ['plant-north', 'DISABLED'],
      ['plant-south', 'DISABLED'],
      ['office-hq', 'DISABLED'],
    ]);
    expect(propertiesOf(sites, 'AWS::CloudWatch::CompositeAlarm').map((a) => a.ActionsEnabled)).toEqual([
      false,
    ]);
    const messages = synthesized.assembly.stacks.flatMap((s) =>
      s.findMetadataByType('aws:cdk:info').map((entry) => entry.data),
    );
    expect(messages).toContain('paused: the 3 schedules of meter-sync-sites-1 are disabled');
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(synthesized.nagViolations).toEqual([]);
  });
});
