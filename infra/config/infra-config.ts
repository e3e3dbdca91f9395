/** The one typed deployment configuration of the CDK app, and its validation (every problem reported at once). */
import { SITE_ID_PATTERN } from '../../lib/event';
import type { SiteMigrationsMode } from '../../lib/operations/operation-options';
import { InfraConfigError } from './infra-config-error';
import { parseScheduleRate, type ScheduleRate } from './schedule-rate';

/** Prefix of stack, function, queue and schedule group names; short enough for every one of them. */
const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,31}$/;
// Characters Secrets Manager allows in a secret name.
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SECRET_ARN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8,17}$/;
/** The retention periods CloudWatch Logs accepts. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
/**
 * Each site costs its stack two resources (schedule, staleness alarm); a schedules stack has four
 * of its own (group, role, policy, dashboard) and one composite alarm per group of sites (at most
 * four at 240 sites, with the longest names). CloudFormation's limit is 500 per stack.
 */
export const MAX_SITES_PER_STACK = 240;
/** Far more than a fleet needs (240 sites a stack), far fewer than an account's stacks. */
export const MAX_SITE_STACKS = 100;
const MAX_LAMBDA_TIMEOUT_SECONDS = 900;
const SITE_MIGRATIONS_MODES: readonly SiteMigrationsMode[] = ['auto', 'manual'];
/** The function's own limit (SYNC_RUN_RETENTION_DAYS, lib/operations/operation-settings.ts): ten years. */
const MAX_SYNC_RUN_RETENTION_DAYS = 3_650;
const ONE_DAY_MINUTES = 24 * 60;
/** The levels Powertools Logger knows (POWERTOOLS_LOG_LEVEL). */
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** AWS tag rules: letters, digits, spaces and _ . : / = + - @; keys 1-128, values 0-256 characters. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
/** A resource takes 50 tags; CloudFormation's own aws: tags do not count. */
const MAX_TAGS = 50;
/** The tag every resource carries unless the configuration says otherwise (cost allocation, ownership). */
export const DEFAULT_TAGS: Readonly<Record<string, string>> = { project: 'meter-sync' };
/** CodeDeploy shifts between 1% and 99% first; the rest follows after the interval (at most a day here). */
const MAX_CANARY_MINUTES = 1_440;

export interface SiteConfig {
  readonly id: string;
  /** The site's own schedule, or the default one. */
  readonly schedule: ScheduleRate;
  /**
   * `false` keeps the site's schedule, disabled, and keeps its staleness from paging: a plant under
   * maintenance, a site database being restored.
   */
  readonly enabled: boolean;
}

export interface VpcConfig {
  readonly vpcId: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupIds: readonly string[];
}

export interface AlarmNotificationConfig {
  /** Subscribed to the alarm topic (the address must confirm the subscription). */
  readonly email?: string;
  /** An existing topic to notify instead of creating one. */
  readonly topicArn?: string;
}

/** Gradual deployment: CodeDeploy sends `canaryPercent` of the runs to a new version for `canaryMinutes`, then all. */
export interface DeploymentConfig {
  readonly canaryPercent: number;
  readonly canaryMinutes: number;
}

