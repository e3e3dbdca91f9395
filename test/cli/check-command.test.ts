/** `meter-sync check` (issue 14 §2): the report printed, exit 0 without a failed check, 1 with one. */
import { main } from '../../lib/cli/main';
import { captureIo } from '../harness/capture-io';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

describe('meter-sync check', () => {
  let fx: SyncFixture;
  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await fx.seed({ tenants: [1], metersPerTenant: 3, registersPerTenant: 3, registersPerMeter: 1 });
  });
  afterAll(() => fx.close());

  it('prints one line a check and exits 0 when none failed', async () => {
    const io = captureIo();
    const code = await main(
      ['check', '--remote', fx.remote.url, '--site', fx.site.url, '--tenant', '1'],
      io,
      {},
    );
    expect(code).toBe(0);
    const lines = io.out().trimEnd().split('\n');
    expect(lines[0]).toBe('meter-sync check · tenant 1 · ok');
    expect(lines).toContainEqual(
      expect.stringMatching(/^ok {4}tenant slice +tenant 1: 3 meter, 3 register, 3 device_register$/),
    );
    expect(lines.filter((line) => /^FAIL/.test(line))).toEqual([]);
  });

  it('exits 1 with a failed check, and --json prints the report', async () => {
    const io = captureIo();
    const code = await main(
      [
        'check',
        '--remote',
        fx.remote.url,
        '--site',
        'postgres://postgres@127.0.0.1:1/nowhere',
        '--tenant',
        '1',
        '--json',
      ],
      io,
      {},
    );
    expect(code).toBe(1);
    const report = JSON.parse(io.out()) as { ok: boolean; checks: { name: string; status: string }[] };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === 'site connection')).toMatchObject({ status: 'fail' });
    expect(report.checks.find((c) => c.name === 'remote connection')).toMatchObject({ status: 'ok' });
  });
});
