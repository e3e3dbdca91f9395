/** The CLI's human output: the per-entity table and the notes under it. */
import { formatResult } from '../../lib/cli/format-result';
import { emptyEntityResult, type SyncResult } from '../../lib/engine/sync-result';

const result = (entities: SyncResult['entities']): SyncResult => ({
  ok: true,
  status: 'ok',
  siteId: 'plant-7',
  tenantId: 1,
  dryRun: false,
  startedAt: '2026-12-03T00:00:00.000Z',
  durationMs: 1234,
  entities,
});

describe('formatResult', () => {
  it('names each skipped key with its reason: a missing parent, or rows outside the run that still reference it', () => {
    // Arrange
    const meter = {
      ...emptyEntityResult('meter'),
      unchanged: 9,
      skipped: 2,
      skippedKeys: ['id=4', 'id=5'],
      skippedReasons: [
        'referenced by device_register rows outside this run',
        'referenced by device_register rows outside this run',
      ],
    };
    const associations = {
      ...emptyEntityResult('device_register'),
      skipped: 1,
      skippedKeys: ['device_id=1, register_id=9'],
      skippedReasons: ['parent missing: register id=9'],
    };

    // Act
    const text = formatResult(result([meter, associations]));

    // Assert
    const lines = text.split('\n');
    expect(lines[0]).toBe('meter-sync · site plant-7 · tenant 1 · ok · 1.23 s');
    expect(lines.slice(-2)).toEqual([
      'meter skipped 2, e.g. id=4 (referenced by device_register rows outside this run); id=5 (referenced by device_register rows outside this run)',
      'device_register skipped 1, e.g. device_id=1, register_id=9 (parent missing: register id=9)',
    ]);
  });
});