export interface InfraConfig {
  /** Prefix of every stack and of the named resources (function, schedule groups). */
  readonly name: string;
  /** Name or complete ARN of the remote database's secret (`REMOTE_SECRET_ID`). */
  readonly remoteSecret: string;
  /** A site's secret is this prefix followed by the site id (`SITE_SECRET_PREFIX`). */
  readonly siteSecretPrefix: string;
  /** The customer managed key the secrets are encrypted with, when it is not the AWS managed one. */
  readonly secretsKmsKeyArn?: string;
  readonly schedule: ScheduleRate;
  readonly sites: readonly SiteConfig[];
  /** EventBridge Scheduler spreads each run over this window; 0 turns it off. */
  readonly flexibleWindowMinutes: number;
  /** The staleness alarm fires after this many schedule periods without a successful sync. */
  readonly staleAfterPeriods: number;
  readonly timeoutSeconds: number;
  readonly memorySizeMb: number;
  /** Caps concurrent syncs (and connections to the remote); unset in accounts whose quota forbids it. */
  readonly reservedConcurrency?: number;
  readonly secretsTtlSeconds: number;
  /**
   * `SITE_MIGRATIONS`: "auto" lets a sync bring an out-of-date site schema up to date first;
   * "manual" fails such a sync (SITE_NOT_MIGRATED) until `{ siteId, action: "migrate" }` is invoked.
   */
  readonly siteMigrations: SiteMigrationsMode;
  /** `SYNC_RUN_RETENTION_DAYS`: the days of `sync_run` history a site keeps (the newest ok and non-ok runs always stay). */
  readonly syncRunRetentionDays: number;
  /**
   * `MAX_DELETE_RATIO` and `MASS_DELETE_MIN_ROWS`: a step may delete at most this share of an
   * entity's site rows once it has this many; all of them never, however few (allowMassDelete aside).
   */
  readonly maxDeleteRatio: number;
  readonly massDeleteMinRows: number;
  readonly logRetentionDays: number;
  readonly sitesPerStack: number;
  /**
   * Schedules stacks the app makes: at least what the sites need. Those beyond it are made empty,
   * so that a deploy after the fleet shrank removes their schedules instead of leaving them running.
   */
  readonly siteStacks: number;
  readonly vpc?: VpcConfig;
  readonly alarms: AlarmNotificationConfig;
  /** Every schedule disabled (kept): an incident on the remote, a maintenance of the whole fleet. */
  readonly paused: boolean;
  /** On every resource that takes tags; `project: meter-sync` unless given another value. */
  readonly tags: Readonly<Record<string, string>>;
  /** POWERTOOLS_LOG_LEVEL of the function; DEBUG logs each phase of each entity. */
  readonly logLevel: LogLevel;
  /** X-Ray tracing of the function through Powertools Tracer. */
  readonly tracing: boolean;
  /** Absent: a deploy moves every run to the new version at once. */
  readonly deployment?: DeploymentConfig;
}

const DEFAULTS = {
  name: 'meter-sync',
  schedule: 'rate(5 minutes)',
  flexibleWindowMinutes: 2,
  staleAfterPeriods: 3,
  timeoutSeconds: 180,
  memorySizeMb: 1024,
  secretsTtlSeconds: 300,
  siteMigrations: 'auto',
  syncRunRetentionDays: 30,
  maxDeleteRatio: 0.5,
  massDeleteMinRows: 20,
  logRetentionDays: 30,
  sitesPerStack: 200,
  paused: false,
  logLevel: 'INFO',
  tracing: true,
} as const;

const TOP_LEVEL_KEYS = new Set([
  'name',
  'remoteSecret',
  'siteSecretPrefix',
  'secretsKmsKeyArn',
  'schedule',
  'sites',
  'flexibleWindowMinutes',
  'staleAfterPeriods',
  'timeoutSeconds',
  'memorySizeMb',
  'reservedConcurrency',
  'secretsTtlSeconds',
  'siteMigrations',
  'syncRunRetentionDays',
  'maxDeleteRatio',
  'massDeleteMinRows',
  'logRetentionDays',
  'sitesPerStack',
  'siteStacks',
  'vpc',
  'alarms',
  'paused',
  'tags',
  'logLevel',
  'tracing',
  'deployment',
]);

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects problems with their path, so one run of the validator reports all of them. */
class Problems {
  readonly list: string[] = [];
  add(path: string, problem: string): void {
    this.list.push(`${path}: ${problem}`);
  }
  unknownKeys(path: string, value: Raw, known: ReadonlySet<string>): void {
    for (const key of Object.keys(value)) {
      if (!known.has(key))
        this.add(path ? `${path}.${key}` : key, `unknown key (known: ${[...known].join(', ')})`);
    }
  }
}

