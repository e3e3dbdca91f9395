import { Logger } from '@aws-lambda-powertools/logger';
import type { SyncResult } from '../../lib/engine';
import { logPhase, logSyncResult } from '../../lib/observability/log-sync-result';
import { captureOutput, logLines } from './captured-output';

const partial: SyncResult = {
  ok: false,
  status: 'partial',
  siteId: 's1',
  tenantId: 9,
  dryRun: false,
  startedAt: '2025-01-01T00:00:00.000Z',
  durationMs: 321,
  entities: [
    {
      entity: 'meter',
      status: 'ok',
      inserted: 3,
      updated: 2,
      deleted: 1,
      skipped: 0,
      unchanged: 10,
      remoteRows: 15,
      durationMs: 40,
    },
    {
      entity: 'device_register',
      status: 'failed',
      inserted: 0,
      updated: 0,
      deleted: 0,
      skipped: 4,
      unchanged: 0,
      remoteRows: 20,
      durationMs: 7,
      skippedKeys: ['device_id=1, register_id=2'],
      error: { code: 'MASS_DELETE_GUARD', message: 'refusing' },
    },
  ],
};

function logged(result: SyncResult) {
  const output = captureOutput();
  try {
    logSyncResult(new Logger({ serviceName: 'meter-sync' }), 's1', result);
  } finally {
    output.restore();
  }
  return logLines(output.lines);
}

describe('logSyncResult', () => {
  it('writes one line per entity and one for the run, with siteId, tenantId and entity', () => {
    const lines = logged(partial);
    expect(lines.map((l) => [l.level, l.message, l.siteId, l.tenantId, l.entity])).toEqual([
      ['INFO', 'meter: ok', 's1', 9, 'meter'],
      ['ERROR', 'device_register: failed (MASS_DELETE_GUARD)', 's1', 9, 'device_register'],
      ['WARN', 'sync partial', 's1', 9, undefined],
    ]);
    expect(lines[0]).toMatchObject({
      inserted: 3,
      updated: 2,
      deleted: 1,
      unchanged: 10,
      service: 'meter-sync',
    });
    expect(lines[1]).toMatchObject({
      skippedKeys: ['device_id=1, register_id=2'],
      error: { code: 'MASS_DELETE_GUARD', message: 'refusing' },
    });
    expect(lines[2]).toMatchObject({
      inserted: 3,
      updated: 2,
      deleted: 1,
      skipped: 4,
      failedEntities: ['device_register'],
    });
  });

  it('logs a failed run at error level with its error, and a dry run as such', () => {
    const failed = logged({
      ...partial,
      status: 'failed',
      entities: [],
      error: { code: 'CONNECTION_LOST', message: 'x' },
    });
    expect(failed).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        message: 'sync failed',
        error: { code: 'CONNECTION_LOST', message: 'x' },
      }),
    ]);
    const dry = logged({ ...partial, ok: true, status: 'ok', dryRun: true, entities: [] });
    expect(dry).toEqual([
      expect.objectContaining({ level: 'INFO', message: 'sync ok (dry run)', dryRun: true }),
    ]);
  });
});

describe('logPhase', () => {
  const upsert = {
    phase: 'upsert',
    entity: 'meter',
    startedAt: Date.parse('2025-01-01T00:00:00.000Z'),
    durationMs: 12.4,
    rows: { inserted: 3, updated: 2, unchanged: 10, skipped: 0 },
  } as const;

  it('logs a line per phase at DEBUG, with its duration and rows', () => {
    const output = captureOutput();
    try {
      const logger = new Logger({ serviceName: 'meter-sync', logLevel: 'DEBUG' });
      logPhase(logger, upsert);
      logPhase(logger, {
        phase: 'connect',
        database: 'remote',
        startedAt: 0,
        durationMs: 3,
        rows: {},
        error: 'CONNECTION_REFUSED',
      });
    } finally {
      output.restore();
    }
    expect(logLines(output.lines)).toEqual([
      expect.objectContaining({
        level: 'DEBUG',
        message: 'apply meter upsert: 12 ms',
        phase: 'upsert',
        entity: 'meter',
        durationMs: 12,
        rows: { inserted: 3, updated: 2, unchanged: 10, skipped: 0 },
      }),
      expect.objectContaining({
        level: 'DEBUG',
        message: 'connect remote: 3 ms',
        database: 'remote',
        error: { code: 'CONNECTION_REFUSED' },
      }),
    ]);
  });

  it('logs nothing at INFO', () => {
    const output = captureOutput();
    try {
      logPhase(new Logger({ serviceName: 'meter-sync', logLevel: 'INFO' }), upsert);
    } finally {
      output.restore();
    }
    expect(output.lines).toEqual([]);
  });
});
