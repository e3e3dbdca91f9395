/**
 * `npm run bench -- --trace`: every statement the engine sends during a measured run, with its
 * side, start and duration, so that a scenario's time can be read statement by statement.
 */
import { Client } from 'pg';

interface Traced {
  side: string;
  sql: string;
  start: number;
  end?: number;
}

let recording: Traced[] | undefined;
let t0 = 0;

const sideOf = (client: Client): string => {
  const options = (client as unknown as { connectionParameters?: { options?: string } }).connectionParameters
    ?.options;
  return options?.includes('default_transaction_read_only') ? 'remote' : 'site';
};

/** Patches node-postgres once: statements are recorded while a recording runs, and cost nothing otherwise. */
export function installStatementTrace(): void {
  const query = Client.prototype.query as (...args: unknown[]) => unknown;
  const connect = Client.prototype.connect as (...args: unknown[]) => unknown;
  const note = (client: Client, sql: string): Traced | undefined => {
    if (!recording) return undefined;
    const entry = { side: sideOf(client), sql, start: performance.now() - t0 };
    recording.push(entry);
    return entry;
  };
  const close = (entry: Traced | undefined) => () => {
    if (entry && entry.end === undefined) entry.end = performance.now() - t0;
  };
  (Client.prototype as unknown as { query: unknown }).query = function (this: Client, ...args: unknown[]) {
    const [first] = args;
    const sql =
      typeof first === 'string'
        ? first
        : typeof (first as { text?: unknown })?.text === 'string'
          ? (first as { text: string }).text
          : String((first as { constructor?: { name?: string } })?.constructor?.name ?? 'submittable');
    const entry = note(this, sql.replace(/\s+/g, ' ').trim());
    const result = query.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(close(entry), close(entry));
    } else if (result && typeof (result as NodeJS.EventEmitter).once === 'function') {
      const emitter = result as NodeJS.EventEmitter;
      for (const event of ['end', 'finish', 'error']) emitter.once(event, close(entry));
    }
    return result;
  };
  (Client.prototype as unknown as { connect: unknown }).connect = function (
    this: Client,
    ...args: unknown[]
  ) {
    const entry = note(this, 'CONNECT');
    const result = connect.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function')
      (result as Promise<unknown>).then(close(entry), close(entry));
    return result;
  };
}

export function startTrace(): void {
  recording = [];
  t0 = performance.now();
}

/** The recorded statements as lines: start, duration, side, the statement's first 160 characters. */
export function stopTrace(): string[] {
  const entries = recording ?? [];
  recording = undefined;
  return entries.map(
    (e) =>
      `    ${e.start.toFixed(1).padStart(7)} ${(e.end === undefined ? '?' : (e.end - e.start).toFixed(1)).padStart(7)} ${e.side.padEnd(6)} ${e.sql.slice(0, process.env.BENCH_FULL_SQL ? 100000 : 160)}`,
  );
}
