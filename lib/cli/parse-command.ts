/** Turns `meter-sync` arguments into a checked command; any mistake is a one-line UsageError. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { unsupportedSslMode } from '../db/ssl-mode';
import { defaultRegistry, type EntityRegistry } from '../entities';
import { UsageError } from '../errors';
import { DEFAULT_MAX_CHANGES, MAX_MAX_CHANGES, SITE_ID_PATTERN } from '../event';
import { parseDeleteRatio } from '../operations/operation-settings';

/** How the CLI reaches a site: its URLs (flags or environment), or its id and the function's secrets. */
export type SiteConnection =
  /** `tenantId`: absent only for a migration, which needs it only to keep one tenant's rows of several. */
  | { kind: 'urls'; site: string; remote: string; tenantId?: number }
  | {
      kind: 'site-id';
      siteId: string;
      remoteSecretId: string;
      siteSecretPrefix: string;
    };

export type Command =
  | {
      kind: 'sync';
      connection: SiteConnection;
      entities?: string[];
      dryRun: boolean;
      allowMassDelete: boolean;
      allowTenantChange: boolean;
      /** This run's mass-delete ratio (`--max-delete-ratio`), over MAX_DELETE_RATIO. */
      maxDeleteRatio?: number;
      json: boolean;
      /** The run must be over this long after it starts (`--timeout`), as a Lambda's is. */
      timeoutMs?: number;
    }
  | {
      kind: 'migrate';
      connection: SiteConnection;
      /** Adopt tables of several tenants' rows, keeping the tenant's (`--tenant`, or the site secret's). */
      allowTenantChange: boolean;
      json: boolean;
    }
  | {
      kind: 'plan';
      connection: SiteConnection;
      entities?: string[];
      allowMassDelete: boolean;
      allowTenantChange: boolean;
      maxDeleteRatio?: number;
      maxChanges: number;
      json: boolean;
      timeoutMs?: number;
    }
  | { kind: 'check'; connection: SiteConnection; json: boolean }
  | { kind: 'demo' }
  /** `help`, `--help`; `command` for `meter-sync <command> --help`. */
  | { kind: 'help'; command?: CommandName }
  | { kind: 'version' }
  /** No command at all: the usage, as an error. */
  | { kind: 'usage' };

/**
 * The deadline of a run without `--timeout`: the longest a Lambda may run (15 minutes). A site the
 * function can sync, the command can; a first load at the pipe's speed moves tens of millions of
 * rows in it (the README's benchmark: a million in 3 to 9 s). A network that stalls once the run
 * has connected ends it here, not never.
 */
export const DEFAULT_TIMEOUT_S = 900;

export const COMMANDS = ['sync', 'migrate', 'plan', 'check', 'demo'] as const;
export type CommandName = (typeof COMMANDS)[number];

const RUN_OPTIONS = `[--entities a,b] [--allow-mass-delete] [--max-delete-ratio R] [--allow-tenant-change] [--timeout SECONDS] [--json]`;

/** Each command's line of the usage. */
const COMMAND_LINES: Readonly<Record<CommandName, string>> = {
  sync: `meter-sync sync    SITE [--dry-run] ${RUN_OPTIONS}`,
  migrate: 'meter-sync migrate SITE [--allow-tenant-change] [--json]',
  plan: `meter-sync plan    SITE [--max-changes N] ${RUN_OPTIONS}`,
  check: 'meter-sync check   SITE [--json]',
  demo: 'meter-sync demo',
};

