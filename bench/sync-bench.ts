/**
 * `npm run bench`: the engine against a raw COPY pipe of the same tenant slice, on the same
 * server in the same process (DESIGN §6, issue 6). Times are medians; every scenario's counts
 * are checked against the changes it made, so a fast wrong run cannot pass.
 *
 *   npm run bench -- --rows 1000000 --reps 3 [--enforce-targets]
 *   BENCH_DATABASE_URL=postgres://… npm run bench     (a server of your own instead of the embedded one)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { escapeIdentifier } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { connect } from '../lib/db/connect';
import { startEmbeddedServer } from '../lib/db/embedded-server';
import { createRemoteSchema } from '../lib/db/remote-schema';
import { applySiteMigrations } from '../lib/db/site-migrations';
import { type EntityResult, performSync, type SyncResult } from '../lib/engine';
import { type EntityMetadata, EntityRegistry } from '../lib/entities';
import { ID_SPAN, seedRemote } from '../lib/seed/seed-remote';
import { startByteCountingProxy } from './byte-counting-proxy';
import { sampleRss } from './rss-sampler';

const BIG_TENANT = 1;
const FLEET_TENANT = 4;
/** The composite shape: meters, registers and their associations, each association two keys with parents. */
const SHAPE_TENANT = 5;
const UUID_TENANT = 6;

/** The non-integer key shape: an entity keyed by uuid, defined here as metadata only (the fourth-entity rule). */
const reading: EntityMetadata = {
  name: 'reading',
  table: 'reading',
  keyColumns: ['id'],
  columns: ['id', 'tenant_id', 'meter_ref', 'taken_at', 'value', 'note'],
  tenantColumn: 'tenant_id',
};
const READING_TABLE = `CREATE TABLE reading (id uuid PRIMARY KEY, tenant_id integer NOT NULL, meter_ref bigint,
  taken_at timestamptz NOT NULL, value numeric(18,6), note text)`;
/** Rows `from`..`to` of `tenant`, their uuids spread over the key space by md5 (`salt` for new ones). */
const readingRows = (tenant: number, from: number, to: number, salt = '') =>
  `INSERT INTO reading SELECT md5('${salt}t${tenant}-' || i)::uuid, ${tenant}, i % 5000,
     timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second', round((i % 100000) / 7.0, 6),
     CASE WHEN i % 5 = 0 THEN NULL ELSE 'reading ' || i END
   FROM generate_series(${from}, ${to}) AS i`;

interface Measurement {
  ms: number;
  bytes: number;
  rssMb: number;
}

interface ScenarioReport {
  scenario: string;
  medianMs: number;
  /** To its own baseline pipe, run just before each run. */
  ratio: number;
  /** To a no-change run of the same shape, run just before each run (parent changes). */
  noChangeRatio?: number;
  bytesFromRemote: number;
  bytesRatio: number;
  peakRssMb: number;
  counts: string;
  target?: { ratio: number; noChange?: number; bytes?: number; rssMb?: number };
  met?: boolean;
}

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    reps: { type: 'string', default: '3' },
    'enforce-targets': { type: 'boolean', default: false },
    scenarios: { type: 'string', default: 'register,fleet,composite,uuid' },
  },
});
/** Which groups run: `register` (scenarios 1-4), `fleet` (5), `composite` (6), `uuid` (7). */
const SCENARIOS = new Set(args.scenarios.split(','));
for (const name of SCENARIOS)
  if (!['register', 'fleet', 'composite', 'uuid'].includes(name)) {
    process.stderr.write(
      `bench: unknown scenario group ${JSON.stringify(name)} (register, fleet, composite, uuid)\n`,
    );
    process.exit(2);
  }
const want = (group: string) => SCENARIOS.has(group);
const ROWS = Number(args.rows);
const REPS = Math.max(1, Number(args.reps));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function dbUrl(serverUrl: string, name: string, port?: number): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  if (port !== undefined) {
    url.hostname = '127.0.0.1';
    url.port = String(port);
  }
  return url.toString();
}

function check(condition: boolean, message: string): void {
  if (!condition) {
    process.stderr.write(`bench: WRONG RESULT: ${message}\n`);
    process.exit(1);
  }
}

function expectCounts(result: SyncResult, entity: string, expected: Partial<EntityResult>): EntityResult {
  const e = result.entities.find((x) => x.entity === entity);
  check(
    result.status === 'ok' && e?.status === 'ok',
    `${entity}: run ${result.status} ${JSON.stringify(result.error ?? e?.error)}`,
  );
  for (const [k, v] of Object.entries(expected)) {
    check(
      (e as unknown as Record<string, unknown>)[k] === v,
      `${entity}.${k} = ${(e as unknown as Record<string, unknown>)[k]}, expected ${v}`,
    );
  }
  return e!;
}

