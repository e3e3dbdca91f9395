/**
 * The `sync_run` history a committing run keeps (record-run.ts): rows started more than the
 * retention ago go, at most PRUNE_BATCH a run, except the newest ok run and the newest run that was
 * not ok, however old; a dry run, a run given no retention and a run that does not commit delete
 * nothing. Cost is the rows the site server reads from sync_run (pg_stat_user_tables), never a time:
 * bounded by the batch, whatever the history and however long the site has been failing.
 */
import { PRUNE_BATCH, pruneRuns } from '../../lib/engine/record-run';
import { registerId } from '../../lib/seed/seed-remote';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { readsDuring } from '../harness/table-reads';
import { databaseUrl } from '../harness/test-database';

const RETENTION_DAYS = 30;
/** The history: RECENT runs from 1 minute to 29 days ago, then OLD runs from 31 to 400 days ago. */
const RECENT = 40_000;
const OLD = 160_000;
const HISTORY = RECENT + OLD;
/** The old run started 90 days ago (i counts from the newest run, 1, to the oldest, HISTORY). */
const NINETY_DAYS = RECENT + 1 + Math.round(((90 - 31) * OLD) / (400 - 31));
/** What a run's prune may read of sync_run beside its batch: the batch's rows again by id, and the two it keeps. */
const BATCH_READS = 2 * PRUNE_BATCH + 2;
const HANDFUL = 10;