/** What each command does and what its own options mean, for `meter-sync <command> --help`. */
const COMMAND_HELP: Readonly<Record<CommandName, string>> = {
  sync: `makes the site equal to its tenant's slice of the remote, in one transaction.
  --entities a,b          only these entities (a parent a row outside the run still uses is kept)
  --dry-run               the exact counts of the run; writes nothing
  --allow-mass-delete     let a step delete more than MAX_DELETE_RATIO of an entity's rows, or all of them
  --max-delete-ratio R    this run's share (0 to 1) for the mass-delete guard (default MAX_DELETE_RATIO or 0.5)
  --allow-tenant-change   re-bind a site bound to another tenant (its rows are replaced: with --allow-mass-delete)
  --timeout SECONDS       end the run, rolled back, after this long (default ${DEFAULT_TIMEOUT_S}, the longest a Lambda runs; 0 for none)
  --json                  the result as JSON`,
  migrate: `brings the site schema up to date (a sync does it too, with SITE_MIGRATIONS=auto). Entity tables
  the site already has are adopted when they fit, their rows kept; nothing is changed if one does not
  (SITE_SCHEMA_CONFLICT lists every difference), nor if the site is the remote (SITE_IS_REMOTE).
  --allow-tenant-change   adopt tables holding rows of several tenants: the site keeps the tenant's
                          (--tenant ID, or the site secret's) and is bound to it
  --json                  the result as JSON`,
  plan: `lists the rows the next sync would insert, update, delete or skip; writes nothing.
  --max-changes N         rows listed per entity, 1 to ${MAX_MAX_CHANGES} (default ${DEFAULT_MAX_CHANGES})
  --entities, --allow-mass-delete, --max-delete-ratio, --allow-tenant-change, --timeout, --json: as for sync`,
  check: `a preflight report of what would make a run fail or surprise; changes nothing.
  --json                  the report as JSON`,
  demo: 'runs the function against an embedded PostgreSQL with seeded sites, and prints what it does.',
};

const SITE_HELP = `SITE is one of:
  --site-id ID [--remote-secret ID] [--site-secret-prefix PREFIX]
      the function's own secrets (defaults REMOTE_SECRET_ID, SITE_SECRET_PREFIX), read with the
      AWS SDK's default credentials and region; the tenant comes from the site's secret
  --remote URL --site URL --tenant ID      (migrate: --tenant ID is optional)
      or METER_SYNC_REMOTE_URL, METER_SYNC_SITE_URL; a URL without a password takes it from
      PGPASSWORD or ~/.pgpass (PGPASSFILE), as psql does`;

const EXIT_CODES = `exit codes: 0 all ok, 1 an entity or the run failed or the site was locked (check: a check failed),
            2 bad usage or configuration (a refused login, a site not migrated, site tables that do
            not fit, a missing secret, a site bound to another tenant or that is the remote)`;

/** The usage of one command: its line, what it does, its options. */
export function commandUsage(command: CommandName): string {
  const site = command === 'demo' ? '' : `\n${SITE_HELP}`;
  return `usage: ${COMMAND_LINES[command]}\n${COMMAND_HELP[command]}${site}\n${EXIT_CODES}`;
}

export const USAGE = `usage:
${COMMANDS.map((command) => `  ${COMMAND_LINES[command]}`).join('\n')}
  meter-sync <command> --help, meter-sync --version
SITE is one of:
  --site-id ID [--remote-secret ID] [--site-secret-prefix PREFIX]
      the function's own secrets (defaults REMOTE_SECRET_ID, SITE_SECRET_PREFIX), read with the
      AWS SDK's default credentials and region; the tenant comes from the site's secret
  --remote URL --site URL --tenant ID      (migrate: --tenant ID is optional)
      or METER_SYNC_REMOTE_URL, METER_SYNC_SITE_URL; a URL without a password takes it from
      PGPASSWORD or ~/.pgpass (PGPASSFILE), as psql does
exit codes: 0 all ok, 1 an entity or the run failed or the site was locked (check: a check failed),
            2 bad usage or configuration (a refused login, a site not migrated, site tables that do
            not fit, a missing secret, a site bound to another tenant or that is the remote)`;

/** The environment variable that stands in for each URL flag. */
const URL_VARIABLES = { remote: 'METER_SYNC_REMOTE_URL', site: 'METER_SYNC_SITE_URL' } as const;

