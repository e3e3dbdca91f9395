/**
 * How many rows the server read from each table while something ran: sequential-scan rows and rows
 * fetched through indexes (pg_stat_user_tables). It measures cost without a clock: a statement that
 * turned quadratic, or a restage of a whole table, shows as rows read, whatever the machine's speed.
 */
import { Client } from 'pg';

export interface TableReads {
  /** Rows read by sequential scans. */
  seq: number;
  /** Rows fetched through an index. */
  idx: number;
}

export type Reads = Record<string, TableReads>;

/** How a table was read, beside how many rows: the scans begun and the index entries walked. */
export interface TableScans {
  /** Sequential scans begun on the table (pg_stat_user_tables.seq_scan). */
  seqScans: number;
  /** Index entries returned by scans of the table's indexes, whether or not their rows were live (idx_tup_read). */
  indexEntries: number;
}

export type Scans = Record<string, TableScans>;

interface Counters {
  reads: Reads;
  scans: Scans;
}

async function readCounters(stats: Client, tables: readonly string[]): Promise<Counters> {
  // Outside a transaction, and without the session's cached snapshot, every call sees the latest.
  await stats.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await stats.query<{
    relname: string;
    seq: string | null;
    idx: string | null;
    seq_scans: string | null;
    index_entries: string | null;
  }>(
    `SELECT t.relname, t.seq_tup_read::text AS seq, t.idx_tup_fetch::text AS idx, t.seq_scan::text AS seq_scans,
       (SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid)::text AS index_entries
     FROM pg_stat_user_tables t WHERE t.schemaname = 'public' AND t.relname = ANY($1)`,
    [tables],
  );
  const row = (t: string) => rows.find((r) => r.relname === t);
  return {
    reads: Object.fromEntries(
      tables.map((t) => [t, { seq: Number(row(t)?.seq ?? 0), idx: Number(row(t)?.idx ?? 0) }]),
    ),
    scans: Object.fromEntries(
      tables.map((t) => [
        t,
        { seqScans: Number(row(t)?.seq_scans ?? 0), indexEntries: Number(row(t)?.index_entries ?? 0) },
      ]),
    ),
  };
}

/** Waits until no session but `keep` is connected to the database: a session's counts are flushed before it is gone. */
async function othersGone(stats: Client, keep: readonly number[]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await stats.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_stat_activity
       WHERE datname = current_database() AND backend_type = 'client backend' AND NOT (pid = ANY($1))`,
      [keep],
    );
    if (rows[0]?.n === '0') return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the sessions under measurement did not end');
}

/**
 * Runs `fn` (which must open and close its own sessions, as performSync does) and returns the rows
 * read from each of `tables` meanwhile, and how they were read (`scans`). `admin` is a session the
 * test keeps open on the database: it must not read those tables while `fn` runs; its own earlier
 * counts are flushed first.
 */
export async function readsDuring<T>(
  url: string,
  admin: Client,
  tables: readonly string[],
  fn: () => Promise<T>,
): Promise<{ value: T; reads: Reads; scans: Scans }> {
  const stats = new Client({ connectionString: url });
  await stats.connect();
  try {
    await admin.query('SELECT pg_stat_force_next_flush()');
    await admin.query('SELECT 1');
    const keep = [
      (await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
      (await stats.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
    ];
    await othersGone(stats, keep);
    const before = await readCounters(stats, tables);
    const value = await fn();
    await othersGone(stats, keep);
    const after = await readCounters(stats, tables);
    const reads = Object.fromEntries(
      tables.map((t) => [
        t,
        { seq: after.reads[t]!.seq - before.reads[t]!.seq, idx: after.reads[t]!.idx - before.reads[t]!.idx },
      ]),
    );
    const scans = Object.fromEntries(
      tables.map((t) => [
        t,
        {
          seqScans: after.scans[t]!.seqScans - before.scans[t]!.seqScans,
          indexEntries: after.scans[t]!.indexEntries - before.scans[t]!.indexEntries,
        },
      ]),
    );
    return { value, reads, scans };
  } finally {
    await stats.end();
  }
}

/** All rows read from the tables, by scan and by index. */
export function totalReads(reads: Reads): number {
  return Object.values(reads).reduce((sum, r) => sum + r.seq + r.idx, 0);
}
