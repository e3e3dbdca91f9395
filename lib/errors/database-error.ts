/**
 * Turns what the driver or the server threw into a MeterSyncError with a stable code. Server errors
 * keep the server's message and the key it names; nothing here ever echoes a connection string.
 */
import { MeterSyncError } from './meter-sync-error';

interface PgLikeError {
  code?: string;
  message?: string;
  detail?: string;
  table?: string;
  constraint?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

/** Server error detail such as `Key (device_id, register_id)=(1, 2) is not present in table "meter".` */
function keyFromDetail(detail: string | undefined): string | undefined {
  const match = detail?.match(/^Key \((.+?)\)=\((.*)\)/);
  if (!match) return undefined;
  const columns = match[1]!.split(', ');
  const values = match[2]!.split(', ');
  if (columns.length !== values.length) return `(${match[1]})=(${match[2]})`;
  return columns.map((column, i) => `${column}=${values[i]}`).join(', ');
}

export function toMeterSyncError(error: unknown, context?: string): MeterSyncError {
  if (error instanceof MeterSyncError) return error;
  const pg = (typeof error === 'object' && error !== null ? error : {}) as PgLikeError;
  const message = (pg.message || String(error)).split('\n')[0]!;
  const prefix = context ? `${context}: ` : '';
  const sqlState = pg.code ?? '';
  if (sqlState === '23503') {
    return new MeterSyncError('REFERENTIAL_INTEGRITY', `${prefix}${message}`, keyFromDetail(pg.detail));
  }
  if (sqlState.startsWith('23') || sqlState.startsWith('22')) {
    const key = keyFromDetail(pg.detail);
    return new MeterSyncError('SITE_REJECTED_ROW', `${prefix}${message}`, key);
  }
  if (sqlState === '57014') return new MeterSyncError('TIMEOUT', `${prefix}${message}`);
  if (sqlState === '28P01' || sqlState === '28000')
    return new MeterSyncError('AUTHENTICATION_FAILED', `${prefix}${message}`);
  if (
    sqlState.startsWith('08') ||
    sqlState === '57P01' ||
    CONNECTION_CODES.has(sqlState) ||
    // node-postgres's own connection failures carry no code; `timeout expired` is its connect timeout.
    /Connection terminated|not queryable|connection error|^timeout expired$/i.test(message)
  ) {
    return new MeterSyncError('CONNECTION_LOST', `${prefix}${message}`);
  }
  if (sqlState.length === 5)
    return new MeterSyncError('DATABASE_ERROR', `${prefix}${message} (SQLSTATE ${sqlState})`);
  return new MeterSyncError('INTERNAL_ERROR', `${prefix}${message}`);
}
