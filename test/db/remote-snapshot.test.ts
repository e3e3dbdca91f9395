/** The remote snapshot's COPY reads: a failed read reaches its consumer as an error, whenever it reads. */
import type { Client } from 'pg';
import { connect } from '../../lib/db/connect';
import { RemoteSnapshot } from '../../lib/db/remote-database';
import { createTestDatabase, type TestDatabase } from '../harness/test-database';

describe('remote snapshot reads', () => {
  let db: TestDatabase;
  let client: Client;
  beforeAll(async () => {
    db = await createTestDatabase('remote_snapshot');
    client = await connect(db.url, 'remote');
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  it('hands a COPY that fails before its consumer reads to the consumer, and the snapshot still serves', async () => {
    const snapshot = await RemoteSnapshot.open(client, 1);

    // The consumer first waits (as a merge waits on the site) while the remote refuses the COPY.
    const read = snapshot.copyOut('COPY (SELECT 1 / 0) TO STDOUT', 'probe', async (rows) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      for await (const _ of rows) {
        // never reached: the statement failed
      }
      return 'read';
    });

    await expect(read).rejects.toMatchObject({ message: expect.stringContaining('division by zero') });
    expect(await snapshot.query<{ one: number }>('SELECT 1 AS one', [], 'probe')).toEqual([{ one: 1 }]);
    await snapshot.close();
  });
});
