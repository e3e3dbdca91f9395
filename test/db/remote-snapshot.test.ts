/** The remote snapshot's COPY reads: a failed read reaches its consumer as an error, whenever it reads. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

/**
 * Run in a process of its own: an error event nobody listens to crashes a process, which jest,
 * catching it for the test, would not show as a failure.
 */
const SCRIPT = (root: string) => `
const { connect } = require(${JSON.stringify(join(root, 'lib/db/connect'))});
const { RemoteSnapshot } = require(${JSON.stringify(join(root, 'lib/db/remote-database'))});
(async () => {
  const client = await connect(process.env.URL, 'remote');
  const snapshot = await RemoteSnapshot.open(client, 1);
  // The consumer first waits (as a merge waits on the site) while the remote refuses the COPY.
  const outcome = await snapshot
    .copyOut('COPY (SELECT 1 / 0) TO STDOUT', 'probe', async (rows) => {
      await new Promise((done) => setTimeout(done, 300));
      for await (const _ of rows) {}
      return 'read';
    })
    .then((value) => value, (error) => error.message);
  const after = await snapshot.query('SELECT 1 AS one', [], 'probe');
  await snapshot.close();
  await client.end();
  process.stdout.write(JSON.stringify({ outcome, after }));
})();
`;

describe('remote snapshot reads', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase('remote_snapshot');
    dir = mkdtempSync(join(tmpdir(), 'meter-sync-snapshot-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  });

  it('hands a COPY that fails before its consumer reads to the consumer, and the snapshot still serves', () => {
    const script = join(dir, 'read.ts');
    writeFileSync(script, SCRIPT(resolve(__dirname, '../..')));

    // Throws (and fails the test) if the process crashes on an unhandled error event.
    const output = execFileSync(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, URL: db.url },
      encoding: 'utf8',
    });

    expect(JSON.parse(output)).toEqual({
      outcome: expect.stringContaining('division by zero'),
      after: [{ one: 1 }],
    });
  });
});
