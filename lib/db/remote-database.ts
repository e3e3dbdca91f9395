/**
 * The remote side: one REPEATABLE READ READ ONLY transaction per run, so every entity is read
 * from the same snapshot and a write is impossible (DESIGN §3.1).
 */
import { PassThrough, type Readable } from 'node:stream';
import type { Client, QueryConfig, QueryResultRow } from 'pg';
import type { EntityMetadata } from '../entities';
import { toMeterSyncError } from '../errors';
import { copyOut } from './copy-out';
import { type Row, TEXT_TYPES } from './rows';
import { regionSql, remoteSql } from './sync-sql';

export class RemoteSnapshot {
  private constructor(private readonly client: Client) {}

  static async open(client: Client, tenantId: number): Promise<RemoteSnapshot> {
    try {
      await client.query(remoteSql.beginSnapshot);
      await client.query(remoteSql.setTenant, [String(tenantId)]);
    } catch (error) {
      throw toMeterSyncError(error, 'cannot open the remote snapshot');
    }
    return new RemoteSnapshot(client);
  }

  /** Set when a read stopped half way and could not be finished: the connection cannot serve another read. */
  broken = false;

  /**
   * Streams the tenant's slice of one entity to `consume`. A read the remote refused is rolled
   * back to a savepoint, so the snapshot survives for the next entity.
   */
  readSlice<T>(meta: EntityMetadata, consume: (rows: Readable) => Promise<T>): Promise<T> {
    return this.copyOut(remoteSql.copySlice(meta), meta.name, consume);
  }

  /**
   * Streams the output of a `COPY … TO STDOUT` statement to `consume`, under a savepoint. The
   * consumer reads a relay, not the COPY stream itself: when it gives up half way (the site refused
   * a row), the rest of the COPY is read and dropped, so the statement ends and the snapshot serves
   * the next entity. (Destroying the COPY stream would leave the connection waiting mid-COPY.)
   */
  async copyOut<T>(sql: string, label: string, consume: (rows: Readable) => Promise<T>): Promise<T> {
    const [result] = await this.copyOutThen(sql, label, consume);
    return result;
  }

  /**
   * `copyOut`, and `next` on the remote as soon as the remote's COPY is over, while the consumer
   * may still be writing the last rows: a site's socket buffers hold up to half a second of a
   * large COPY, which the remote would otherwise wait out. Both results, once both are done. A
   * consumer that fails after `next` started waits for it, and fails as before.
   */
  async copyOutThen<T, U = undefined>(
    sql: string,
    label: string,
    consume: (rows: Readable) => Promise<T>,
    next?: () => Promise<U>,
  ): Promise<[T, U | undefined]> {
    await this.client.query('SAVEPOINT read_slice');
    const rows = this.client.query(copyOut(sql));
    const relay = new PassThrough();
    // Set once the server ended the COPY, with its last row or with an error.
    let over = false;
    // Set when the remote's COPY failed, as opposed to its consumer (the site, say).
    let remoteFailed: Error | undefined;
    // Set when the consumer failed: `next` then never starts.
    let abandoned = false;
    const ended = new Promise<void>((resolve) => {
      rows.once('end', resolve);
      rows.once('error', resolve);
    }).then(() => {
      over = true;
    });
    rows.on('error', (error) => {
      remoteFailed = error;
      relay.destroy(error);
    });
    // The consumer meets the error when it reads the relay; until it starts reading (it may first
    // wait on the site), an error with no listener would otherwise crash the process.
    relay.on('error', () => {});
    rows.pipe(relay);
    // The savepoint is released once the remote's COPY is over, the consumer done or not.
    let released: Promise<boolean> | undefined;
    const release = () => {
      released ??= ended.then(async () => {
        if (remoteFailed || abandoned) return false;
        await this.client.query('RELEASE SAVEPOINT read_slice');
        return true;
      });
      return released;
    };
    const following = next ? release().then((ok) => (ok ? next() : undefined)) : undefined;
    // Until it is awaited below, a failure of `next` must not go unhandled.
    following?.catch(() => {});
    let result: T;
    try {
      result = await consume(relay);
      // A consumer that let the remote's error pass still gets it.
      if (remoteFailed) throw remoteFailed;
    } catch (error) {
      abandoned = true;
      if (!over) {
        rows.unpipe(relay);
        rows.resume();
        await ended;
      }
      // The remote's part was over and `next` under way: the snapshot is as it should be.
      if (released && (await released.catch(() => false))) {
        await following?.catch(() => {});
        throw toMeterSyncError(error, label);
      }
      await this.client.query('ROLLBACK TO SAVEPOINT read_slice').catch(() => {
        this.broken = true;
      });
      // Blame the side that failed: a row the site refused is not the remote's doing.
      throw toMeterSyncError(error, remoteFailed ? `${label}: reading the remote failed` : label);
    }
    await release();
    return [result, await following];
  }

  /** A query in the snapshot, under a savepoint so that a refused one leaves the snapshot usable. */
  query<R extends QueryResultRow>(sql: string, params: unknown[], label: string): Promise<R[]> {
    return this.run<R>({ text: sql, values: params }, label);
  }

  /** `query`, every value as the server's text. */
  queryText(sql: string, params: unknown[], label: string): Promise<Row[]> {
    return this.run<Row>({ text: sql, values: params, types: TEXT_TYPES }, label);
  }

  private async run<R extends QueryResultRow>(config: QueryConfig, label: string): Promise<R[]> {
    await this.client.query('SAVEPOINT read_query');
    try {
      const { rows } = await this.client.query<R>(config);
      await this.client.query('RELEASE SAVEPOINT read_query');
      return rows;
    } catch (error) {
      await this.client.query('ROLLBACK TO SAVEPOINT read_query').catch(() => {});
      throw toMeterSyncError(error, `${label}: reading the remote failed`);
    }
  }

  /** Sets a transaction-local setting: how COPY statements, which take no parameters, get values. */
  async setSetting(name: string, value: string): Promise<void> {
    await this.client.query(regionSql.setSetting, [name, value]);
  }

  /** Ends the snapshot; it never wrote anything, so nothing is lost either way. */
  async close(): Promise<void> {
    if (!this.broken) await this.client.query('ROLLBACK');
  }
}

/** The tenant's slice of an entity as rows of server text, in key order (seed task 2). */
export async function getRemoteRows(client: Client, meta: EntityMetadata, tenantId: number): Promise<Row[]> {
  await client.query(remoteSql.beginSnapshot);
  try {
    const { rows } = await client.query<Row>({
      text: remoteSql.selectSlice(meta),
      values: [tenantId],
      types: TEXT_TYPES,
    });
    return rows;
  } finally {
    await client.query('ROLLBACK');
  }
}
