/** The deployment configuration: defaults, and a clear error for every way it can be wrong. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInfraConfig } from '../../infra/config/infra-config';
import { InfraConfigError } from '../../infra/config/infra-config-error';
import { loadInfraConfig } from '../../infra/config/load-infra-config';
import { parseScheduleRate } from '../../infra/config/schedule-rate';
import { operationSettings } from '../../lib/operations/operation-settings';
import { rawConfig } from './synthesize';

/** The problems a configuration is rejected with (fails the test if it is accepted). */
function problemsOf(raw: unknown): readonly string[] {
  try {
    parseInfraConfig(raw, 'test.json');
  } catch (error) {
    expect(error).toBeInstanceOf(InfraConfigError);
    expect((error as InfraConfigError).code).toBe('BAD_INFRA_CONFIG');
    return (error as InfraConfigError).problems;
  }
  throw new Error('the configuration was accepted');
}

describe('parseInfraConfig', () => {
  it('fills in the defaults and gives each site the default schedule unless it has its own', () => {
    const config = parseInfraConfig(rawConfig());

    expect(config).toMatchObject({
      name: 'meter-sync',
      schedule: { expression: 'rate(5 minutes)', minutes: 5 },
      flexibleWindowMinutes: 2,
      staleAfterPeriods: 3,
      timeoutSeconds: 180,
      secretsTtlSeconds: 300,
      siteMigrations: 'auto',
      syncRunRetentionDays: 30,
      logRetentionDays: 30,
      sitesPerStack: 200,
      siteStacks: 1,
      paused: false,
      tags: { project: 'meter-sync' },
      logLevel: 'INFO',
      tracing: true,
    });
    expect(config.reservedConcurrency).toBeUndefined();
    expect(config.vpc).toBeUndefined();
    expect(config.deployment).toBeUndefined();
    expect(config.sites).toEqual([
      { id: 'plant-north', schedule: { expression: 'rate(5 minutes)', minutes: 5 }, enabled: true },
      { id: 'plant-south', schedule: { expression: 'rate(5 minutes)', minutes: 5 }, enabled: true },
      { id: 'office-hq', schedule: { expression: 'rate(15 minutes)', minutes: 15 }, enabled: true },
    ]);
  });

  it.each([
    ['Plant 1', 'a space'],
    ['-plant', 'a leading dash'],
    ['plant/1', 'a slash'],
    ['', 'nothing'],
    ['x'.repeat(64), '64 characters'],
  ])('rejects the site id %j (%s), naming the site and the rule', (id) => {
    expect(problemsOf(rawConfig({ sites: [{ id: 'ok' }, { id }] }))).toEqual([
      `sites[1].id: ${JSON.stringify(id)} is not a valid site id: 1 to 63 letters, digits, "-" or "_", starting with a letter or digit`,
    ]);
  });

  it('rejects a configuration without sites', () => {
    expect(problemsOf(rawConfig({ sites: [] }))).toEqual([
      'sites: must list at least one site, such as [{ "id": "plant-01" }]',
    ]);
    expect(problemsOf(rawConfig({ sites: undefined }))).toHaveLength(1);
  });

  it('rejects duplicate site ids, also when they differ only in case', () => {
    expect(problemsOf(rawConfig({ sites: [{ id: 'a' }, { id: 'b' }, { id: 'a' }, { id: 'B' }] }))).toEqual([
      'sites[2].id: "a" is already the id of sites[0]',
      'sites[3].id: "B" is already the id of sites[1]',
    ]);
  });

  it.each([
    ['cron(0/5 * * * ? *)', 'cron and at expressions are not supported'],
    ['rate(5 minute)', 'use the singular unit for 1 and the plural for more'],
    ['rate(1 minutes)', 'use the singular unit for 1 and the plural for more'],
    ['rate(0 minutes)', 'the value must be a positive whole number'],
    ['rate(5 weeks)', 'is not a rate expression'],
    ['every 5 minutes', 'is not a rate expression'],
  ])('rejects the schedule %j, for the fleet and for one site', (expression, reason) => {
    const [fleet] = problemsOf(rawConfig({ schedule: expression }));
    expect(fleet).toMatch(/^schedule: /);
    expect(fleet).toContain(reason);
    const [site] = problemsOf(rawConfig({ sites: [{ id: 'a', schedule: expression }] }));
    expect(site).toMatch(/^sites\[0\]\.schedule: /);
    expect(site).toContain(reason);
  });

  it('rejects a timeout or a flexible window that does not fit a site schedule', () => {
    const problems = problemsOf(
      rawConfig({
        timeoutSeconds: 300,
        flexibleWindowMinutes: 5,
        sites: [
          { id: 'fast', schedule: 'rate(2 minutes)' },
          { id: 'slow', schedule: 'rate(1 hour)' },
        ],
        schedule: 'rate(10 minutes)',
      }),
    );
    expect(problems).toEqual([
      'sites[0] ("fast", rate(2 minutes)): timeoutSeconds 300 must be shorter than the schedule interval (120 s)',
      'sites[0] ("fast", rate(2 minutes)): flexibleWindowMinutes 5 must be shorter than the schedule interval (2 min)',
    ]);
  });

  it('rejects a staleness window longer than a CloudWatch alarm can look back', () => {
    expect(problemsOf(rawConfig({ schedule: 'rate(30 minutes)', staleAfterPeriods: 49 }))[0]).toContain(
      'staleAfterPeriods 49 x 30 min exceeds the 24 h a CloudWatch alarm can look back',
    );
    expect(() =>
      parseInfraConfig(rawConfig({ schedule: 'rate(1 day)', staleAfterPeriods: 7 })),
    ).not.toThrow();
  });

  it('reports every problem at once, each with its path', () => {
    const problems = problemsOf({
      remoteSecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:remote',
      siteSecretPrefix: 'sites with spaces/',
      shedule: 'rate(5 minutes)',
      reservedConcurrency: 0,
      logRetentionDays: 10,
      vpc: {
        vpcId: 'vpc-1',
        subnetIds: [],
        securityGroupIds: ['sg-0123456789abcdef0', 'sg-0123456789abcdef0'],
      },
      alarms: {},
      sites: [{ id: 'a', extra: true }],
    });
    expect(problems).toEqual([
      'shedule: unknown key (known: name, remoteSecret, siteSecretPrefix, secretsKmsKeyArn, schedule, sites, flexibleWindowMinutes, staleAfterPeriods, timeoutSeconds, memorySizeMb, reservedConcurrency, secretsTtlSeconds, siteMigrations, syncRunRetentionDays, maxDeleteRatio, massDeleteMinRows, logRetentionDays, sitesPerStack, siteStacks, vpc, alarms, paused, tags, logLevel, tracing, deployment)',
      'remoteSecret: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:remote" is not valid: a complete secret ARN ends with the 6-character suffix Secrets Manager adds ("...:secret:name-AbCdEf"); or give the name',
      'siteSecretPrefix: "sites with spaces/" is not valid: a secret name prefix such as "meter-sync/site/" (letters, digits and /_+=.@-)',
      'sites[0].extra: unknown key (known: id, schedule, enabled)',
      'reservedConcurrency: 0 must be a whole number from 1 to 10000',
      'logRetentionDays: 10 must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653',
      'vpc.vpcId: "vpc-1" is not a VPC id such as "vpc-0a1b2c3d4e5f60718"',
      'vpc.subnetIds: must list at least one id such as "subnet-0a1b2c3d4e5f60718"',
      'vpc.securityGroupIds: lists an id twice',
      'alarms: give "email", "topicArn" or both',
    ]);
  });

  it('requires the secrets and an alarm destination', () => {
    expect(problemsOf({ sites: [{ id: 'a' }] })).toEqual([
      'remoteSecret: is required: the name or complete ARN of the remote database secret',
      'siteSecretPrefix: is required, e.g. "meter-sync/site/"',
      'alarms: is required: an object with "email" (a topic is created) and/or "topicArn" (an existing topic)',
    ]);
  });

  it('refuses more sites per stack than fit under the CloudFormation resource limit', () => {
    expect(problemsOf(rawConfig({ sitesPerStack: 241 }))).toEqual([
      'sitesPerStack: 241 must be a whole number from 1 to 240',
    ]);
  });

  it('makes as many schedules stacks as the sites need, or more when siteStacks says so, never fewer', () => {
    const sites = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}` }));
    expect(parseInfraConfig(rawConfig({ sites: sites(5), sitesPerStack: 2 })).siteStacks).toBe(3);
    expect(parseInfraConfig(rawConfig({ sites: sites(4), sitesPerStack: 2 })).siteStacks).toBe(2);
    expect(parseInfraConfig(rawConfig({ sites: sites(3), sitesPerStack: 2, siteStacks: 4 })).siteStacks).toBe(
      4,
    );
    expect(problemsOf(rawConfig({ sites: sites(5), sitesPerStack: 2, siteStacks: 2 }))).toEqual([
      'siteStacks: 2 cannot hold 5 sites at sitesPerStack 2: raise it to at least 3',
    ]);
    expect(problemsOf(rawConfig({ siteStacks: 0 }))).toEqual([
      'siteStacks: 0 must be a whole number from 1 to 100',
    ]);
  });

  it('takes the site migrations mode and the sync_run retention from the configuration', () => {
    expect(parseInfraConfig(rawConfig({ siteMigrations: 'manual', syncRunRetentionDays: 7 }))).toMatchObject({
      siteMigrations: 'manual',
      syncRunRetentionDays: 7,
    });
    expect(parseInfraConfig(rawConfig({ siteMigrations: 'auto', syncRunRetentionDays: 1 }))).toMatchObject({
      siteMigrations: 'auto',
      syncRunRetentionDays: 1,
    });
    expect(parseInfraConfig(rawConfig({ syncRunRetentionDays: 3650 })).syncRunRetentionDays).toBe(3650);
  });

  it.each([['sometimes'], ['Manual'], ['AUTO'], [''], [true], [1], [null]])(
    'refuses siteMigrations %j, naming the key and the two modes',
    (siteMigrations) => {
      expect(problemsOf(rawConfig({ siteMigrations }))).toEqual([
        `siteMigrations: ${JSON.stringify(siteMigrations)} must be "auto" or "manual"`,
      ]);
    },
  );

  it.each([[0], [-1], [2.5], [3651], ['30'], [null]])(
    'refuses syncRunRetentionDays %j, naming the key and the range',
    (syncRunRetentionDays) => {
      expect(problemsOf(rawConfig({ syncRunRetentionDays }))).toEqual([
        `syncRunRetentionDays: ${JSON.stringify(syncRunRetentionDays)} must be a whole number from 1 to 3650`,
      ]);
    },
  );

  it('hands the function only migration, retention and mass-delete settings it accepts, with the same limits', () => {
    // What SyncFunction puts in the environment, read back by the function's own parser.
    const asEnvironment = (raw: Record<string, unknown>) => {
      const config = parseInfraConfig(rawConfig(raw));
      return {
        SITE_MIGRATIONS: config.siteMigrations,
        SYNC_RUN_RETENTION_DAYS: String(config.syncRunRetentionDays),
        MAX_DELETE_RATIO: String(config.maxDeleteRatio),
        MASS_DELETE_MIN_ROWS: String(config.massDeleteMinRows),
      };
    };
    expect(operationSettings(asEnvironment({}))).toEqual({
      siteMigrations: 'auto',
      syncRunRetentionDays: 30,
      maxDeleteRatio: 0.5,
      massDeleteMinRows: 20,
    });
    for (const maxDeleteRatio of [0, 1e-7, 0.25, 1])
      expect(operationSettings(asEnvironment({ maxDeleteRatio })).maxDeleteRatio).toBe(maxDeleteRatio);
    for (const massDeleteMinRows of [0, 5, 999_999_999])
      expect(operationSettings(asEnvironment({ massDeleteMinRows })).massDeleteMinRows).toBe(
        massDeleteMinRows,
      );
    expect(problemsOf(rawConfig({ maxDeleteRatio: 1.5, massDeleteMinRows: -1 }))).toEqual([
      'maxDeleteRatio: 1.5 must be a share from 0 to 1',
      'massDeleteMinRows: -1 must be a whole number from 0 to 999999999',
    ]);
    for (const bad of ['1.5', '-0.1', 'half', '0.5.1', ''])
      expect(() => operationSettings({ MAX_DELETE_RATIO: bad })).toThrow(
        /^MAX_DELETE_RATIO must be a share from 0 to 1/,
      );
    for (const bad of ['-1', '2.5', 'many', '1000000000'])
      expect(() => operationSettings({ MASS_DELETE_MIN_ROWS: bad })).toThrow(
        /^MASS_DELETE_MIN_ROWS must be a whole number/,
      );
    expect(
      operationSettings(asEnvironment({ siteMigrations: 'manual', syncRunRetentionDays: 7 })),
    ).toMatchObject({
      siteMigrations: 'manual',
      syncRunRetentionDays: 7,
    });
    expect(operationSettings(asEnvironment({ syncRunRetentionDays: 1 })).syncRunRetentionDays).toBe(1);
    expect(operationSettings(asEnvironment({ syncRunRetentionDays: 3650 })).syncRunRetentionDays).toBe(3650);
    // One past the limit: refused by both, so a deploy can never give the function a value it refuses.
    expect(problemsOf(rawConfig({ syncRunRetentionDays: 3651 }))).toHaveLength(1);
    expect(() => operationSettings({ SYNC_RUN_RETENTION_DAYS: '3651' })).toThrow(/SYNC_RUN_RETENTION_DAYS/);
  });

  it('accepts a complete secret ARN, a KMS key, an existing topic and a VPC', () => {
    const config = parseInfraConfig(
      rawConfig({
        remoteSecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:meter-sync/remote-AbCdEf',
        secretsKmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        alarms: { topicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall' },
        vpc: {
          vpcId: 'vpc-0a1b2c3d4e5f60718',
          subnetIds: ['subnet-0a1b2c3d4e5f60711'],
          securityGroupIds: ['sg-0a1b2c3d4e5f60733'],
        },
      }),
    );
    expect(config.alarms).toEqual({ topicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall' });
    expect(config.vpc?.subnetIds).toEqual(['subnet-0a1b2c3d4e5f60711']);
  });
});

describe('fleet controls in the configuration (issue 20)', () => {
  it('reads a site\'s "enabled", the fleet\'s "paused", tags, the log level, tracing and a canary deployment', () => {
    const config = parseInfraConfig(
      rawConfig({
        paused: true,
        sites: [
          { id: 'plant-north', enabled: false },
          { id: 'plant-south', enabled: true },
          { id: 'office-hq' },
        ],
        tags: { owner: 'ops team', 'cost-center': '4711', project: 'metering' },
        logLevel: 'DEBUG',
        tracing: false,
        deployment: { canaryPercent: 10, canaryMinutes: 10 },
      }),
    );
    expect(config.paused).toBe(true);
    expect(config.sites.map((s) => [s.id, s.enabled])).toEqual([
      ['plant-north', false],
      ['plant-south', true],
      ['office-hq', true],
    ]);
    // The default project tag can be given another value.
    expect(config.tags).toEqual({ project: 'metering', owner: 'ops team', 'cost-center': '4711' });
    expect(config).toMatchObject({
      logLevel: 'DEBUG',
      tracing: false,
      deployment: { canaryPercent: 10, canaryMinutes: 10 },
    });
  });

  it('keeps the project tag when other tags are given', () => {
    expect(parseInfraConfig(rawConfig({ tags: { owner: 'ops' } })).tags).toEqual({
      project: 'meter-sync',
      owner: 'ops',
    });
  });

  it('refuses every wrong fleet control at once, one line each, naming the key', () => {
    expect(
      problemsOf(
        rawConfig({
          paused: 'yes',
          sites: [{ id: 'a', enabled: 0 }],
          tags: { 'aws:owner': 'x', ok: 7, 'bad\u0000key': 'v', long: 'v'.repeat(257) },
          logLevel: 'debug',
          tracing: 'on',
          deployment: { canaryPercent: 100, canaryMinutes: 0, linear: true },
        }),
      ),
    ).toEqual([
      'sites[0].enabled: 0 must be true or false',
      'deployment.linear: unknown key (known: canaryPercent, canaryMinutes)',
      'deployment.canaryPercent: 100 must be a whole number from 1 to 99',
      'deployment.canaryMinutes: 0 must be a whole number from 1 to 1440',
      'paused: "yes" must be true or false',
      'tags.aws:owner: is not a tag name: 1 to 128 letters, digits, spaces and _ . : / = + - @, not starting with "aws:"',
      'tags.ok: 7 is not a tag value: up to 256 letters, digits, spaces and _ . : / = + - @',
      'tags.bad\u0000key: is not a tag name: 1 to 128 letters, digits, spaces and _ . : / = + - @, not starting with "aws:"',
      `tags.long: "${'v'.repeat(257)}" is not a tag value: up to 256 letters, digits, spaces and _ . : / = + - @`,
      'logLevel: "debug" must be "TRACE" or "DEBUG" or "INFO" or "WARN" or "ERROR" or "CRITICAL" or "SILENT"',
      'tracing: "on" must be true or false',
    ]);
  });

  it('refuses a deployment without both canary settings, and tags that are not an object', () => {
    expect(problemsOf(rawConfig({ deployment: { canaryPercent: 10 } }))).toEqual([
      'deployment.canaryMinutes: is required, as in { "canaryPercent": 10, "canaryMinutes": 10 }',
    ]);
    expect(problemsOf(rawConfig({ deployment: 'canary', tags: ['owner'] }))).toEqual([
      'deployment: must be an object such as { "canaryPercent": 10, "canaryMinutes": 10 }',
      'tags: must be an object of tag names and values, such as { "owner": "ops", "cost-center": "4711" }',
    ]);
  });

  it('refuses more tags than a resource takes', () => {
    const tags = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`t${i}`, 'v']));
    expect(problemsOf(rawConfig({ tags }))).toEqual([
      'tags: 51 tags with the default "project": a resource takes 50',
    ]);
  });
});

describe('parseScheduleRate', () => {
  it.each([
    ['rate(1 minute)', 1],
    ['rate(5 minutes)', 5],
    ['rate(1 hour)', 60],
    ['rate(2 hours)', 120],
    ['rate(1 day)', 1440],
  ])('reads %s as %i minutes', (expression, minutes) => {
    expect(parseScheduleRate(expression)).toEqual({ expression, minutes });
  });
});

describe('loadInfraConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'meter-sync-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the shipped sample', () => {
    const sample = loadInfraConfig('infra/config/sample.json');
    expect(sample.sites.map((s) => [s.id, s.enabled])).toEqual([
      ['plant-north', true],
      ['plant-south', true],
      ['office-hq', true],
      // Shown disabled by `npm run synth`: a site under maintenance keeps its schedule, off.
      ['plant-east', false],
    ]);
    // The sample documents the defaults.
    expect(sample).toMatchObject({ siteMigrations: 'auto', syncRunRetentionDays: 30 });
  });

  it('says which file is missing, is not JSON, or that none was named', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "sites": [ }');
    expect(() => loadInfraConfig(join(dir, 'missing.json'))).toThrow(
      /missing\.json is not a valid .*cannot be read \(ENOENT\)/s,
    );
    expect(() => loadInfraConfig(broken)).toThrow(/broken\.json is not a valid .*is not JSON/s);
    // No default file: a deploy must name its configuration.
    expect(() => loadInfraConfig(undefined)).toThrow(
      /"config" must name the configuration file to deploy, e\.g\. -c config=infra\/config\/prod\.json/,
    );
  });
});
