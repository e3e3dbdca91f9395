/**
 * The fleet soak: one remote and many site databases on one server, the real Lambda handler
 * (createSyncHandler with local credentials) run for every site with bounded concurrency, round
 * after round, while a writer keeps editing the remote (inserts, updates, deletes, orphaned and
 * cross-tenant associations). Then the writer stops, a last round runs, and every site is compared
 * with its tenant's slice, column for column, as server text. Shared by `npm run soak`
 * (scripts/soak.ts) and its small CI version (test/fleet/soak-small.test.ts); knows nothing of jest.
 */
import '../functions/lambda-environment';
import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { createSyncHandler } from '../../functions/sync/handler';
import { LocalCredentials, type LocalSite } from '../../lib/credentials';
import { createRemoteSchema } from '../../lib/db/remote-schema';
import { applySiteMigrations } from '../../lib/db/site-migrations';
import type { SyncResult } from '../../lib/engine';
import { ID_SPAN, seedRemote } from '../../lib/seed/seed-remote';
import { lambdaContext } from '../functions/lambda-context';
import { expectedSlice, SHIPPED_TABLES, tableRows } from './site-contents';

export interface SoakOptions {
  /** URL of the server (its `postgres` database) for a role that may create databases. */
  serverUrl: string;
  /**
   * Superuser URL of the same server, to drop the databases with at the end (defaults to
   * `serverUrl`). DROP DATABASE ... WITH (FORCE) ends every session in them, and only a superuser
   * may end an autovacuum worker's: as the role that made them it fails now and then with
   * "permission denied to terminate process".
   */
  adminUrl?: string;
  sites: number;
  tenants: number;
  /** Rounds while the writer edits the remote; one more round follows once it has stopped. */
  rounds: number;
  /** Invocations in flight at once (the Lambda reserved concurrency). */
  concurrency: number;
  /** Per tenant: meters, registers, associations per meter. */
  seed: { metersPerTenant: number; registersPerTenant: number; registersPerMeter: number };
  /** Extra invocations per round for sites already queued, as a retried schedule sends: some find the site locked. */
  duplicatesPerRound: number;
  /** Writer transactions per second, each a few edits of one tenant. */
  writesPerSecond: number;
  /** Seed of the writer's choices, so a run can be replayed. */
  randomSeed: number;
  /** Values that must never appear in any output (passwords). */
  secrets: readonly string[];
  /**
   * Progress lines. The handler's own output (stdout and stderr) is captured and scanned while the
   * rounds run, so this must not write through `process.stdout.write` as it is then.
   */
  log: (line: string) => void;
  /** Keep the databases (for a look after a failure). */
  keep?: boolean;
}

export interface Divergence {
  site: string;
  entity: string;
  /** Keys only the slice has, only the site has, or whose rows differ (a few of each). */
  missing: string[];
  extra: string[];
  changed: string[];
}

export interface SoakReport {
  rounds: number;
  runs: number;
  ok: number;
  /** Runs that returned `partial` or `failed`, or threw. */
  failures: number;
  failureSamples: string[];
  locked: number;
  worstRunMs: number;
  medianRunMs: number;
  writerTransactions: number;
  writerEdits: number;
  sitesChecked: number;
  rowsChecked: number;
  divergences: Divergence[];
  /** Output lines that contained a secret value. */
  leaks: number;
  outputLines: number;
  totalMs: number;
}

/** mulberry32: a small seeded generator, so the writer's edits can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({
    connectionString: url,
    options: '-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3',
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Edits of one tenant in one transaction, chosen at random: meters and registers inserted, updated
 * (names, jsonb, numeric scale, NULLs) and deleted (their associations deleted with them, or left
 * behind as orphans), associations inserted (some to another tenant's register or to no meter at
 * all), updated and deleted. Returns how many statements it ran.
 */