function text(p: Problems, raw: Raw, key: string, pattern: RegExp, hint: string): string | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) {
    p.add(key, `${JSON.stringify(value)} is not valid: ${hint}`);
    return undefined;
  }
  return value;
}

function integer(
  p: Problems,
  raw: Raw,
  key: string,
  min: number,
  max: number,
  path = key,
): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    p.add(path, `${JSON.stringify(value)} must be a whole number from ${min} to ${max}`);
    return undefined;
  }
  return value;
}

/** A share from 0 to 1. */
function share(p: Problems, raw: Raw, key: string): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    p.add(key, `${JSON.stringify(value)} must be a share from 0 to 1`);
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(p: Problems, raw: Raw, key: string, allowed: readonly T[]): T | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    p.add(key, `${JSON.stringify(value)} must be ${allowed.map((a) => JSON.stringify(a)).join(' or ')}`);
    return undefined;
  }
  return value as T;
}

function flag(p: Problems, raw: Raw, key: string, path = key): boolean | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') {
    p.add(path, `${JSON.stringify(value)} must be true or false`);
    return undefined;
  }
  return value;
}

function parseTags(p: Problems, value: unknown): Record<string, string> {
  if (value === undefined) return { ...DEFAULT_TAGS };
  if (!isObject(value)) {
    p.add(
      'tags',
      'must be an object of tag names and values, such as { "owner": "ops", "cost-center": "4711" }',
    );
    return { ...DEFAULT_TAGS };
  }
  const tags: Record<string, string> = { ...DEFAULT_TAGS };
  for (const [key, tagValue] of Object.entries(value)) {
    const path = `tags.${key}`;
    if (key.length > 128 || !TAG_TEXT.test(key) || key.toLowerCase().startsWith('aws:'))
      p.add(
        path,
        'is not a tag name: 1 to 128 letters, digits, spaces and _ . : / = + - @, not starting with "aws:"',
      );
    else if (typeof tagValue !== 'string' || tagValue.length > 256 || !TAG_TEXT.test(tagValue))
      p.add(
        path,
        `${JSON.stringify(tagValue)} is not a tag value: up to 256 letters, digits, spaces and _ . : / = + - @`,
      );
    else tags[key] = tagValue;
  }
  if (Object.keys(tags).length > MAX_TAGS)
    p.add(
      'tags',
      `${Object.keys(tags).length} tags with the default "project": a resource takes ${MAX_TAGS}`,
    );
  return tags;
}

function parseDeployment(p: Problems, value: unknown): DeploymentConfig | undefined {
  if (value === undefined) return undefined;
  const example = '{ "canaryPercent": 10, "canaryMinutes": 10 }';
  if (!isObject(value)) {
    p.add('deployment', `must be an object such as ${example}`);
    return undefined;
  }
  p.unknownKeys('deployment', value, new Set(['canaryPercent', 'canaryMinutes']));
  const canaryPercent = integer(p, value, 'canaryPercent', 1, 99, 'deployment.canaryPercent');
  const canaryMinutes = integer(p, value, 'canaryMinutes', 1, MAX_CANARY_MINUTES, 'deployment.canaryMinutes');
  if (value.canaryPercent === undefined) p.add('deployment.canaryPercent', `is required, as in ${example}`);
  if (value.canaryMinutes === undefined) p.add('deployment.canaryMinutes', `is required, as in ${example}`);
  return canaryPercent !== undefined && canaryMinutes !== undefined
    ? { canaryPercent, canaryMinutes }
    : undefined;
}

function idList(p: Problems, path: string, value: unknown, pattern: RegExp, example: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    p.add(path, `must list at least one id such as "${example}"`);
    return [];
  }
  value.forEach((id, i) => {
    if (typeof id !== 'string' || !pattern.test(id))
      p.add(`${path}[${i}]`, `${JSON.stringify(id)} is not an id such as "${example}"`);
  });
  if (new Set(value).size !== value.length) p.add(path, 'lists an id twice');
  return value as string[];
}