function postgresUrl(flag: keyof typeof URL_VARIABLES, value: string | undefined): string {
  if (value === undefined || value === '')
    throw new UsageError(`--${flag} URL (or ${URL_VARIABLES[flag]}) is required, or --site-id ID`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Never echo the value: it may hold a password.
    throw new UsageError(
      `--${flag} is not a valid URL (expected postgres://user:password@host:port/database)`,
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new UsageError(`--${flag} must be a postgres:// or postgresql:// URL`);
  }
  const sslmode = unsupportedSslMode(value);
  if (sslmode) throw new UsageError(`--${flag}: ${sslmode}`);
  return value;
}

function tenant(value: string | undefined): number {
  if (value === undefined) throw new UsageError('--tenant ID is required with --remote and --site');
  if (!/^\d{1,10}$/.test(value) || Number(value) > 2_147_483_647) {
    throw new UsageError(
      `--tenant must be an integer between 0 and 2147483647, not ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/** Longest `--timeout`: a day, far past any run, yet a number a timer can hold. */
const MAX_TIMEOUT_S = 86_400;

function timeout(value: string | undefined): number | undefined {
  if (value === undefined) return DEFAULT_TIMEOUT_S * 1000;
  if (value === '0') return undefined;
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(seconds > 0 && seconds <= MAX_TIMEOUT_S)) {
    throw new UsageError(
      `--timeout must be a number of seconds above 0 and at most ${MAX_TIMEOUT_S} (0 for none), not ${JSON.stringify(value)}`,
    );
  }
  return Math.round(seconds * 1000);
}

function maxChanges(value: string | undefined): number {
  if (value === undefined) return DEFAULT_MAX_CHANGES;
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1 || Number(value) > MAX_MAX_CHANGES)
    throw new UsageError(
      `--max-changes must be a whole number from 1 to ${MAX_MAX_CHANGES}, not ${JSON.stringify(value)}`,
    );
  return Number(value);
}

function entityList(value: string | undefined, registry: EntityRegistry): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !registry.has(name));
  if (names.length === 0 || names.some((name) => name === ''))
    throw new UsageError('--entities needs a comma-separated list of entity names');
  if (unknown.length > 0) {
    throw new UsageError(
      `--entities: unknown entity ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${registry.names.join(', ')})`,
    );
  }
  return names;
}

const CONNECTION_OPTIONS = {
  'site-id': { type: 'string' },
  'remote-secret': { type: 'string' },
  'site-secret-prefix': { type: 'string' },
  remote: { type: 'string' },
  site: { type: 'string' },
  tenant: { type: 'string' },
} as const;

type ConnectionValues = { [K in keyof typeof CONNECTION_OPTIONS]?: string | undefined };

/**
 * A site by id (its secrets) or by URLs, never both: a URL given with an id would be a second,
 * silent answer to which database is meant. Environment URLs are defaults, so an id overrides them.
 * Every command reaches the remote (a migration to tell that the site is not it); `tenant` is
 * optional for a migration, which needs it only to keep one tenant's rows of several.
 */
function siteConnection(
  values: ConnectionValues,
  tenantNeeded: 'required' | 'optional',
  env: NodeJS.ProcessEnv,
): SiteConnection {
  const siteId = values['site-id'];
  const urlFlags = (['remote', 'site', 'tenant'] as const).filter((flag) => values[flag] !== undefined);
  if (siteId !== undefined) {
    if (urlFlags.length > 0) {
      throw new UsageError(
        `--site-id takes the site's connection from its secret: leave out ${urlFlags.map((f) => `--${f}`).join(', ')}`,
      );
    }
    if (!SITE_ID_PATTERN.test(siteId)) {
      throw new UsageError(
        `--site-id must be 1 to 63 letters, digits, "_" or "-", starting with a letter or digit, not ${JSON.stringify(siteId)}`,
      );
    }
    const siteSecretPrefix = values['site-secret-prefix'] ?? env.SITE_SECRET_PREFIX;
    if (siteSecretPrefix === undefined)
      throw new UsageError(
        '--site-id needs the site secret prefix: --site-secret-prefix PREFIX or SITE_SECRET_PREFIX',
      );
    const remoteSecretId = values['remote-secret'] ?? env.REMOTE_SECRET_ID;
    if (remoteSecretId === undefined || remoteSecretId === '')
      throw new UsageError('--site-id needs the remote secret: --remote-secret ID or REMOTE_SECRET_ID');
    return { kind: 'site-id', siteId, siteSecretPrefix, remoteSecretId };
  }
  for (const flag of ['remote-secret', 'site-secret-prefix'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} applies only with --site-id`);
  }
  const site = postgresUrl('site', values.site ?? env.METER_SYNC_SITE_URL);
  const remote = postgresUrl('remote', values.remote ?? env.METER_SYNC_REMOTE_URL);
  if (tenantNeeded === 'optional' && values.tenant === undefined) return { kind: 'urls', remote, site };
  return { kind: 'urls', remote, site, tenantId: tenant(values.tenant) };
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A value that starts with a dash but is no option (`--tenant -1`) is the option's value: its own
 * check then says what the value must be, instead of the parser's "argument is ambiguous".
 */
function joinDashedValues(args: readonly string[], options: Options): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const option = arg.startsWith('--') ? options[arg.slice(2)] : undefined;
    if (option?.type === 'string' && next !== undefined && /^-[^-]/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return joined;
}

function parse(args: string[], options: Options) {
  const config = {
    args: joinDashedValues(args, options),
    options,
    strict: true,
    allowPositionals: false,
    tokens: true,
  } as const;
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    const message = (error as Error).message;
    const ambiguous = /^Option '(--[\w-]+)'.* argument is ambiguous/.exec(message);
    if (ambiguous) throw new UsageError(`${ambiguous[1]} needs a value`);
    // Node's messages run on with advice (about `--`, or on lines of their own); the first
    // sentence says what is wrong.
    throw new UsageError(message.split('\n')[0]!.split('. ')[0]!.replace(/\.$/, ''));
  }
  // Given twice, an option would silently take its last value: `--tenant 2 --tenant 3`.
  const seen = new Set<string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once`);
    seen.add(token.name);
  }
  return parsed;
}

