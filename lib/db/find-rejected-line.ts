/**
 * Names the remote row the site refused while it was staged. A value can fail before any column
 * type sees it (a character the site's encoding lacks fails the COPY's conversion), and the server
 * then names only a line of the COPY, which a second read of the remote may give in another order.
 * So the slice's lines, read again from the same snapshot, are tried against the stage table in
 * batches, and the batch that fails by halves, each try under a savepoint that is always rolled
 * back, until the one line the site refuses alone is left: its key is read off the line. Paid only
 * after a stage has failed; nothing it does survives it.
 */
import type { Readable } from 'node:stream';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { toMeterSyncError } from '../errors';
import { formatKey, type Row } from './rows';
import { type ResolvedEntity, siteSql } from './sync-sql';

/** Lines tried in one COPY before the failing batch is halved. */
const BATCH_LINES = 10_000;
const NEWLINE = 0x0a;

/** The COPY text of `line`'s fields (tab-separated, backslash-escaped, `\N` for NULL) as values. */
export function copyTextFields(line: string): (string | null)[] {
  return line.split('\t').map((field) => {
    if (field === '\\N') return null;
    return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/g, (_, octal, hex, char) => {
      if (octal !== undefined) return String.fromCharCode(Number.parseInt(octal, 8));
      if (hex !== undefined) return String.fromCharCode(Number.parseInt(hex, 16));
      return { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' }[char as string] ?? char;
    });
  });
}

/** Splits a COPY text stream into its lines (a newline ends a row: one inside a value is escaped). */
async function* lines(source: Readable): AsyncGenerator<Buffer> {
  let rest = Buffer.alloc(0);
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let end = data.indexOf(NEWLINE); end !== -1; end = data.indexOf(NEWLINE, start)) {
      yield data.subarray(start, end + 1);
      start = end + 1;
    }
    data = data.subarray(start);
    rest = Buffer.from(data);
  }
  if (rest.length > 0) yield rest;
}

/**
 * The key (`id=5`) of the first line of `source` (COPY text of the entity's columns) that the site
 * refuses to stage on its own, or undefined when every line stages alone. Call it with the failed
 * stage rolled back: it makes the stage table for its tries and leaves nothing behind.
 */
export async function findRejectedLine(
  client: Client,
  e: ResolvedEntity,
  source: Readable,
): Promise<string | undefined> {
  /** Whether the site refuses to stage these lines; the try is always undone. */
  const refused = async (batch: readonly Buffer[]): Promise<boolean> => {
    await client.query('SAVEPOINT meter_sync_probe');
    let failed = false;
    try {
      await client.query(siteSql.createStage(e));
      const sink = client.query(copyFrom(siteSql.copyIntoStage(e)));
      await new Promise<void>((resolve, reject) => {
        sink.on('finish', resolve);
        sink.on('error', reject);
        for (const line of batch) sink.write(line);
        sink.end();
      });
    } catch (error) {
      if (toMeterSyncError(error).code !== 'SITE_REJECTED_ROW') throw error;
      failed = true;
    }
    await client.query('ROLLBACK TO SAVEPOINT meter_sync_probe');
    return failed;
  };

  const narrow = async (batch: readonly Buffer[]): Promise<Buffer | undefined> => {
    let candidates = batch;
    while (candidates.length > 1) {
      const half = candidates.slice(0, Math.ceil(candidates.length / 2));
      const other = candidates.slice(half.length);
      if (await refused(half)) candidates = half;
      else if (await refused(other)) candidates = other;
      else return undefined;
    }
    return candidates[0];
  };

  let batch: Buffer[] = [];
  const tryBatch = async (): Promise<Buffer | undefined> =>
    batch.length > 0 && (await refused(batch)) ? narrow(batch) : undefined;
  for await (const line of lines(source)) {
    batch.push(line);
    if (batch.length < BATCH_LINES) continue;
    const found = await tryBatch();
    if (found) return keyOf(e, found);
    batch = [];
  }
  const found = await tryBatch();
  return found ? keyOf(e, found) : undefined;
}

function keyOf(e: ResolvedEntity, line: Buffer): string {
  const fields = copyTextFields(line.toString('utf8').replace(/\n$/, ''));
  const row: Row = Object.fromEntries(e.meta.columns.map((column, i) => [column, fields[i] ?? null]));
  return formatKey(e.meta.keyColumns, row);
}