describe('sync_run retention', () => {
  let fx: SyncFixture;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 5, registersPerTenant: 6, registersPerMeter: 2 });
    expect((await fx.sync()).status).toBe('ok');
    // Statistics only from the ANALYZE of each arrangement: stable plans.
    await fx.siteClient.query('ALTER TABLE sync_run SET (autovacuum_enabled = false)');
  });
  afterAll(() => fx.close());

  /**
   * Replaces sync_run with HISTORY runs of site 'history', in one INSERT. `status` is an SQL
   * expression of `i` (1 the newest run, HISTORY the oldest) and `age`.
   */
  async function history(status: string): Promise<void> {
    await fx.siteClient.query('TRUNCATE sync_run');
    await fx.siteClient.query(
      `INSERT INTO sync_run (site_id, tenant_id, status, started_at, finished_at, duration_ms,
                             inserted, updated, deleted, skipped, failed_entities, result)
       SELECT 'history', 1, h.status, h.started_at, h.started_at + interval '2 seconds', 2000, 0, 0, 0, 0,
              CASE WHEN h.status = 'ok' THEN '{}'::text[] ELSE ARRAY['register'] END,
              jsonb_build_object('status', h.status, 'i', h.i)
       FROM (SELECT i, now() - age AS started_at, (${status}) AS status
             FROM generate_series(1, $1::integer) AS i,
             LATERAL (SELECT CASE WHEN i <= $2::integer
                                  THEN interval '1 minute' + (i - 1) * (interval '29 days' / $2::integer)
                                  ELSE interval '31 days' + (i - $2::integer - 1) * (interval '369 days' / $3::integer)
                             END AS age) AS a) AS h`,
      [HISTORY, RECENT, OLD],
    );
    await fx.siteClient.query('VACUUM ANALYZE sync_run');
  }

  /** Counts of sync_run: all rows, those older than the retention, and the history's runs within it with a digest of their ids. */
  async function census(): Promise<{ total: number; old: number; recent: number; recentIds: string }> {
    const { rows } = await fx.siteClient.query(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE started_at < now() - make_interval(days => $1))::int AS old,
              count(*) FILTER (WHERE site_id = 'history' AND started_at >= now() - make_interval(days => $1))::int AS recent,
              coalesce(sum(id) FILTER (WHERE site_id = 'history' AND started_at >= now() - make_interval(days => $1)), 0)::text AS "recentIds"
       FROM sync_run`,
      [RETENTION_DAYS],
    );
    return rows[0];
  }

  /** The ids of the `n` oldest runs, oldest first. */
  async function oldest(n: number): Promise<string[]> {
    const { rows } = await fx.siteClient.query('SELECT id::text FROM sync_run ORDER BY started_at LIMIT $1', [
      n,
    ]);
    return rows.map((r) => r.id);
  }

  /** The runs older than the retention, as `[i, status]` (i of the history, null for a run of the test). */
  async function oldRuns(): Promise<[number | null, string][]> {
    const { rows } = await fx.siteClient.query(
      `SELECT (result->>'i')::int AS i, status FROM sync_run
       WHERE started_at < now() - make_interval(days => $1) ORDER BY started_at DESC`,
      [RETENTION_DAYS],
    );
    return rows.map((r) => [r.i, r.status]);
  }

  const measured = (options = {}) =>
    readsDuring(fx.site.url, fx.siteClient, ['sync_run'], () => fx.sync(options));
  const retained = { syncRunRetentionDays: RETENTION_DAYS };

  describe('a history of 200,000 runs over 400 days, whose newest failure is 90 days old', () => {
    let before: Awaited<ReturnType<typeof census>>;

    beforeAll(async () => {
      // Every run of the last 100 days ok but one failure 90 days ago; before that, a failure in 7
      // and a partial run in 11.
      await history(
        `CASE WHEN i = ${NINETY_DAYS} THEN 'failed' WHEN age < interval '100 days' THEN 'ok'
              WHEN i % 7 = 0 THEN 'failed' WHEN i % 11 = 0 THEN 'partial' ELSE 'ok' END`,
      );
      before = await census();
    });

    it('is what the test means it to be', async () => {
      const { rows } = await fx.siteClient.query(
        `SELECT (result->>'i')::int AS i, round(extract(epoch FROM now() - started_at) / 86400) AS days,
                (SELECT count(*)::int FROM sync_run WHERE status = 'failed') AS failed,
                (SELECT count(*)::int FROM sync_run WHERE status = 'partial') AS partial
         FROM sync_run WHERE status <> 'ok' ORDER BY started_at DESC LIMIT 1`,
      );
      expect(rows[0]).toMatchObject({ i: NINETY_DAYS, days: '90' });
      expect(rows[0].failed).toBeGreaterThan(10_000);
      expect(rows[0].partial).toBeGreaterThan(5_000);
      expect(before).toMatchObject({ total: HISTORY, old: OLD, recent: RECENT });
    });

    it('a dry run deletes nothing and reads nothing of sync_run', async () => {
      // Act
      const { value: result, reads } = await measured({ ...retained, dryRun: true });

      // Assert
      expect(result).toMatchObject({ status: 'ok', dryRun: true });
      expect(await census()).toEqual(before);
      expect(reads.sync_run).toEqual({ seq: 0, idx: 0 });
    });

    it('a run without the retention option deletes nothing', async () => {
      // Arrange
      const oldestBatch = await oldest(PRUNE_BATCH);

      // Act
      const { value: result, reads } = await measured();

      // Assert: its own row added, nothing taken away.
      expect(result.status).toBe('ok');
      expect(await census()).toEqual({ ...before, total: HISTORY + 1 });
      expect(await oldest(PRUNE_BATCH)).toEqual(oldestBatch);
      expect(reads.sync_run).toEqual({ seq: 0, idx: 0 });
      before = await census();
    });

    it('a run that fails at COMMIT, after pruning in its transaction, deletes nothing', async () => {
      // Arrange: a deferred trigger refuses the run's row when it commits, after the prune.
      const oldestBatch = await oldest(PRUNE_BATCH);
      await fx.siteClient.query(
        `CREATE FUNCTION refuse_run() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'sync_run refused at commit'; END $$`,
      );
      await fx.siteClient.query(
        `CREATE CONSTRAINT TRIGGER refuse_run AFTER INSERT ON sync_run DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW EXECUTE FUNCTION refuse_run()`,
      );
      let outcome: Awaited<ReturnType<typeof measured>>;
      try {
        // Act
        outcome = await measured(retained);
      } finally {
        await fx.siteClient.query('DROP TRIGGER refuse_run ON sync_run');
        await fx.siteClient.query('DROP FUNCTION refuse_run()');
      }

      // Assert: the prune ran (it read its batch) and was rolled back with the run.
      const { value: result, reads } = outcome;
      expect(result).toMatchObject({ ok: false, status: 'failed' });
      expect(result.error!.message).toContain('sync_run refused at commit');
      expect(reads.sync_run!.idx).toBeGreaterThanOrEqual(PRUNE_BATCH);
      expect(await census()).toEqual(before);
      expect(await oldest(PRUNE_BATCH)).toEqual(oldestBatch);
    });

    it('a run that fails before it records (its remote is gone) deletes nothing', async () => {
      // Act
      const result = await fx.sync({ ...retained, remote: databaseUrl('ms_no_such_remote') });

      // Assert
      expect(result).toMatchObject({ ok: false, status: 'failed' });
      expect(await census()).toEqual(before);
    });

    it('one run deletes the PRUNE_BATCH oldest runs, through the indexes: no sequential scan, 2,002 rows read', async () => {
      // Arrange
      const oldestBatch = await oldest(PRUNE_BATCH);

      // Act
      const { value: result, reads, scans } = await measured(retained);

      // Assert: one batch, the oldest; everything within the retention stays.
      expect(result.status).toBe('ok');
      const after = await census();
      expect(before.total + 1 - after.total).toBe(PRUNE_BATCH);
      expect(after).toMatchObject({ old: OLD - PRUNE_BATCH, recent: RECENT, recentIds: before.recentIds });
      const survivors = new Set(await oldest(OLD));
      expect(oldestBatch.filter((id) => survivors.has(id))).toEqual([]);
      // The batch by the started_at index, its rows again by id, the newest ok and non-ok by theirs.
      expect(scans.sync_run!.seqScans).toBe(0);
      expect(reads.sync_run).toEqual({ seq: 0, idx: BATCH_READS });
      before = after;
    });

    it('the next runs work the rest off a batch each, until only the newest failure is older than 30 days', async () => {
      // Arrange: once the failure kept is the oldest run left, it takes a place in every batch.
      const { rows } = await fx.siteClient.query(
        `SELECT count(*)::int AS n FROM sync_run
         WHERE started_at < (SELECT started_at FROM sync_run WHERE (result->>'i')::int = $1)`,
        [NINETY_DAYS],
      );
      const expected: number[] = [];
      let ahead: number = rows[0].n;
      let left = before.old - 1;
      while (left > 0) {
        const n = ahead >= PRUNE_BATCH ? PRUNE_BATCH : Math.min(left, PRUNE_BATCH - 1);
        expected.push(n);
        ahead = Math.max(0, ahead - n);
        left -= n;
      }
      expect(expected.length).toBeGreaterThan(150);

      // Act: runs until one deletes nothing (the runs themselves are all within the retention).
      const deleted: number[] = [];
      let old = before.old;
      for (let run = 0; run <= expected.length; run++) {
        expect((await fx.sync(retained)).status).toBe('ok');
        const { rows: count } = await fx.siteClient.query(
          'SELECT count(*)::int AS n FROM sync_run WHERE started_at < now() - make_interval(days => $1)',
          [RETENTION_DAYS],
        );
        if (count[0].n === old) break;
        deleted.push(old - count[0].n);
        old = count[0].n;
      }

      // Assert: never more than a batch a run; what is left older than the retention is the newest
      // failure (the newest ok run is the last run); all the history within the retention is there.
      expect(deleted).toEqual(expected);
      expect(await oldRuns()).toEqual([[NINETY_DAYS, 'failed']]);
      const after = await census();
      expect(after).toMatchObject({ old: 1, recent: RECENT, recentIds: before.recentIds });
      // Besides: the runs of this block that recorded (without retention, the first batch, these).
      expect(after.total).toBe(RECENT + 1 + 2 + deleted.length + 1);
    });

    it('a run with nothing left to prune reads a handful of rows, whatever the history', async () => {
      // Act: as the runs left the table (160,000 deleted rows not vacuumed), then once vacuumed.
      const left = await measured(retained);
      await fx.siteClient.query('VACUUM ANALYZE sync_run');
      const vacuumed = await measured(retained);

      // Assert: the failure kept (read as the oldest run and as the newest failure) and the newest
      // ok run; no walk of the 40,000 runs within the retention, nor of the deleted ones.
      expect(await oldRuns()).toEqual([[NINETY_DAYS, 'failed']]);
      for (const { reads, scans } of [left, vacuumed]) {
        expect(scans.sync_run!.seqScans).toBe(0);
        expect(reads.sync_run!.seq).toBe(0);
        expect(reads.sync_run!.idx).toBeLessThanOrEqual(HANDFUL);
      }
      // Index entries of rows deleted and not yet vacuumed may still be stepped over (until a scan
      // marks them dead, which depends on what ran before): counted once vacuumed.
      expect(vacuumed.scans.sync_run!.indexEntries).toBeLessThanOrEqual(HANDFUL);
    });
  });

  describe('the newest ok run and the newest run that was not ok are kept, however old', () => {
    /** Five runs from 60 to 200 days ago, none within the retention; each labelled. */
    async function fiveOldRuns(): Promise<void> {
      await fx.siteClient.query('TRUNCATE sync_run');
      await fx.siteClient.query(
        `INSERT INTO sync_run (site_id, tenant_id, status, started_at, duration_ms, inserted, updated,
                               deleted, skipped, failed_entities, result)
         SELECT 'history', 1, status, now() - make_interval(days => days), 1000, 0, 0, 0, 0, '{}',
                jsonb_build_object('label', status || ' ' || days || 'd')
         FROM (VALUES ('ok', 60), ('failed', 90), ('partial', 120), ('ok', 150), ('failed', 200)) AS r (status, days)`,
      );
      await fx.siteClient.query('ANALYZE sync_run');
    }

    async function labels(): Promise<string[]> {
      const { rows } = await fx.siteClient.query(
        `SELECT coalesce(result->>'label', 'this run: ' || status) AS label FROM sync_run ORDER BY started_at DESC`,
      );
      return rows.map((r) => r.label);
    }

    it('pruning alone keeps both when both are older than the retention', async () => {
      // Arrange
      await fiveOldRuns();

      // Act
      await fx.siteClient.query('BEGIN');
      const deleted = await pruneRuns(fx.siteClient, RETENTION_DAYS);
      await fx.siteClient.query('COMMIT');

      // Assert
      expect(deleted).toBe(3);
      expect(await labels()).toEqual(['ok 60d', 'failed 90d']);
    });

    it('an ok run keeps the 90-day-old failure; it is itself the newest ok run', async () => {
      // Arrange
      await fiveOldRuns();

      // Act
      const result = await fx.sync(retained);

      // Assert
      expect(result.status).toBe('ok');
      expect(await labels()).toEqual(['this run: ok', 'failed 90d']);
    });

    describe('runs that are not ok (a register the site refuses)', () => {
      beforeAll(async () => {
        await fx.siteClient.query(
          'ALTER TABLE register ADD CONSTRAINT site_only_check CHECK (address < 40000)',
        );
        await fx.remoteClient.query('UPDATE register SET address = 45000 WHERE id = $1', [registerId(1, 1)]);
      });
      afterAll(async () => {
        await fx.siteClient.query('ALTER TABLE register DROP CONSTRAINT site_only_check');
        expect((await fx.sync()).status).toBe('ok');
      });

      it('a partial run keeps the 60-day-old ok run; it is itself the newest that was not ok', async () => {
        // Arrange
        await fiveOldRuns();

        // Act
        const result = await fx.sync(retained);

        // Assert
        expect(result.status).toBe('partial');
        expect(await labels()).toEqual(['this run: partial', 'ok 60d']);
      });

      it("a partial run on a site that has failed ever since its one success, 400 days ago, reads its batch, not the site's failures", async () => {
        // Arrange: 200,000 runs, every one failed or partial but the oldest.
        await history(`CASE WHEN i = ${HISTORY} THEN 'ok' WHEN i % 3 = 0 THEN 'failed' ELSE 'partial' END`);
        const before = await census();

        // Act
        const { value: result, reads, scans } = await measured(retained);

        // Assert: the ok run, the oldest of all, kept from the batch; the newest ok run found
        // through its own index, not by walking the 200,000 that were not ok.
        expect(result.status).toBe('partial');
        expect(before.total + 1 - (await census()).total).toBe(PRUNE_BATCH - 1);
        const { rows } = await fx.siteClient.query(
          `SELECT (result->>'i')::int AS i FROM sync_run WHERE status = 'ok' ORDER BY started_at DESC`,
        );
        expect(rows).toEqual([{ i: HISTORY }]);
        expect(scans.sync_run!.seqScans).toBe(0);
        expect(reads.sync_run).toEqual({ seq: 0, idx: BATCH_READS });
      });
    });
  });
});