async function main(): Promise<void> {
  const embedded = process.env.BENCH_DATABASE_URL ? undefined : await startEmbeddedServer();
  const serverUrl = process.env.BENCH_DATABASE_URL ?? embedded!.url;
  const suffix = Date.now().toString(36);
  const names = {
    remote: `bench_remote_${suffix}`,
    site: `bench_site_${suffix}`,
    fleet: `bench_fleet_${suffix}`,
    shape: `bench_shape_${suffix}`,
  };
  const admin = await connect(serverUrl, 'site');
  for (const name of Object.values(names)) await admin.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
  const serverPort = Number(new URL(serverUrl).port || 5432);
  const proxy = await startByteCountingProxy(new URL(serverUrl).hostname, serverPort);
  const remoteDirect = dbUrl(serverUrl, names.remote);
  const remoteUrl = dbUrl(serverUrl, names.remote, proxy.port);
  const siteUrl = dbUrl(serverUrl, names.site);
  const fleetUrl = dbUrl(serverUrl, names.fleet);
  const shapeUrl = dbUrl(serverUrl, names.shape);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  try {
    // ---- arrange -----------------------------------------------------------------------------
    const remote = await connect(remoteDirect, 'site');
    await createRemoteSchema(remote);
    const t = Date.now();
    if (want('register'))
      await seedRemote(remote, {
        tenants: [BIG_TENANT],
        metersPerTenant: 0,
        registersPerTenant: ROWS,
        registersPerMeter: 0,
      });
    const others = Math.max(1, Math.round(ROWS / 10));
    await seedRemote(remote, {
      tenants: [2, 3],
      metersPerTenant: 100,
      registersPerTenant: others,
      registersPerMeter: 5,
    });
    const scale = Math.min(1, ROWS / 1_000_000);
    const fleet = {
      meters: Math.max(50, Math.round(5_000 * scale)),
      registers: Math.max(200, Math.round(20_000 * scale)),
      perMeter: 20,
    };
    if (want('fleet'))
      await seedRemote(remote, {
        tenants: [FLEET_TENANT],
        metersPerTenant: fleet.meters,
        registersPerTenant: fleet.registers,
        registersPerMeter: fleet.perMeter,
      });
    // `ROWS` associations, 50 a meter, over a tenth as many registers (issue 15's large tenant is 20k/100k/1M).
    const composite = {
      meters: Math.max(40, Math.round(ROWS / 50)),
      registers: Math.max(200, Math.round(ROWS / 10)),
      perMeter: 50,
    };
    if (want('composite'))
      await seedRemote(remote, {
        tenants: [SHAPE_TENANT],
        metersPerTenant: composite.meters,
        registersPerTenant: composite.registers,
        registersPerMeter: composite.perMeter,
      });
    if (want('uuid')) {
      await remote.query(READING_TABLE);
      await remote.query(readingRows(UUID_TENANT, 1, ROWS));
      await remote.query(readingRows(2, 1, Math.max(1, Math.round(ROWS / 10))));
    }
    await remote.query('VACUUM ANALYZE');
    say(
      `seeded remote: tenant ${BIG_TENANT} ${ROWS} registers, tenants 2-3 ${others} registers each, tenant ${FLEET_TENANT} ${fleet.meters}/${fleet.registers}/${fleet.meters * fleet.perMeter} (${Date.now() - t} ms)`,
    );
    const site = await connect(siteUrl, 'site');
    await applySiteMigrations(site);
    await site.query('CREATE TABLE baseline_register (LIKE register INCLUDING ALL)');
    if (want('uuid')) {
      await site.query(READING_TABLE);
      await site.query('CREATE TABLE baseline_reading (LIKE reading INCLUDING ALL)');
    }
    const fleetSite = await connect(fleetUrl, 'site');
    await applySiteMigrations(fleetSite);
    const shapeSite = await connect(shapeUrl, 'site');
    await applySiteMigrations(shapeSite);
    for (const table of ['meter', 'register', 'device_register'])
      await shapeSite.query(`CREATE TABLE baseline_${table} (LIKE ${table} INCLUDING ALL)`);

    // Autovacuum is off for the bench's tables and `settle` does its work before every timed run,
    // as autovacuum would between two scheduled runs: no vacuum ever runs during a measurement.
    const databases = [remote, site, fleetSite, shapeSite];
    for (const client of databases) {
      const { rows } = await client.query<{ name: string }>(
        `SELECT quote_ident(relname) AS name FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`,
      );
      for (const { name } of rows) await client.query(`ALTER TABLE ${name} SET (autovacuum_enabled = false)`);
    }
    // A checkpoint too: the writes of the runs before (a million rows each) are flushed now, not
    // by the checkpointer in the middle of the next measurement. Skipped where the role may not.
    let checkpoints = true;
    const settle = async () => {
      for (const client of databases) await client.query('VACUUM (ANALYZE)');
      if (checkpoints)
        await remote.query('CHECKPOINT').catch((error: Error) => {
          checkpoints = false;
          say(`no CHECKPOINT before the runs: ${error.message}`);
        });
    };
    const measure = async <T>(fn: () => Promise<T>): Promise<Measurement & { value: T }> => {
      proxy.reset();
      const rss = sampleRss();
      const started = performance.now();
      const value = await fn();
      const ms = performance.now() - started;
      return { ms, bytes: proxy.bytesFromServer, rssMb: rss.stop() / 1024 / 1024, value };
    };
    /**
     * Each run of a scenario follows a run of its baseline pipe (`pair`), and its ratio is to that
     * one: the speed of a shared machine drifts over minutes, the ratio of two runs a few seconds
     * apart much less. `reference` (a no-change run, say) runs between the pipe and the scenario's
     * `prepare`, for a second ratio. The background work of the servers is done before each run
     * (see `settle`).
     */
    interface RunOptions {
      pair?: () => Promise<number>;
      reference?: () => Promise<number>;
    }
    const runs = async (
      label: string,
      prepare: () => Promise<void>,
      body: () => Promise<string>,
      { pair, reference }: RunOptions = {},
    ) => {
      const ms: number[] = [];
      const ratios: number[] = [];
      const referenceRatios: number[] = [];
      const bytes: number[] = [];
      let rss = 0;
      let counts = '';
      for (let i = 0; i < REPS; i++) {
        const base = pair ? await pair() : undefined;
        const ref = reference ? await reference() : undefined;
        await prepare();
        await settle();
        const m = await measure(body);
        ms.push(m.ms);
        if (base !== undefined) ratios.push(m.ms / base);
        if (ref !== undefined) referenceRatios.push(m.ms / ref);
        bytes.push(m.bytes);
        rss = Math.max(rss, m.rssMb);
        if (typeof m.value === 'string') counts = m.value;
        say(
          `  ${label} #${i + 1}: ${m.ms.toFixed(0)} ms${base !== undefined ? ` (baseline just before: ${base.toFixed(0)} ms)` : ''}${ref !== undefined ? ` (no-change run before: ${ref.toFixed(0)} ms)` : ''}, ${m.bytes} bytes from remote, ${m.rssMb.toFixed(0)} MB RSS ${counts}`,
        );
      }
      return {
        medianMs: median(ms),
        times: ms,
        ratio: ratios.length > 0 ? median(ratios) : 1,
        ...(referenceRatios.length > 0 ? { referenceRatio: median(referenceRatios) } : {}),
        bytes: median(bytes),
        rss,
        counts,
      };
    };
    const sync = (entities: string[], url = siteUrl, tenantId = BIG_TENANT) =>
      performSync({ remote: remoteUrl, site: url, tenantId, entities, allowMassDelete: true });
    const nextId = { value: BIG_TENANT * ID_SPAN + ROWS + 1 };

    // ---- baseline: a raw COPY pipe of the same slice -----------------------------------------
    const baselineClient = await connect(remoteUrl, 'remote');
    const columns = 'id, tenant_id, name, address, data_type, unit, scale, description, updated_at';
    const baselinePipe = async () => {
      await baselineClient.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const source = baselineClient.query(
        copyTo(`COPY (SELECT ${columns} FROM register WHERE tenant_id = ${BIG_TENANT}) TO STDOUT`),
      );
      const sink = site.query(copyFrom(`COPY baseline_register (${columns}) FROM STDIN`));
      await pipeline(source, sink);
      await baselineClient.query('COMMIT');
      check(sink.rowCount === ROWS, `baseline copied ${sink.rowCount} rows`);
      return `rows=${sink.rowCount}`;
    };
    const baselineTimes: number[] = [];
    const baselineRun = async () => {
      await site.query('TRUNCATE baseline_register');
      await settle();
      const m = await measure(baselinePipe);
      baselineTimes.push(m.ms);
      return m.ms;
    };
    const baseline =
      want('register') || want('fleet')
        ? await runs(
            'baseline COPY pipe',
            async () => {
              await site.query('TRUNCATE baseline_register');
            },
            baselinePipe,
          )
        : undefined;

    const reports: ScenarioReport[] = [];
    const report = (
      scenario: string,
      r: Awaited<ReturnType<typeof runs>>,
      target?: ScenarioReport['target'],
      baselineBytes = baseline?.bytes ?? 1,
    ) => {
      const ratio = r.ratio;
      const met = target
        ? ratio <= target.ratio &&
          (target.rssMb === undefined || r.rss <= target.rssMb) &&
          (target.bytes === undefined || r.bytes <= target.bytes) &&
          (target.noChange === undefined || (r.referenceRatio ?? Infinity) <= target.noChange)
        : undefined;
      reports.push({
        scenario,
        medianMs: Math.round(r.medianMs),
        ratio: Number(ratio.toFixed(3)),
        ...(r.referenceRatio !== undefined ? { noChangeRatio: Number(r.referenceRatio.toFixed(2)) } : {}),
        bytesFromRemote: r.bytes,
        bytesRatio: Number((r.bytes / baselineBytes).toFixed(4)),
        peakRssMb: Math.round(r.rss),
        counts: r.counts,
        ...(target ? { target, met } : {}),
      });
    };
    if (baseline) report('baseline: raw COPY pipe', baseline);
    const baselineRow = baseline ? reports.at(-1) : undefined;

    if (want('register')) {
      // ---- 1. full load into an empty site -----------------------------------------------------
      say('1. full load into an empty site');
      const full = await runs(
        'full load',
        async () => {
          await site.query('TRUNCATE device_register, register, meter');
        },
        async () => {
          const e = expectCounts(await sync(['register']), 'register', {
            inserted: ROWS,
            updated: 0,
            deleted: 0,
          });
          return `inserted=${e.inserted}`;
        },
        { pair: baselineRun },
      );
      report('1. full load, empty site', full, {
        ratio: 1.15,
        bytes: Math.round((baseline?.bytes ?? 0) * 1.1),
        rssMb: 150,
      });

      // ---- 2. 2% churn -------------------------------------------------------------------------
      let salt = 0;
      const churn = async (updates: number, inserts: number, deletes: number) => {
        salt += 1;
        const deleted = await remote.query(
          `DELETE FROM register WHERE id IN (SELECT id FROM register WHERE tenant_id = $1 ORDER BY hashint8(id + $2) LIMIT $3)`,
          [BIG_TENANT, salt * 104729, deletes],
        );
        const updated = await remote.query(
          `UPDATE register SET scale = scale + 1, updated_at = updated_at + interval '1 second'
          WHERE id IN (SELECT id FROM register WHERE tenant_id = $1 ORDER BY hashint8(id + $2) LIMIT $3)`,
          [BIG_TENANT, salt * 7919, updates],
        );
        const inserted = await remote.query(
          `INSERT INTO register (id, tenant_id, name, address, data_type, unit, scale, description, updated_at)
         SELECT $1::bigint + i, $2, 'new ' || i, i % 65536, 'uint16', 'kWh', 1.5, NULL, timestamptz '2031-01-01' + i * interval '1 microsecond'
         FROM generate_series(0, $3::int - 1) AS i`,
          [nextId.value, BIG_TENANT, inserts],
        );
        nextId.value += inserts;
        return {
          updated: updated.rowCount ?? 0,
          inserted: inserted.rowCount ?? 0,
          deleted: deleted.rowCount ?? 0,
        };
      };
      const churnScenario = async (label: string, updates: number, inserts: number, deletes: number) => {
        let expected = { updated: 0, inserted: 0, deleted: 0 };
        return runs(
          label,
          async () => {
            // Deletes first, so that no row is both updated and deleted: the expected counts are exact.
            expected = await churn(updates, inserts, deletes);
          },
          async () => {
            const e = expectCounts(await sync(['register']), 'register', expected);
            return `inserted=${e.inserted} updated=${e.updated} deleted=${e.deleted}`;
          },
          { pair: baselineRun },
        );
      };
      say('2. 2% churn');
      const c = (share: number) => Math.max(1, Math.round(ROWS * share));
      report('2. 2% churn', await churnScenario('2% churn', c(0.01), c(0.005), c(0.005)), {
        ratio: 0.7,
        rssMb: 150,
      });
      say('3. 10 rows changed');
      report('3. 10 rows changed', await churnScenario('10 rows', 4, 3, 3), {
        ratio: 0.5,
        bytes: 1_000_000,
        rssMb: 150,
      });
      // A plan of the same ten rows: its cost against the dry-run sync of them, run just before on
      // the same state (each pair: the pending change applied, ten new rows changed, the dry run, the plan).
      say('3b. plan of 10 rows changed');
      let dryMs = 0;
      let pending = false;
      const planned = await runs(
        'plan of 10 rows',
        async () => {},
        async () => {
          const started = performance.now();
          const plan = await performSync({
            remote: remoteUrl,
            site: siteUrl,
            tenantId: BIG_TENANT,
            entities: ['register'],
            allowMassDelete: true,
            changes: { max: 100 },
          });
          const ms = performance.now() - started;
          const e = expectCounts(plan, 'register', { inserted: 3, updated: 4, deleted: 3 });
          check(
            e.changes?.length === 10 && e.changesTruncated === false,
            `plan listed ${e.changes?.length} changes`,
          );
          return `changes=${e.changes!.length} plan/dry-run sync=${(ms / dryMs).toFixed(2)}x`;
        },
        {
          pair: async () => {
            if (pending) await sync(['register']);
            await churn(4, 3, 3);
            pending = true;
            return baselineRun();
          },
          reference: async () => {
            await settle();
            const m = await measure(() =>
              performSync({
                remote: remoteUrl,
                site: siteUrl,
                tenantId: BIG_TENANT,
                entities: ['register'],
                allowMassDelete: true,
                dryRun: true,
              }),
            );
            dryMs = m.ms;
            return m.ms;
          },
        },
      );
      if (pending) await sync(['register']);
      // Its second ratio is to the dry-run sync, in `counts`: not the no-change column's.
      report(
        '3b. plan of 10 rows changed',
        { ...planned, referenceRatio: undefined },
        { ratio: 0.5, bytes: 1_000_000, rssMb: 150 },
      );
      say('4. nothing changed');
      const none = await runs(
        'no change',
        async () => {},
        async () => {
          const e = expectCounts(await sync(['register']), 'register', {
            inserted: 0,
            updated: 0,
            deleted: 0,
          });
          return `unchanged=${e.unchanged}`;
        },
        { pair: baselineRun },
      );
      report('4. nothing changed', none, { ratio: 0.35, bytes: 64 * 1024, rssMb: 150 });
    }

    if (want('fleet')) {
      // ---- 5. three entities at a realistic tenant size ------------------------------------------
      say('5. three entities, realistic tenant');
      const all = ['meter', 'register', 'device_register'];
      const fleetLoad = await runs(
        'fleet first load',
        async () => {
          await fleetSite.query('TRUNCATE device_register, register, meter');
        },
        async () => {
          const r = await sync(all, fleetUrl, FLEET_TENANT);
          expectCounts(r, 'meter', { inserted: fleet.meters });
          expectCounts(r, 'register', { inserted: fleet.registers });
          expectCounts(r, 'device_register', { inserted: fleet.meters * fleet.perMeter });
          return r.entities.map((e) => `${e.entity}=${e.inserted}`).join(' ');
        },
        { pair: baselineRun },
      );
      report('5a. 3 entities, first load', fleetLoad);
      const fleetNone = await runs(
        'fleet no change',
        async () => {},
        async () => {
          const r = await sync(all, fleetUrl, FLEET_TENANT);
          for (const entity of all) expectCounts(r, entity, { inserted: 0, updated: 0, deleted: 0 });
          return r.entities.map((e) => `${e.entity}=${e.unchanged}`).join(' ');
        },
        { pair: baselineRun },
      );
      report('5b. 3 entities, no change', fleetNone);
    }

    if (want('uuid')) {
      // ---- 7. a non-integer key: 1M rows keyed by uuid, against a raw COPY pipe of its own slice --
      say(`7. uuid key: ${ROWS} readings`);
      const readings = new EntityRegistry([reading]);
      const uuidPipe = async () => {
        await baselineClient.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const source = baselineClient.query(
          copyTo(`COPY (SELECT * FROM reading WHERE tenant_id = ${UUID_TENANT}) TO STDOUT`),
        );
        const sink = site.query(copyFrom('COPY baseline_reading FROM STDIN'));
        await pipeline(source, sink);
        await baselineClient.query('COMMIT');
        check(sink.rowCount === ROWS, `uuid baseline copied ${sink.rowCount} rows`);
        return `rows=${sink.rowCount}`;
      };
      const uuidBaselineRun = async () => {
        await site.query('TRUNCATE baseline_reading');
        await settle();
        return (await measure(uuidPipe)).ms;
      };
      const uuidBaseline = await runs(
        'uuid baseline COPY pipe',
        async () => {
          await site.query('TRUNCATE baseline_reading');
        },
        uuidPipe,
      );
      report('baseline: raw COPY pipe of the uuid slice', uuidBaseline, undefined, uuidBaseline.bytes);
      const uuidReport = (
        scenario: string,
        r: Awaited<ReturnType<typeof runs>>,
        target?: ScenarioReport['target'],
      ) => report(scenario, r, target, uuidBaseline.bytes);
      const uuidSync = () =>
        performSync({
          remote: remoteUrl,
          site: siteUrl,
          tenantId: UUID_TENANT,
          registry: readings,
          allowMassDelete: true,
        });
      uuidReport(
        '7a. uuid, first load',
        await runs(
          'uuid first load',
          async () => {
            await site.query('TRUNCATE reading');
          },
          async () => `inserted=${expectCounts(await uuidSync(), 'reading', { inserted: ROWS }).inserted}`,
          { pair: uuidBaselineRun },
        ),
        { ratio: 1.2, rssMb: 150 },
      );
      let uuidSalt = 0;
      const uuidChurn = async (updates: number, inserts: number, deletes: number) => {
        uuidSalt += 1;
        const deleted = await remote.query(
          `DELETE FROM reading WHERE id IN (SELECT id FROM reading WHERE tenant_id = $1 ORDER BY md5(id::text || $2) LIMIT $3)`,
          [UUID_TENANT, `d${uuidSalt}`, deletes],
        );
        const updated = await remote.query(
          `UPDATE reading SET value = value + 1 WHERE id IN (SELECT id FROM reading WHERE tenant_id = $1 ORDER BY md5(id::text || $2) LIMIT $3)`,
          [UUID_TENANT, `u${uuidSalt}`, updates],
        );
        const inserted = await remote.query(readingRows(UUID_TENANT, 1, inserts, `new${uuidSalt}-`));
        return {
          updated: updated.rowCount ?? 0,
          inserted: inserted.rowCount ?? 0,
          deleted: deleted.rowCount ?? 0,
        };
      };
      const uuidChurnRuns = (label: string, updates: number, inserts: number, deletes: number) => {
        let expected = { updated: 0, inserted: 0, deleted: 0 };
        return runs(
          label,
          async () => {
            expected = await uuidChurn(updates, inserts, deletes);
          },
          async () => {
            const e = expectCounts(await uuidSync(), 'reading', expected);
            return `inserted=${e.inserted} updated=${e.updated} deleted=${e.deleted}`;
          },
          { pair: uuidBaselineRun },
        );
      };
      const share = (p: number) => Math.max(1, Math.round(ROWS * p));
      uuidReport(
        '7b. uuid, 2% churn',
        await uuidChurnRuns('uuid 2% churn', share(0.01), share(0.005), share(0.005)),
        {
          ratio: 0.6,
          rssMb: 150,
        },
      );
      uuidReport('7c. uuid, 10 rows changed', await uuidChurnRuns('uuid 10 rows', 4, 3, 3), {
        ratio: 0.3,
        bytes: 1_000_000,
        rssMb: 150,
      });
      uuidReport(
        '7d. uuid, nothing changed',
        await runs(
          'uuid no change',
          async () => {},
          async () =>
            `unchanged=${expectCounts(await uuidSync(), 'reading', { inserted: 0, updated: 0, deleted: 0 }).unchanged}`,
          { pair: uuidBaselineRun },
        ),
        { ratio: 0.25, bytes: 64 * 1024, rssMb: 150 },
      );
    }

    if (want('composite')) {
      // ---- 6. the composite shape: every kind of change of parents ------------------------------
      say(
        `6. composite shape: ${composite.meters} meters, ${composite.registers} registers, ${composite.meters * composite.perMeter} associations`,
      );
      const shapeTables = ['meter', 'register', 'device_register'];
      const shapeSlices: Record<string, string> = {
        meter: `SELECT * FROM meter WHERE tenant_id = ${SHAPE_TENANT}`,
        register: `SELECT * FROM register WHERE tenant_id = ${SHAPE_TENANT}`,
        device_register: `SELECT dr.* FROM device_register dr JOIN meter m ON m.id = dr.device_id WHERE m.tenant_id = ${SHAPE_TENANT}`,
      };
      // Its baseline: raw COPY pipes of exactly its three slices, in one snapshot, into tables with the same keys.
      const shapePipe = async () => {
        await baselineClient.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        let rows = 0;
        for (const table of shapeTables) {
          const source = baselineClient.query(copyTo(`COPY (${shapeSlices[table]}) TO STDOUT`));
          const sink = shapeSite.query(copyFrom(`COPY baseline_${table} FROM STDIN`));
          await pipeline(source, sink);
          rows += sink.rowCount;
        }
        await baselineClient.query('COMMIT');
        return `rows=${rows}`;
      };
      const shapePipeTimes: number[] = [];
      const shapeBaselineRun = async () => {
        await shapeSite.query(`TRUNCATE ${shapeTables.map((t) => `baseline_${t}`).join(', ')}`);
        await settle();
        const { ms } = await measure(shapePipe);
        shapePipeTimes.push(ms);
        return ms;
      };
      const shapeSync = () =>
        performSync({ remote: remoteUrl, site: shapeUrl, tenantId: SHAPE_TENANT, allowMassDelete: true });
      const expectShape = (result: SyncResult, expected: Record<string, Partial<EntityResult>>) => {
        for (const table of shapeTables)
          expectCounts(result, table, {
            inserted: 0,
            updated: 0,
            deleted: 0,
            skipped: 0,
            ...expected[table],
          });
        return result.entities.map((e) => `${e.entity}=${e.inserted}/${e.updated}/${e.deleted}`).join(' ');
      };
      const shapeNoChange = async () => {
        await settle();
        const m = await measure(shapeSync);
        expectShape(m.value, {});
        return m.ms;
      };
      const shapeBaseline = await runs(
        'composite baseline COPY pipes',
        async () => {
          await shapeSite.query(`TRUNCATE ${shapeTables.map((t) => `baseline_${t}`).join(', ')}`);
        },
        shapePipe,
      );
      report('baseline: raw COPY pipes of the 3 slices', shapeBaseline, undefined, shapeBaseline.bytes);
      const shapeBaselineRow = reports.at(-1)!;
      const shapeReport = (
        scenario: string,
        r: Awaited<ReturnType<typeof runs>>,
        target?: ScenarioReport['target'],
      ) => report(scenario, r, target, shapeBaseline.bytes);
      const onShape = { pair: shapeBaselineRun, reference: shapeNoChange };
      shapeReport(
        '6a. composite, first load',
        await runs(
          'composite first load',
          async () => {
            await shapeSite.query('TRUNCATE device_register, register, meter');
          },
          async () =>
            expectShape(await shapeSync(), {
              meter: { inserted: composite.meters },
              register: { inserted: composite.registers },
              device_register: { inserted: composite.meters * composite.perMeter },
            }),
          { pair: shapeBaselineRun },
        ),
      );
      shapeReport(
        '6b. composite, no change',
        await runs(
          'composite no change',
          async () => {},
          async () => expectShape(await shapeSync(), {}),
          {
            pair: shapeBaselineRun,
          },
        ),
      );
      let shapeSalt = 0;
      let nextMeter = SHAPE_TENANT * ID_SPAN + composite.meters + 1;
      const pickOne = async (sql: string) => {
        shapeSalt += 1;
        const { rows } = await remote.query<{ id: string }>(sql, [SHAPE_TENANT, shapeSalt * 104729]);
        return rows[0]!.id;
      };
      // Issue 18's targets, ratios only: peak RSS is reported, and the first load's (issue 15) is the shape's largest.
      const singleTarget = { ratio: 0.3, noChange: 3 };
      let expected: Record<string, Partial<EntityResult>> = {};
      const parentScenario = (label: string, change: () => Promise<Record<string, Partial<EntityResult>>>) =>
        runs(
          label,
          async () => {
            expected = await change();
          },
          async () => expectShape(await shapeSync(), expected),
          onShape,
        );
      shapeReport(
        '6c. one register updated',
        await parentScenario('one register updated', async () => {
          const id = await pickOne(
            `SELECT id FROM register WHERE tenant_id = $1 ORDER BY hashint8(id + $2) LIMIT 1`,
          );
          await remote.query(`UPDATE register SET unit = 'unit ' || $2 WHERE id = $1`, [id, shapeSalt]);
          return { register: { updated: 1 } };
        }),
        singleTarget,
      );
      shapeReport(
        '6d. one register deleted with its associations',
        await parentScenario('one register deleted', async () => {
          const id = await pickOne(
            `SELECT dr.register_id AS id FROM device_register dr JOIN meter m ON m.id = dr.device_id
           WHERE m.tenant_id = $1 ORDER BY hashint8(dr.register_id + $2) LIMIT 1`,
          );
          const children = await remote.query('DELETE FROM device_register WHERE register_id = $1', [id]);
          await remote.query('DELETE FROM register WHERE id = $1', [id]);
          return { register: { deleted: 1 }, device_register: { deleted: children.rowCount ?? 0 } };
        }),
        singleTarget,
      );
      shapeReport(
        '6e. one meter inserted with 50 associations',
        await parentScenario('one meter inserted', async () => {
          const id = nextMeter++;
          await remote.query(
            `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at) VALUES ($1, $2, 'new', 'mbus', true, now())`,
            [id, SHAPE_TENANT],
          );
          await remote.query(
            `INSERT INTO device_register SELECT $1, $2::bigint + r, 60, true FROM generate_series(1, 50) AS r`,
            [id, SHAPE_TENANT * ID_SPAN],
          );
          return { meter: { inserted: 1 }, device_register: { inserted: 50 } };
        }),
        singleTarget,
      );
      shapeReport(
        '6f. 1% of registers updated',
        await parentScenario('1% of registers updated', async () => {
          shapeSalt += 1;
          const updated = await remote.query(
            `UPDATE register SET scale = scale + 1 WHERE tenant_id = $1 AND hashint8(id + $2) % 100 = 0`,
            [SHAPE_TENANT, shapeSalt],
          );
          return { register: { updated: updated.rowCount ?? 0 } };
        }),
        { ratio: 0.5 },
      );
      const newMeters = Math.max(10, Math.round(composite.meters / 20));
      shapeReport(
        `6g. a third of registers updated, 2% of associations deleted, ${newMeters} new meters with 50 each`,
        await parentScenario('broad change of parents', async () => {
          shapeSalt += 1;
          const deleted = await remote.query(
            `DELETE FROM device_register WHERE device_id IN (SELECT id FROM meter WHERE tenant_id = $1)
             AND abs(hashint8(device_id * 31 + register_id + $2)) % 50 = 0`,
            [SHAPE_TENANT, shapeSalt],
          );
          const updated = await remote.query(
            `UPDATE register SET scale = scale + 1 WHERE tenant_id = $1 AND abs(hashint8(id + $2)) % 3 = 0`,
            [SHAPE_TENANT, shapeSalt],
          );
          const first = nextMeter;
          nextMeter += newMeters;
          await remote.query(
            `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at)
           SELECT $1::bigint + i, $2, 'new ' || i, 'mbus', true, now() FROM generate_series(0, $3::int - 1) AS i`,
            [first, SHAPE_TENANT, newMeters],
          );
          await remote.query(
            `INSERT INTO device_register SELECT $1::bigint + i, $2::bigint + r, 60, true
           FROM generate_series(0, $3::int - 1) AS i, generate_series(1, 50) AS r`,
            [first, SHAPE_TENANT * ID_SPAN, newMeters],
          );
          return {
            meter: { inserted: newMeters },
            register: { updated: updated.rowCount ?? 0 },
            device_register: { inserted: newMeters * 50, deleted: deleted.rowCount ?? 0 },
          };
        }),
        { ratio: 1.0 },
      );
      shapeBaselineRow.medianMs = Math.round(median([...shapePipeTimes, ...shapeBaseline.times]));
    }

    await Promise.all([remote.end(), site.end(), fleetSite.end(), shapeSite.end(), baselineClient.end()]);
    // The baseline row: every run of the pipe, the first ones and those paired with a scenario.
    if (baselineRow && baseline)
      baselineRow.medianMs = Math.round(median([...baselineTimes, ...baseline.times]));

    // ---- report ------------------------------------------------------------------------------
    const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    const header = [
      'scenario',
      'median ms',
      'x baseline',
      'x no-change',
      'bytes from remote',
      'x bytes',
      'peak RSS MB',
      'target',
      'met',
      'counts',
    ];
    const lines = reports.map((r) => [
      r.scenario,
      String(r.medianMs),
      r.ratio.toFixed(2),
      r.noChangeRatio === undefined ? '' : r.noChangeRatio.toFixed(1),
      String(r.bytesFromRemote),
      r.bytesRatio.toFixed(4),
      String(r.peakRssMb),
      r.target
        ? `<= ${r.target.ratio}${r.target.noChange !== undefined ? `, <= ${r.target.noChange}x no-change` : ''}${r.target.bytes !== undefined ? `, <= ${r.target.bytes} B` : ''}${r.target.rssMb !== undefined ? `, <= ${r.target.rssMb} MB` : ''}`
        : '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
      r.counts,
    ]);
    const table = [header, header.map(() => '---'), ...lines]
      .map((row) => `| ${row.join(' | ')} |`)
      .join('\n');
    say('');
    say(`rows: ${ROWS}, reps: ${REPS}, machine: ${machine}`);
    say(table);
    const dir = join(process.cwd(), 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `bench-${ROWS}.json`);
    writeFileSync(
      file,
      JSON.stringify({ date: new Date().toISOString(), rows: ROWS, reps: REPS, machine, reports }, null, 2),
    );
    say(`written ${file}`);
    if (args['enforce-targets'] && reports.some((r) => r.met === false)) {
      process.stderr.write('bench: a target was missed\n');
      process.exitCode = 1;
    }
  } finally {
    for (const name of Object.values(names)) {
      await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`).catch(() => {});
    }
    await admin.end();
    await proxy.close();
    await embedded?.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
