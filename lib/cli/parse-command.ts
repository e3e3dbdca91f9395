/** Turns `meter-sync` arguments into a checked command; any mistake is a one-line UsageError. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultRegistry, type EntityRegistry } from '../entities';
import { UsageError } from '../errors';

export type Command =
  | {
      kind: 'sync';
      remote: string;
      site: string;
      tenantId: number;
      entities?: string[];
      dryRun: boolean;
      allowMassDelete: boolean;
      json: boolean;
      /** The run must be over this long after it starts (`--timeout`), as a Lambda's is. */
      timeoutMs?: number;
    }
  | { kind: 'migrate'; site: string; json: boolean }
  | { kind: 'demo' }
  | { kind: 'help' };

export const USAGE = `usage:
  meter-sync sync --remote URL --site URL --tenant ID [--entities a,b] [--dry-run] [--allow-mass-delete]
                  [--timeout SECONDS] [--json]
  meter-sync migrate --site URL [--json]
  meter-sync demo
exit codes: 0 all ok, 1 an entity or the run failed or the site was locked,
            2 bad usage or configuration (a refused login, a site not migrated)`;

function postgresUrl(flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${flag} URL is required`);
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
  return value;
}

function tenant(value: string | undefined): number {
  if (value === undefined) throw new UsageError('--tenant ID is required');
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
  if (value === undefined) return undefined;
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(seconds > 0 && seconds <= MAX_TIMEOUT_S)) {
    throw new UsageError(
      `--timeout must be a number of seconds above 0 and at most ${MAX_TIMEOUT_S}, not ${JSON.stringify(value)}`,
    );
  }
  return Math.round(seconds * 1000);
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

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    // Node's messages run on with advice (about `--`, or on lines of their own); the first
    // sentence says what is wrong.
    const message = (error as Error).message.split('\n')[0]!.split('. ')[0]!.replace(/\.$/, '');
    throw new UsageError(message);
  }
}

export function parseCommand(argv: readonly string[], registry: EntityRegistry = defaultRegistry): Command {
  const [name, ...rest] = argv;
  switch (name) {
    case 'sync': {
      const { values } = parse(rest, {
        remote: { type: 'string' },
        site: { type: 'string' },
        tenant: { type: 'string' },
        entities: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'allow-mass-delete': { type: 'boolean' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
      });
      const entities = entityList(values.entities as string | undefined, registry);
      const timeoutMs = timeout(values.timeout as string | undefined);
      return {
        kind: 'sync',
        remote: postgresUrl('remote', values.remote as string | undefined),
        site: postgresUrl('site', values.site as string | undefined),
        tenantId: tenant(values.tenant as string | undefined),
        ...(entities ? { entities } : {}),
        dryRun: values['dry-run'] === true,
        allowMassDelete: values['allow-mass-delete'] === true,
        json: values.json === true,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      };
    }
    case 'migrate': {
      const { values } = parse(rest, { site: { type: 'string' }, json: { type: 'boolean' } });
      return {
        kind: 'migrate',
        site: postgresUrl('site', values.site as string | undefined),
        json: values.json === true,
      };
    }
    case 'demo':
      parse(rest, {});
      return { kind: 'demo' };
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return { kind: 'help' };
    default:
      throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: sync, migrate, demo)`);
  }
}
