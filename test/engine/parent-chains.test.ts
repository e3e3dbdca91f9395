/**
 * Parents and children of other shapes than the shipped ones, defined as metadata here: a channel
 * whose meter is a plain (non-key) foreign key, and alarms keyed by their channel. A child moved to a
 * new parent in the run that deletes its old one is updated, not lost; its own children stay; and a
 * run of some entities keeps every row that rows outside it still reference, up the chain.
 */
import { deviceRegister, type EntityMetadata, EntityRegistry, meter, register } from '../../lib/entities';
import { meterId } from '../../lib/seed/seed-remote';
import {
  contentsDiff,
  countRows,
  entity,
  reportedCounts,
  resetFixture,
  SHIPPED_TABLES,
  siteContents,
  type TableKey,
  tableRows,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

const channel: EntityMetadata = {
  name: 'channel',
  table: 'channel',
  keyColumns: ['id'],
  columns: ['id', 'tenant', 'meter_id', 'label'],
  tenantColumn: 'tenant',
  parents: [{ entity: 'meter', columns: { meter_id: 'id' } }],
};

const alarm: EntityMetadata = {
  name: 'channel_alarm',
  table: 'channel_alarm',
  keyColumns: ['channel_id', 'level'],
  columns: ['channel_id', 'level', 'tenant', 'threshold'],
  tenantColumn: 'tenant',
  parents: [{ entity: 'channel', columns: { channel_id: 'id' } }],
};

const registry = new EntityRegistry([meter, register, deviceRegister, channel, alarm]);
const TABLES: Record<string, TableKey> = { ...SHIPPED_TABLES, channel, channel_alarm: alarm };

const CHANNEL = `CREATE TABLE channel (id bigint PRIMARY KEY, tenant integer NOT NULL, meter_id bigint NOT NULL, label text)`;
const ALARM = `CREATE TABLE channel_alarm (channel_id bigint NOT NULL, level integer NOT NULL, tenant integer NOT NULL,
  threshold numeric, PRIMARY KEY (channel_id, level))`;

describe('chains of parents of other shapes', () => {
  let fx: SyncFixture;
  const A = meterId(1, 1);
  const B = meterId(1, 2);
  const NEW = meterId(1, 9);

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    for (const client of [fx.remoteClient, fx.siteClient]) {
      await client.query(CHANNEL);
      await client.query(ALARM);
    }
    await fx.siteClient.query(`ALTER TABLE channel ADD FOREIGN KEY (meter_id) REFERENCES meter (id)`);
    await fx.siteClient.query(`CREATE INDEX ON channel (meter_id)`);
    await fx.siteClient.query(
      `ALTER TABLE channel_alarm ADD FOREIGN KEY (channel_id) REFERENCES channel (id)`,
    );
  });
  afterAll(() => fx.close());

  beforeEach(async () => {
    await resetFixture(fx, ['channel_alarm', 'channel']);
    await fx.seed({ tenants: [1], metersPerTenant: 3, registersPerTenant: 3, registersPerMeter: 1 });
    const r = fx.remoteClient;
    // Channels 1 and 2 on meter A, 3 on meter B; two alarms on channel 1, one on channel 3.
    await r.query(`INSERT INTO channel VALUES (1, 1, $1, 'one'), (2, 1, $1, 'two'), (3, 1, $2, 'three')`, [
      A,
      B,
    ]);
    await r.query(`INSERT INTO channel_alarm VALUES (1, 1, 1, 0.5), (1, 2, 1, 0.9), (3, 1, 1, 1)`);
    expect((await fx.sync({ registry })).status).toBe('ok');
  });

  const sync = (options = {}) => fx.sync({ registry, ...options });

  it('moves a channel to a meter the run adds while it deletes the old one: the channel is updated, its alarms stay', async () => {
    // Arrange: meter A goes (with its association and channel 2); channel 1 moves to a new meter.
    const r = fx.remoteClient;
    await r.query(
      `INSERT INTO meter (id, tenant_id, name, protocol, active, updated_at) VALUES ($1, 1, 'new', 'mbus', true, now())`,
      [NEW],
    );
    await r.query('UPDATE channel SET meter_id = $1 WHERE id = 1', [NEW]);
    await r.query('DELETE FROM channel WHERE id = 2');
    await r.query('DELETE FROM device_register WHERE device_id = $1', [A]);
    await r.query('DELETE FROM meter WHERE id = $1', [A]);
    const before = await siteContents(fx.siteClient, TABLES);

    // Act
    const dry = await sync({ dryRun: true });
    const result = await sync();

    // Assert
    expect(result.status).toBe('ok');
    expect(countRows(result)).toEqual([
      ['meter', 1, 0, 1, 0, 2],
      ['register', 0, 0, 0, 0, 3],
      ['device_register', 0, 0, 1, 0, 2],
      ['channel', 0, 1, 1, 0, 1],
      ['channel_alarm', 0, 0, 0, 0, 3],
    ]);
    expect(countRows(dry)).toEqual(countRows(result));
    const after = await siteContents(fx.siteClient, TABLES);
    expect(reportedCounts(result)).toEqual(contentsDiff(before, after, TABLES));
    expect(after.channel).toEqual(await tableRows(fx.remoteClient, channel));
    expect(after.channel_alarm).toEqual(await tableRows(fx.remoteClient, alarm));
    expect(countRows(await sync()).map((row) => row[1] + row[2] + row[3])).toEqual([0, 0, 0, 0, 0]);
  });

  it('a run of the meters alone keeps a meter the channels outside it reference, and says why', async () => {
    // Arrange
    await fx.remoteClient.query('DELETE FROM channel WHERE meter_id = $1', [A]);
    await fx.remoteClient.query('DELETE FROM device_register WHERE device_id = $1', [A]);
    await fx.remoteClient.query('DELETE FROM meter WHERE id = $1', [A]);

    // Act
    const result = await sync({ entities: ['meter'] });

    // Assert
    expect(result.status).toBe('ok');
    expect(entity(result, 'meter')).toMatchObject({
      deleted: 0,
      skipped: 1,
      unchanged: 3,
      skippedKeys: [`id=${A}`],
      skippedReasons: ['referenced by device_register rows outside this run'],
    });
    // The next run of everything deletes the meter after its children. Channel 1's alarms stay on
    // the remote without their channel: skipped, and their site copies deleted with it.
    const full = await sync();
    expect(countRows(full)).toEqual([
      ['meter', 0, 0, 1, 0, 2],
      ['register', 0, 0, 0, 0, 3],
      ['device_register', 0, 0, 1, 0, 2],
      ['channel', 0, 0, 2, 0, 1],
      ['channel_alarm', 0, 0, 2, 2, 1],
    ]);
  });

  it('keeps rows up the chain: an alarm outside the run keeps its channel, which keeps its meter', async () => {
    // Arrange: meter B and channel 3 go on the remote; alarm (3, 1) is outside the run.
    await fx.remoteClient.query('DELETE FROM channel WHERE id = 3');
    await fx.remoteClient.query('DELETE FROM device_register WHERE device_id = $1', [B]);
    await fx.remoteClient.query('DELETE FROM meter WHERE id = $1', [B]);
    const before = await siteContents(fx.siteClient, TABLES);

    // Act
    const result = await sync({ entities: ['meter', 'register', 'device_register', 'channel'] });

    // Assert
    expect(result.status).toBe('ok');
    expect(entity(result, 'channel')).toMatchObject({
      deleted: 0,
      skipped: 1,
      skippedKeys: ['id=3'],
      skippedReasons: ['referenced by channel_alarm rows outside this run'],
    });
    expect(entity(result, 'meter')).toMatchObject({
      deleted: 0,
      skipped: 1,
      skippedKeys: [`id=${B}`],
      skippedReasons: ['referenced by channel rows this run keeps'],
    });
    expect(entity(result, 'device_register')).toMatchObject({ deleted: 1 });
    const after = await siteContents(fx.siteClient, TABLES);
    const { channel_alarm: _outside, ...diff } = contentsDiff(before, after, TABLES);
    expect(reportedCounts(result)).toEqual(diff);
    expect(after.channel_alarm).toEqual(before.channel_alarm);
  });
});
