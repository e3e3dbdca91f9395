import { Metrics } from '@aws-lambda-powertools/metrics';
import type { SyncResult } from '../../lib/engine';
import { emitSyncMetrics, emitSyncNotStarted } from '../../lib/observability/emit-sync-metrics';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../lib/observability/metric-names';
import { captureOutput, metricDocuments } from './captured-output';

function result(patch: Partial<SyncResult> = {}): SyncResult {
  return {
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
        error: { code: 'MASS_DELETE_GUARD', message: 'refusing' },
      },
    ],
    ...patch,
  };
}

/** Emits with a fresh instance and flushes it, as the logMetrics middleware does at the end. */
function emitted(fn: (metrics: Metrics) => void) {
  const output = captureOutput();
  try {
    const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
    fn(metrics);
    metrics.publishStoredMetrics();
  } finally {
    output.restore();
  }
  return metricDocuments(output.lines);
}

describe('emitSyncMetrics', () => {
  it('emits one document per entity under SiteId and Entity, then the run under SiteId', () => {
    const documents = emitted((metrics) => emitSyncMetrics(metrics, 's1', result()));
    expect(documents.map((d) => [d.namespace, d.dimensions])).toEqual([
      ['MeterSync', [['service', 'SiteId', 'Entity']]],
      ['MeterSync', [['service', 'SiteId', 'Entity']]],
      ['MeterSync', [['service', 'SiteId']]],
    ]);
    expect(documents.map((d) => [d.dimensionValues, d.values])).toEqual([
      [
        { service: 'meter-sync', SiteId: 's1', Entity: 'meter' },
        {
          RowsInserted: 3,
          RowsUpdated: 2,
          RowsDeleted: 1,
          RowsSkipped: 0,
          EntityFailed: 0,
          EntityDurationMs: 40,
        },
      ],
      [
        { service: 'meter-sync', SiteId: 's1', Entity: 'device_register' },
        {
          RowsInserted: 0,
          RowsUpdated: 0,
          RowsDeleted: 0,
          RowsSkipped: 4,
          EntityFailed: 1,
          EntityDurationMs: 7,
        },
      ],
      [
        { service: 'meter-sync', SiteId: 's1' },
        { SyncSucceeded: 0, SyncDurationMs: 321, RunFailed: 0 },
      ],
    ]);
    expect(documents[2]!.units).toEqual({
      SyncSucceeded: 'Count',
      SyncDurationMs: 'Milliseconds',
      RunFailed: 'Count',
    });
  });

  it('counts an ok run as succeeded', () => {
    const documents = emitted((metrics) =>
      emitSyncMetrics(metrics, 's1', result({ ok: true, status: 'ok', entities: [] })),
    );
    expect(documents.map((d) => d.values)).toEqual([{ SyncSucceeded: 1, SyncDurationMs: 321, RunFailed: 0 }]);
  });

  it('counts a run that failed before any entity ran (the tenant, a connection) as a failed run, with no entity', () => {
    const failed = result({
      ok: false,
      status: 'failed',
      entities: [],
      error: { code: 'TENANT_MISMATCH', message: 'bound to tenant 1, not 2' },
    });
    const documents = emitted((metrics) => emitSyncMetrics(metrics, 's1', failed));
    expect(documents.map((d) => [d.dimensionValues, d.values])).toEqual([
      [
        { service: 'meter-sync', SiteId: 's1' },
        { SyncSucceeded: 0, SyncDurationMs: 321, RunFailed: 1 },
      ],
    ]);
  });

  it('emits nothing for a dry run or a locked run', () => {
    expect(emitted((metrics) => emitSyncMetrics(metrics, 's1', result({ dryRun: true })))).toEqual([]);
    expect(
      emitted((metrics) => emitSyncMetrics(metrics, 's1', result({ status: 'locked', entities: [] }))),
    ).toEqual([]);
  });

  it('counts a run that could not start as a failed sync of the site', () => {
    const documents = emitted((metrics) => emitSyncNotStarted(metrics, 's2', 12));
    expect(documents.map((d) => [d.dimensionValues.SiteId, d.values])).toEqual([
      ['s2', { SyncSucceeded: 0, SyncDurationMs: 12, RunFailed: 1 }],
    ]);
  });
});