function parseVpc(p: Problems, value: unknown): VpcConfig | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    p.add('vpc', 'must be an object with vpcId, subnetIds and securityGroupIds');
    return undefined;
  }
  p.unknownKeys('vpc', value, new Set(['vpcId', 'subnetIds', 'securityGroupIds']));
  if (typeof value.vpcId !== 'string' || !VPC_ID.test(value.vpcId))
    p.add('vpc.vpcId', `${JSON.stringify(value.vpcId)} is not a VPC id such as "vpc-0a1b2c3d4e5f60718"`);
  const subnetIds = idList(p, 'vpc.subnetIds', value.subnetIds, SUBNET_ID, 'subnet-0a1b2c3d4e5f60718');
  const securityGroupIds = idList(
    p,
    'vpc.securityGroupIds',
    value.securityGroupIds,
    SECURITY_GROUP_ID,
    'sg-0a1b2c3d4e5f60718',
  );
  return { vpcId: String(value.vpcId), subnetIds, securityGroupIds };
}

function parseAlarms(p: Problems, value: unknown): AlarmNotificationConfig {
  if (!isObject(value)) {
    p.add(
      'alarms',
      'is required: an object with "email" (a topic is created) and/or "topicArn" (an existing topic)',
    );
    return {};
  }
  p.unknownKeys('alarms', value, new Set(['email', 'topicArn']));
  const { email, topicArn } = value;
  if (email === undefined && topicArn === undefined) p.add('alarms', 'give "email", "topicArn" or both');
  if (email !== undefined && (typeof email !== 'string' || !EMAIL.test(email)))
    p.add('alarms.email', `${JSON.stringify(email)} is not an e-mail address`);
  if (topicArn !== undefined && (typeof topicArn !== 'string' || !TOPIC_ARN.test(topicArn)))
    p.add('alarms.topicArn', `${JSON.stringify(topicArn)} is not an SNS topic ARN`);
  return {
    ...(typeof email === 'string' ? { email } : {}),
    ...(typeof topicArn === 'string' ? { topicArn } : {}),
  };
}

function parseSites(p: Problems, value: unknown, defaultSchedule: ScheduleRate | undefined): SiteConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    p.add('sites', 'must list at least one site, such as [{ "id": "plant-01" }]');
    return [];
  }
  const seen = new Map<string, number>();
  const sites: SiteConfig[] = [];
  value.forEach((site, i) => {
    const path = `sites[${i}]`;
    if (!isObject(site)) {
      p.add(path, 'must be an object such as { "id": "plant-01" }');
      return;
    }
    p.unknownKeys(path, site, new Set(['id', 'schedule', 'enabled']));
    const { id } = site;
    // The function's own pattern: a configured site is always a site the function accepts.
    if (typeof id !== 'string' || !SITE_ID_PATTERN.test(id)) {
      p.add(
        `${path}.id`,
        `${JSON.stringify(id)} is not a valid site id: 1 to 63 letters, digits, "-" or "_", starting with a letter or digit`,
      );
      return;
    }
    // Ids that differ only in case would share a secret name on case-insensitive tooling and confuse people.
    const folded = id.toLowerCase();
    const first = seen.get(folded);
    if (first !== undefined) p.add(`${path}.id`, `"${id}" is already the id of sites[${first}]`);
    else seen.set(folded, i);
    let schedule = defaultSchedule;
    if (site.schedule !== undefined) {
      const own = parseScheduleRate(site.schedule);
      if (typeof own === 'string') p.add(`${path}.schedule`, own);
      else schedule = own;
    }
    const enabled = flag(p, site, 'enabled', `${path}.enabled`) ?? true;
    if (schedule) sites.push({ id, schedule, enabled });
  });
  return sites;
}

