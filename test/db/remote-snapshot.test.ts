/** The remote snapshot's COPY reads: a failed read reaches its consumer as an error, whenever it reads. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { connect } from '../../lib/db/connect';
import { RemoteSnapshot } from '../../lib/db/remote-database';
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

  describe('copyOutThen: the remote moves on once its COPY is over', () => {
    const COPY = 'COPY (SELECT g FROM generate_series(1, 1000) AS g) TO STDOUT';
    const readAll = async (rows: Readable) => {
      let bytes = 0;
      for await (const chunk of rows) bytes += (chunk as Buffer).length;
      return bytes;
    };
    const withSnapshot = async (body: (snapshot: RemoteSnapshot) => Promise<void>) => {
      const client = await connect(db.url, 'remote');
      try {
        await body(await RemoteSnapshot.open(client, 1));
      } finally {
        await client.end();
      }
    };

    it('runs `next` while the consumer is still busy, and gives both results', async () => {
      await withSnapshot(async (snapshot) => {
        let nextRan!: () => void;
        const started = new Promise<void>((resolve) => {
          nextRan = resolve;
        });

        // Act: the consumer ends only once `next` ran; were `next` to wait for it, neither would end.
        const [bytes, next] = await snapshot.copyOutThen(
          COPY,
          'probe',
          async (rows) => {
            const read = await readAll(rows);
            await started;
            return read;
          },
          async () => {
            nextRan();
            return snapshot.query<{ n: string }>('SELECT count(*) AS n FROM pg_class', [], 'probe');
          },
        );

        expect(bytes).toBeGreaterThan(1000);
        expect(Number(next?.[0]?.n)).toBeGreaterThan(0);
        expect(snapshot.broken).toBe(false);
      });
    });

    it('fails as the consumer failed when it fails after `next` started; `next` finishes and the snapshot serves', async () => {
      await withSnapshot(async (snapshot) => {
        let nextDone = false;

        const outcome = snapshot.copyOutThen(
          COPY,
          'probe',
          async (rows) => {
            await readAll(rows);
            await new Promise((done) => setTimeout(done, 50));
            throw new Error('the site refused a row');
          },
          async () => {
            await snapshot.query('SELECT pg_sleep(0.1)', [], 'probe');
            nextDone = true;
          },
        );

        await expect(outcome).rejects.toThrow('the site refused a row');
        expect(nextDone).toBe(true);
        expect(snapshot.broken).toBe(false);
        expect(await snapshot.query('SELECT 1 AS one', [], 'probe')).toEqual([{ one: 1 }]);
      });
    });

    it('never starts `next` when the consumer fails before the COPY is over, and the snapshot serves', async () => {
      await withSnapshot(async (snapshot) => {
        let nextStarted = false;

        const outcome = snapshot.copyOutThen(
          'COPY (SELECT g FROM generate_series(1, 200000) AS g) TO STDOUT',
          'probe',
          async () => {
            throw new Error('the site refused the first row');
          },
          async () => {
            nextStarted = true;
          },
        );

        await expect(outcome).rejects.toThrow('the site refused the first row');
        expect(nextStarted).toBe(false);
        expect(await snapshot.query('SELECT 1 AS one', [], 'probe')).toEqual([{ one: 1 }]);
      });
    });

    it('fails with the error of a `next` the remote refused, and the snapshot serves', async () => {
      await withSnapshot(async (snapshot) => {
        const outcome = snapshot.copyOutThen(COPY, 'probe', readAll, () =>
          snapshot.query('SELECT 1 / 0', [], 'probe'),
        );

        await expect(outcome).rejects.toThrow(/division by zero/);
        expect(await snapshot.query('SELECT 1 AS one', [], 'probe')).toEqual([{ one: 1 }]);
      });
    });
  });
});