async function writeOnce(
  remote: Client,
  next: () => number,
  tenants: number,
  counter: { n: number },
): Promise<number> {
  const tenant = 1 + Math.floor(next() * tenants);
  const base = tenant * ID_SPAN;
  const pick = (table: string) =>
    remote.query<{ id: string }>(
      `SELECT id FROM ${table} WHERE tenant_id = $1 ORDER BY id
       OFFSET floor($2::float8 * (SELECT count(*) FROM ${table} WHERE tenant_id = $1))::bigint LIMIT 1`,
      [tenant, next()],
    );
  let edits = 0;
  await remote.query('BEGIN');
  try {
    for (let i = 0; i < 1 + Math.floor(next() * 4); i += 1) {
      const choice = next();
      edits += 1;
      if (choice < 0.12) {
        counter.n += 1;
        await remote.query(
          `INSERT INTO meter (id, tenant_id, name, protocol, active, config, updated_at)
           VALUES ($1, $2, $3, 'mbus', $4, $5, clock_timestamp())`,
          [
            base + 50_000_000 + counter.n,
            tenant,
            `soak meter ${counter.n} "q" \\ ü`,
            next() < 0.5,
            next() < 0.5 ? null : '{"a": 1.0}',
          ],
        );
      } else if (choice < 0.3) {
        const { rows } = await pick('meter');
        if (rows[0])
          await remote.query(
            `UPDATE meter SET name = name || '.', active = NOT active, config = $2, updated_at = clock_timestamp() WHERE id = $1`,
            [rows[0].id, next() < 0.3 ? null : JSON.stringify({ n: Math.round(next() * 100) / 10 })],
          );
      } else if (choice < 0.37) {
        const { rows } = await pick('meter');
        if (rows[0]) {
          // Half the time the associations stay behind: orphans the engine must not bring in.
          if (next() < 0.5)
            await remote.query('DELETE FROM device_register WHERE device_id = $1', [rows[0].id]);
          await remote.query('DELETE FROM meter WHERE id = $1', [rows[0].id]);
        }
      } else if (choice < 0.47) {
        counter.n += 1;
        await remote.query(
          `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, updated_at)
           VALUES ($1, $2, $3, $4, 'int32', $5, $6, clock_timestamp())`,
          [
            base + 50_000_000 + counter.n,
            tenant,
            `soak register ${counter.n}`,
            40_000 + (counter.n % 1000),
            next() < 0.5 ? null : 'kWh',
            (next() * 1000).toFixed(6),
          ],
        );
      } else if (choice < 0.62) {
        const { rows } = await pick('register');
        if (rows[0])
          await remote.query(
            `UPDATE register SET scale = round((scale + 0.000001)::numeric, 6), description = $2 WHERE id = $1`,
            [rows[0].id, next() < 0.5 ? null : `edited ${Math.floor(next() * 1e6)}`],
          );
      } else if (choice < 0.68) {
        const { rows } = await pick('register');
        if (rows[0]) {
          if (next() < 0.5)
            await remote.query('DELETE FROM device_register WHERE register_id = $1', [rows[0].id]);
          await remote.query('DELETE FROM register WHERE id = $1', [rows[0].id]);
        }
      } else if (choice < 0.82) {
        const [{ rows: m }, { rows: r }] = [await pick('meter'), await pick('register')];
        // Now and then a register of another tenant, or a meter that does not exist: bad rows.
        const other = 1 + (tenant % tenants || 0);
        const register =
          next() < 0.15
            ? (
                await remote.query<{ id: string }>('SELECT id FROM register WHERE tenant_id = $1 LIMIT 1', [
                  other,
                ])
              ).rows[0]?.id
            : r[0]?.id;
        const device = next() < 0.1 ? String(base + 90_000_000 + Math.floor(next() * 1000)) : m[0]?.id;
        if (device && register)
          await remote.query(
            `INSERT INTO device_register VALUES ($1, $2, $3, $4)
             ON CONFLICT (device_id, register_id) DO UPDATE SET enabled = NOT device_register.enabled`,
            [device, register, [5, 15, 60][Math.floor(next() * 3)], next() < 0.8],
          );
      } else if (choice < 0.94) {
        await remote.query(
          `UPDATE device_register SET poll_interval_s = poll_interval_s + 1
           WHERE (device_id, register_id) IN (SELECT device_id, register_id FROM device_register
             WHERE device_id / $2 = $1 ORDER BY register_id, device_id OFFSET $3 LIMIT 2)`,
          [tenant, ID_SPAN, Math.floor(next() * 50)],
        );
      } else {
        await remote.query(
          `DELETE FROM device_register WHERE (device_id, register_id) IN (SELECT device_id, register_id FROM device_register
             WHERE device_id / $2 = $1 ORDER BY device_id, register_id OFFSET $3 LIMIT 1)`,
          [tenant, ID_SPAN, Math.floor(next() * 50)],
        );
      }
    }
    await remote.query('COMMIT');
  } catch (error) {
    await remote.query('ROLLBACK');
    throw error;
  }
  return edits;
}