/** Checks that the timings fit every site's schedule; a misfit would pile runs up or page for nothing. */
function checkTimings(p: Problems, config: InfraConfig): void {
  for (const [i, site] of config.sites.entries()) {
    const { minutes, expression } = site.schedule;
    const path = `sites[${i}] ("${site.id}", ${expression})`;
    if (config.timeoutSeconds >= minutes * 60)
      p.add(
        path,
        `timeoutSeconds ${config.timeoutSeconds} must be shorter than the schedule interval (${minutes * 60} s)`,
      );
    if (config.flexibleWindowMinutes >= minutes)
      p.add(
        path,
        `flexibleWindowMinutes ${config.flexibleWindowMinutes} must be shorter than the schedule interval (${minutes} min)`,
      );
    // CloudWatch caps an alarm's evaluation range at one day when its period is under an hour, seven days otherwise.
    const window = minutes * config.staleAfterPeriods;
    const limit = minutes < 60 ? ONE_DAY_MINUTES : 7 * ONE_DAY_MINUTES;
    if (window > limit)
      p.add(
        path,
        `staleAfterPeriods ${config.staleAfterPeriods} x ${minutes} min exceeds the ${limit / 60} h a CloudWatch alarm can look back`,
      );
  }
}

/** Schedules stacks that `sites` sites need at `sitesPerStack` a stack. */
export function stacksNeeded(sites: number, sitesPerStack: number): number {
  return Math.max(1, Math.ceil(sites / sitesPerStack));
}

function checkSiteStacks(p: Problems, config: InfraConfig, given: number | undefined): void {
  const needed = stacksNeeded(config.sites.length, config.sitesPerStack);
  if (given !== undefined && given < needed) {
    p.add(
      'siteStacks',
      `${given} cannot hold ${config.sites.length} sites at sitesPerStack ${config.sitesPerStack}: raise it to at least ${needed}`,
    );
  }
}

/**
 * Validates raw configuration (parsed JSON or CDK context) and fills in the defaults.
 * @param source names the configuration in the error, e.g. its file path.
 * @throws InfraConfigError listing every problem found.
 */
