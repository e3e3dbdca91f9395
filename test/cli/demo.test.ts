import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeEmf } from '../../lib/cli/demo';
import { LATEST_SITE_SCHEMA_VERSION } from '../../lib/db/site-migrations';

const run = promisify(execFile);
const BIN = join(__dirname, '..', '..', 'bin', 'meter-sync.js');

describe('meter-sync demo', () => {
  it('runs three syncs through the Lambda handler and prints their tables and metrics, then onboards an empty site and an existing one', async () => {
    // A child process, as `npm run demo` runs it: the embedded server is an ES module jest cannot load.
    const { stdout } = await run(process.execPath, [BIN, 'demo'], { timeout: 120_000 });

    const parts = stdout.split('== ');
    const tables = parts.filter(
      (part) => part.includes('meter-sync · site demo-site') && !part.startsWith('plan:'),
    );
    expect(tables).toHaveLength(3);
    const rows = (table: string) =>
      table
        .split('\n')
        .filter((line) => /^(meter|register|device_register)\s+ok\s/.test(line))
        .map((line) => line.split(/\s+/).slice(0, 8).join(' '));
    expect(tables.map(rows)).toEqual([
      ['meter ok 200 200 0 0 0 0', 'register ok 500 500 0 0 0 0', 'device_register ok 800 800 0 0 0 0'],
      ['meter ok 200 1 1 1 0 198', 'register ok 500 0 1 0 0 499', 'device_register ok 798 1 0 4 1 796'],
      ['meter ok 200 0 0 0 0 200', 'register ok 500 0 0 0 0 500', 'device_register ok 798 0 0 0 1 797'],
    ]);
    expect(stdout).toMatch(/^\{"_aws":.*"Namespace":"MeterSync".*"SyncSucceeded":1/m);
    expect(stdout).toContain(
      'MeterSync {service=meter-sync SiteId=demo-site Entity=device_register} RowsInserted=1 RowsUpdated=0 RowsDeleted=4 RowsSkipped=1',
    );
    expect(stdout).toContain(
      'skipped 1, e.g. device_id=100000006, register_id=200000001 (parent missing: register id=200000001)',
    );

    // Before the second sync, its plan: one line a change, the same counts.
    const plan = parts.find((part) => part.startsWith('plan:'))!;
    expect(plan.split('\n').filter((line) => /^[-+~!] /.test(line))).toEqual([
      expect.stringMatching(
        /^~ meter id=100000004 {2}config: '.*"timeoutMs": 2000.*' -> '.*"timeoutMs": 3000.*', updated_at: /,
      ),
      '- meter id=100000005',
      '+ meter id=100010001',
      expect.stringMatching(
        /^~ register id=100000002 {2}unit: 'kWh' -> 'Wh', scale: [\d.]+ -> 0\.001000, updated_at: /,
      ),
      '- device_register device_id=100000005, register_id=100000021',
      '- device_register device_id=100000005, register_id=100000022',
      '- device_register device_id=100000005, register_id=100000023',
      '- device_register device_id=100000005, register_id=100000024',
      '+ device_register device_id=100010001, register_id=100000001',
      '! device_register device_id=100000006, register_id=200000001  skipped: parent missing: register id=200000001',
    ]);
    expect(plan).toContain('DRY RUN (nothing written)');

    // Before it, a check of the new site: behind, and the next sync migrates it.
    const check = parts.find((part) => part.startsWith('check: new-site'))!;
    expect(check).toContain('meter-sync check · site new-site · tenant 2 · ok');
    expect(check).toMatch(/^warn {2}site schema +no meter-sync schema \(version 0\)/m);
    expect(check).toMatch(/^ok {4}tenant slice +tenant 2: 200 meter, 500 register, 800 device_register$/m);

    // The fourth run: a site nobody migrated, onboarded by its first run.
    const onboarding = stdout
      .split('== ')
      .find((part) => part.includes('meter-sync · site new-site · tenant 2'));
    expect(onboarding && rows(onboarding)).toEqual([
      'meter ok 200 200 0 0 0 0',
      'register ok 500 500 0 0 0 0',
      'device_register ok 800 800 0 0 0 0',
    ]);
    expect(onboarding).toContain(
      `site schema migrated from version 0 to ${LATEST_SITE_SCHEMA_VERSION} before the sync`,
    );
    expect(onboarding).toContain('MeterSync {service=meter-sync SiteId=new-site} SiteMigrated=1');
    expect(stdout).toMatch(
      /^new-site onboarded by one run in \d+ ms: schema migrated, then 200 meter, 500 register, 800 device_register loaded/m,
    );

    // The fifth: a plant's own database with a meter table of its own, adopted by its first run.
    const plant = parts.find((part) => part.startsWith('plant-west (tenant 3)'))!;
    expect(plant).toMatch(
      /^ {2}ok {4}site tables {2}adopts meter; keeps meter\.last_polled_at: a column of the site's own/m,
    );
    const adoption = parts.find((part) => part.includes('meter-sync · site plant-west · tenant 3'))!;
    expect(rows(adoption)).toEqual([
      'meter ok 200 1 1 1 0 198',
      'register ok 500 500 0 0 0 0',
      'device_register ok 800 800 0 0 0 0',
    ]);
    expect(adoption).toContain(
      `site schema migrated from version 0 to ${LATEST_SITE_SCHEMA_VERSION} before the sync\nadopted: meter\n`,
    );
    expect(adoption).toContain('kept: meter: its 200 rows, reconciled by the first sync');
    expect(stdout).toMatch(
      /^plant-west onboarded by one run in \d+ ms: its meter table adopted and reconciled \(1 updated, 1 inserted, 1 deleted; last_polled_at kept on 199 meters\)/m,
    );
  });

  it('describes an EMF line and ignores anything else', () => {
    const line = JSON.stringify({
      _aws: {
        CloudWatchMetrics: [
          { Namespace: 'MeterSync', Dimensions: [['SiteId']], Metrics: [{ Name: 'SyncSucceeded' }] },
        ],
      },
      SiteId: 'a',
      SyncSucceeded: 1,
    });
    expect(describeEmf(line)).toBe('MeterSync {SiteId=a} SyncSucceeded=1');
    expect(describeEmf('{"level":"INFO","message":"sync ok"}')).toBeUndefined();
    expect(describeEmf('not json')).toBeUndefined();
  });
});