/** Captures everything written to stdout and stderr (the handler's JSON logs and EMF) until restored. */
function captureProcessOutput(onLine: (line: string) => void): () => void {
  const streams = [process.stdout, process.stderr] as const;
  const originals = streams.map((stream) => stream.write);
  const pending = ['', ''];
  streams.forEach((stream, i) => {
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      pending[i] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const lines = pending[i]!.split('\n');
      pending[i] = lines.pop() ?? '';
      for (const line of lines) if (line) onLine(line);
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
  });
  return () => {
    streams.forEach((stream, i) => {
      stream.write = originals[i]!;
      if (pending[i]) onLine(pending[i]!);
    });
  };
}

function keyOf(keyColumns: readonly string[], row: Record<string, string | null>): string {
  return keyColumns.map((c) => `${c}=${row[c]}`).join(',');
}

/** Differences between a site table and its slice, by key and by whole-row text. */
function compareRows(
  keyColumns: readonly string[],
  expected: readonly Record<string, string | null>[],
  actual: readonly Record<string, string | null>[],
): Omit<Divergence, 'site' | 'entity'> {
  const want = new Map(expected.map((row) => [keyOf(keyColumns, row), JSON.stringify(row)]));
  const have = new Map(actual.map((row) => [keyOf(keyColumns, row), JSON.stringify(row)]));
  const missing = [...want.keys()].filter((k) => !have.has(k));
  const extra = [...have.keys()].filter((k) => !want.has(k));
  const changed = [...want.keys()].filter((k) => have.has(k) && have.get(k) !== want.get(k));
  return { missing, extra, changed };
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const tag = randomBytes(3).toString('hex');
  const remoteName = `ms_soak_${tag}_remote`;
  const siteNames = Array.from({ length: options.sites }, (_, i) => `ms_soak_${tag}_site_${i + 1}`);
  const admin = (fn: (client: Client) => Promise<unknown>) => withClient(options.serverUrl, fn);
  const log = options.log;

  // 1. The databases: one remote seeded for every tenant, and the sites, migrated and empty.
  log(`creating 1 remote and ${options.sites} site databases for ${options.tenants} tenants`);
  await admin(async (c) => {
    for (const name of [remoteName, ...siteNames]) {
      await c.query(`CREATE DATABASE ${escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8'`);
    }
  });
  const remoteUrl = databaseUrl(options.serverUrl, remoteName);
  const tenants = Array.from({ length: options.tenants }, (_, i) => i + 1);
  await withClient(remoteUrl, async (c) => {
    await createRemoteSchema(c);
    await seedRemote(c, { tenants, ...options.seed });
  });
  const sites: Record<string, LocalSite> = {};
  for (const [i, name] of siteNames.entries()) {
    const url = databaseUrl(options.serverUrl, name);
    await withClient(url, (c) => applySiteMigrations(c));
    sites[`site-${i + 1}`] = { url, tenantId: 1 + (i % options.tenants) };
  }
  const siteIds = Object.keys(sites);

  const report: SoakReport = {
    rounds: 0,
    runs: 0,
    ok: 0,
    failures: 0,
    failureSamples: [],
    locked: 0,
    worstRunMs: 0,
    medianRunMs: 0,
    writerTransactions: 0,
    writerEdits: 0,
    sitesChecked: 0,
    rowsChecked: 0,
    divergences: [],
    leaks: 0,
    outputLines: 0,
    totalMs: 0,
  };
  const runTimes: number[] = [];
  const handler = createSyncHandler({ credentials: new LocalCredentials({ remote: remoteUrl, sites }) });
  const next = random(options.randomSeed);
  const scanLine = (line: string) => {
    report.outputLines += 1;
    if (options.secrets.some((secret) => line.includes(secret))) report.leaks += 1;
  };

  /** One invocation of the handler for a site, as the scheduler makes it. */
  async function invoke(siteId: string, final: boolean): Promise<void> {
    const t0 = Date.now();
    let result: SyncResult | undefined;
    try {
      result = (await handler({ siteId }, lambdaContext(120_000))) as SyncResult;
      scanLine(JSON.stringify(result));
    } catch (error) {
      scanLine(String(error));
      report.failures += 1;
      report.failureSamples.push(`${siteId}: threw ${(error as Error).message}`);
      return;
    } finally {
      report.runs += 1;
    }
    runTimes.push(Date.now() - t0);
    report.worstRunMs = Math.max(report.worstRunMs, result.durationMs);
    if (result.status === 'ok') report.ok += 1;
    else if (result.status === 'locked' && !final) report.locked += 1;
    else {
      report.failures += 1;
      if (report.failureSamples.length < 10) {
        const failed = result.entities.find((e) => e.status === 'failed');
        report.failureSamples.push(
          `${siteId}: ${result.status} ${JSON.stringify(result.error ?? failed?.error ?? null)} (${failed?.entity ?? 'run'})`,
        );
      }
    }
  }

  /** A round: every site once (plus duplicates when the writer runs), `concurrency` at a time. */
  async function round(final: boolean): Promise<void> {
    const queue = [...siteIds];
    if (!final) {
      for (let i = 0; i < options.duplicatesPerRound; i += 1)
        queue.push(siteIds[Math.floor(next() * siteIds.length)]!);
    }
    for (let i = queue.length - 1; i > 0; i -= 1) {
      const j = Math.floor(next() * (i + 1));
      [queue[i], queue[j]] = [queue[j]!, queue[i]!];
    }
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        for (let siteId = queue.shift(); siteId !== undefined; siteId = queue.shift())
          await invoke(siteId, final);
      }),
    );
    report.rounds += 1;
  }

  // 2. Rounds while the writer edits the remote.
  const restore = captureProcessOutput(scanLine);
  let writing = true;
  let writerError: unknown;
  const writer = withClient(remoteUrl, async (remote) => {
    const counter = { n: 0 };
    const pause = 1000 / options.writesPerSecond;
    while (writing) {
      report.writerEdits += await writeOnce(remote, next, options.tenants, counter);
      report.writerTransactions += 1;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }).catch((error: unknown) => {
    writerError = error;
  });
  try {
    for (let r = 1; r <= options.rounds; r += 1) {
      await round(false);
      log(
        `round ${r}: ${report.runs} runs so far, ${report.failures} failures, ${report.locked} locked, ${report.writerTransactions} writer transactions`,
      );
    }
    writing = false;
    await writer;
    if (writerError) throw writerError;
    // 3. The writer has stopped: a last round, after which every site must equal its slice.
    await round(true);
    log(`final round: ${report.runs} runs in all`);
  } finally {
    writing = false;
    restore();
  }

  // 4. Every site against its tenant's slice, column for column.
  await withClient(remoteUrl, async (remote) => {
    const slices = new Map<number, Awaited<ReturnType<typeof expectedSlice>>>();
    for (const tenant of tenants) slices.set(tenant, await expectedSlice(remote, tenant));
    for (const siteId of siteIds) {
      const site = sites[siteId]!;
      await withClient(site.url, async (client) => {
        for (const [entity, key] of Object.entries(SHIPPED_TABLES)) {
          const actual = await tableRows(client, key);
          const expected = slices.get(site.tenantId)![entity]!;
          report.rowsChecked += actual.length;
          const diff = compareRows(key.keyColumns, expected, actual);
          if (diff.missing.length + diff.extra.length + diff.changed.length > 0) {
            report.divergences.push({
              site: siteId,
              entity,
              missing: diff.missing.slice(0, 5),
              extra: diff.extra.slice(0, 5),
              changed: diff.changed.slice(0, 5),
            });
          }
        }
      });
      report.sitesChecked += 1;
    }
  });

  if (!options.keep) {
    await withClient(options.adminUrl ?? options.serverUrl, async (c) => {
      for (const name of [remoteName, ...siteNames]) {
        await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
      }
    });
  }
  runTimes.sort((a, b) => a - b);
  report.medianRunMs = runTimes[Math.floor(runTimes.length / 2)] ?? 0;
  report.totalMs = Date.now() - started;
  return report;
}

/** The report as the lines `npm run soak` prints. */
export function formatSoakReport(report: SoakReport): string[] {
  return [
    `rounds              ${report.rounds}`,
    `runs                ${report.runs}`,
    `ok                  ${report.ok}`,
    `failures            ${report.failures}`,
    `locked              ${report.locked}`,
    `worst run           ${report.worstRunMs} ms (median invocation ${report.medianRunMs} ms)`,
    `writer              ${report.writerTransactions} transactions, ${report.writerEdits} edits`,
    `sites checked       ${report.sitesChecked} (${report.rowsChecked} rows, column for column)`,
    `divergences         ${report.divergences.length}`,
    `secret leaks        ${report.leaks} in ${report.outputLines} output lines`,
    `total               ${(report.totalMs / 1000).toFixed(1)} s`,
    ...report.failureSamples.map((s) => `  failure: ${s}`),
    ...report.divergences.map((d) => `  divergence: ${JSON.stringify(d)}`),
  ];
}