export function parseInfraConfig(raw: unknown, source = 'configuration'): InfraConfig {
  const p = new Problems();
  if (!isObject(raw)) throw new InfraConfigError(source, ['must be a JSON object']);
  p.unknownKeys('', raw, TOP_LEVEL_KEYS);

  const name =
    text(p, raw, 'name', NAME_PATTERN, 'a letter, then up to 31 letters, digits or "-"') ?? DEFAULTS.name;
  let remoteSecret: string | undefined;
  if (raw.remoteSecret === undefined)
    p.add('remoteSecret', 'is required: the name or complete ARN of the remote database secret');
  else if (typeof raw.remoteSecret === 'string' && raw.remoteSecret.startsWith('arn:'))
    remoteSecret = text(
      p,
      raw,
      'remoteSecret',
      SECRET_ARN,
      'a complete secret ARN ends with the 6-character suffix Secrets Manager adds ("...:secret:name-AbCdEf"); or give the name',
    );
  else
    remoteSecret = text(p, raw, 'remoteSecret', SECRET_NAME, 'a secret name (letters, digits and /_+=.@-)');

  let siteSecretPrefix: string | undefined;
  if (raw.siteSecretPrefix === undefined) p.add('siteSecretPrefix', 'is required, e.g. "meter-sync/site/"');
  else
    siteSecretPrefix = text(
      p,
      raw,
      'siteSecretPrefix',
      SECRET_NAME,
      'a secret name prefix such as "meter-sync/site/" (letters, digits and /_+=.@-)',
    );

  const secretsKmsKeyArn = text(
    p,
    raw,
    'secretsKmsKeyArn',
    KMS_KEY_ARN,
    'a KMS key ARN such as "arn:aws:kms:eu-west-1:123456789012:key/..."',
  );
  const schedule = parseScheduleRate(raw.schedule ?? DEFAULTS.schedule);
  if (typeof schedule === 'string') p.add('schedule', schedule);
  const defaultSchedule = typeof schedule === 'string' ? undefined : schedule;
  const sites = parseSites(p, raw.sites, defaultSchedule);
  const reservedConcurrency = integer(p, raw, 'reservedConcurrency', 1, 10_000);
  const logRetentionDays = raw.logRetentionDays ?? DEFAULTS.logRetentionDays;
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays as number))
    p.add(
      'logRetentionDays',
      `${JSON.stringify(logRetentionDays)} must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
    );
  const vpc = parseVpc(p, raw.vpc);

  const siteStacks = integer(p, raw, 'siteStacks', 1, MAX_SITE_STACKS);
  const sitesPerStack = integer(p, raw, 'sitesPerStack', 1, MAX_SITES_PER_STACK) ?? DEFAULTS.sitesPerStack;
  const deployment = parseDeployment(p, raw.deployment);
  const config: InfraConfig = {
    name,
    remoteSecret: remoteSecret ?? '',
    siteSecretPrefix: siteSecretPrefix ?? '',
    ...(secretsKmsKeyArn ? { secretsKmsKeyArn } : {}),
    schedule: defaultSchedule ?? { expression: DEFAULTS.schedule, minutes: 5 },
    sites,
    flexibleWindowMinutes:
      integer(p, raw, 'flexibleWindowMinutes', 0, 1440) ?? DEFAULTS.flexibleWindowMinutes,
    staleAfterPeriods: integer(p, raw, 'staleAfterPeriods', 1, 288) ?? DEFAULTS.staleAfterPeriods,
    timeoutSeconds:
      integer(p, raw, 'timeoutSeconds', 10, MAX_LAMBDA_TIMEOUT_SECONDS) ?? DEFAULTS.timeoutSeconds,
    memorySizeMb: integer(p, raw, 'memorySizeMb', 128, 10_240) ?? DEFAULTS.memorySizeMb,
    ...(reservedConcurrency !== undefined ? { reservedConcurrency } : {}),
    secretsTtlSeconds: integer(p, raw, 'secretsTtlSeconds', 0, 86_400) ?? DEFAULTS.secretsTtlSeconds,
    siteMigrations: oneOf(p, raw, 'siteMigrations', SITE_MIGRATIONS_MODES) ?? DEFAULTS.siteMigrations,
    syncRunRetentionDays:
      integer(p, raw, 'syncRunRetentionDays', 1, MAX_SYNC_RUN_RETENTION_DAYS) ??
      DEFAULTS.syncRunRetentionDays,
    maxDeleteRatio: share(p, raw, 'maxDeleteRatio') ?? DEFAULTS.maxDeleteRatio,
    massDeleteMinRows: integer(p, raw, 'massDeleteMinRows', 0, 999_999_999) ?? DEFAULTS.massDeleteMinRows,
    logRetentionDays: logRetentionDays as number,
    sitesPerStack,
    siteStacks: siteStacks ?? stacksNeeded(sites.length, sitesPerStack),
    ...(vpc ? { vpc } : {}),
    alarms: parseAlarms(p, raw.alarms),
    paused: flag(p, raw, 'paused') ?? DEFAULTS.paused,
    tags: parseTags(p, raw.tags),
    logLevel: oneOf(p, raw, 'logLevel', LOG_LEVELS) ?? DEFAULTS.logLevel,
    tracing: flag(p, raw, 'tracing') ?? DEFAULTS.tracing,
    ...(deployment ? { deployment } : {}),
  };
  if (p.list.length === 0) checkTimings(p, config);
  if (p.list.length === 0) checkSiteStacks(p, config, siteStacks);
  if (p.list.length > 0) throw new InfraConfigError(source, p.list);
  return config;
}