function deleteRatio(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ratio = parseDeleteRatio(value);
  if (ratio === undefined)
    throw new UsageError(
      `--max-delete-ratio must be a share from 0 to 1, such as 0.5, not ${JSON.stringify(value)}`,
    );
  return ratio;
}

/** The options `sync` and `plan` share (a site, entities, the guard, a deadline, JSON), plus `more`. */
function runCommand(
  args: string[],
  more: NonNullable<ParseArgsConfig['options']>,
  registry: EntityRegistry,
  env: NodeJS.ProcessEnv,
) {
  const { values } = parse(args, {
    ...CONNECTION_OPTIONS,
    entities: { type: 'string' },
    'allow-mass-delete': { type: 'boolean' },
    'max-delete-ratio': { type: 'string' },
    'allow-tenant-change': { type: 'boolean' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
    ...more,
  });
  const connection = siteConnection(values as ConnectionValues, 'required', env);
  const entities = entityList(values.entities as string | undefined, registry);
  const timeoutMs = timeout(values.timeout as string | undefined);
  const maxDeleteRatio = deleteRatio(values['max-delete-ratio'] as string | undefined);
  return {
    values,
    run: {
      connection,
      ...(entities ? { entities } : {}),
      allowMassDelete: values['allow-mass-delete'] === true,
      allowTenantChange: values['allow-tenant-change'] === true,
      ...(maxDeleteRatio !== undefined ? { maxDeleteRatio } : {}),
      json: values.json === true,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    },
  };
}

export function parseCommand(
  argv: readonly string[],
  registry: EntityRegistry = defaultRegistry,
  env: NodeJS.ProcessEnv = process.env,
): Command {
  const [name, ...rest] = argv;
  if (
    (COMMANDS as readonly string[]).includes(name ?? '') &&
    rest.some((arg) => arg === '--help' || arg === '-h')
  )
    return { kind: 'help', command: name as CommandName };
  switch (name) {
    case 'sync': {
      const { values, run } = runCommand(rest, { 'dry-run': { type: 'boolean' } }, registry, env);
      return { kind: 'sync', ...run, dryRun: values['dry-run'] === true };
    }
    case 'migrate': {
      const { values } = parse(rest, {
        ...CONNECTION_OPTIONS,
        'allow-tenant-change': { type: 'boolean' },
        json: { type: 'boolean' },
      });
      const connection = siteConnection(values as ConnectionValues, 'optional', env);
      const allowTenantChange = values['allow-tenant-change'] === true;
      if (allowTenantChange && connection.kind === 'urls' && connection.tenantId === undefined)
        throw new UsageError('--allow-tenant-change needs --tenant ID: the tenant whose rows the site keeps');
      return { kind: 'migrate', connection, allowTenantChange, json: values.json === true };
    }
    case 'plan': {
      const { values, run } = runCommand(rest, { 'max-changes': { type: 'string' } }, registry, env);
      return { kind: 'plan', ...run, maxChanges: maxChanges(values['max-changes'] as string | undefined) };
    }
    case 'check': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, json: { type: 'boolean' } });
      return {
        kind: 'check',
        connection: siteConnection(values as ConnectionValues, 'required', env),
        json: values.json === true,
      };
    }
    case 'demo':
      parse(rest, {});
      return { kind: 'demo' };
    case undefined:
      return { kind: 'usage' };
    case 'help':
    case '--help':
    case '-h':
      parse(rest, {});
      return { kind: 'help' };
    case '--version':
    case '-V':
      parse(rest, {});
      return { kind: 'version' };
    default:
      throw new UsageError(
        `unknown command ${JSON.stringify(name)} (commands: sync, migrate, plan, check, demo)`,
      );
  }
}
