/**
 * Every column type survives the trip exactly (DESIGN §3.3): each remote change is one update, a
 * change the server's text form does not show is none, and afterwards the site's text equals the remote's.
 */
import type { Row } from '../../lib/db/rows';
import { meterId } from '../../lib/seed/seed-remote';
import {
  countRows,
  expectedSlice,
  resetFixture,
  SHIPPED_TABLES,
  siteContents,
} from '../harness/site-contents';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';

/** A column and the values written to it in turn; each with the number of updates it must cause (1, or 0 when its text is unchanged). */
interface ColumnCase {
  entity: 'meter' | 'register' | 'device_register';
  column: string;
  type: string;
  /** Written before the first step, so that the first step is a change. */
  baseline: string | null;
  steps: [value: string | null, updates: 0 | 1][];
}

const TRICKY_TEXT = [
  'plug 🔌 ⚡ 👩🏽‍🔧',
  'Ze\u0301hler', // e + combining acute accent
  'Zéhler', // precomposed: another text, not a no-op
  `it's "quoted"`,
  'back\\slash \\N \\\\ and \\t',
  'tab\there\nnewline\r\nCRLF',
  '',
  ' leading and trailing ',
  'x'.repeat(100_000),
] as const;

const CASES: ColumnCase[] = [
  {
    entity: 'meter',
    column: 'serial_number',
    type: 'text',
    baseline: 'SN-BASE',
    steps: [
      [null, 1],
      ['SN-NEW', 1],
      ['', 1],
      [null, 1],
    ],
  },
  {
    entity: 'meter',
    column: 'name',
    type: 'text',
    baseline: 'base name',
    steps: TRICKY_TEXT.map((text) => [text, 1]),
  },
  {
    entity: 'meter',
    column: 'ip_address',
    type: 'text',
    baseline: '10.0.0.1',
    steps: [
      [null, 1],
      ['192.168.0.1', 1],
    ],
  },
  {
    entity: 'meter',
    column: 'port',
    type: 'integer',
    baseline: '502',
    steps: [
      [null, 1],
      ['-2147483648', 1],
      ['2147483647', 1],
      ['502', 1],
    ],
  },
  {
    entity: 'meter',
    column: 'active',
    type: 'boolean',
    baseline: 'true',
    steps: [
      ['false', 1],
      ['no', 0],
      ['true', 1],
    ],
  },
  {
    entity: 'meter',
    column: 'config',
    type: 'jsonb',
    baseline: '{"base": 1}',
    steps: [
      [null, 1],
      ['{"a": 1}', 1],
      ['{"a": 1.0}', 1],
      ['{"a": 1.00}', 1],
      ['{"a": 1}', 1],
      ['{"a": 2, "b": [1, "x"]}', 1],
      // jsonb keeps keys in its own order and drops whitespace: the same text, so no update.
      ['{"b": [1,"x"],   "a": 2}', 0],
      ['{"s": "\\u00e9"}', 1],
      ['{"s": "é"}', 0],
      ['{"s": "\\\\ \\" 🔌"}', 1],
      ['"just a string"', 1],
      ['null', 1],
      [null, 1],
    ],
  },
  {
    entity: 'meter',
    column: 'updated_at',
    type: 'timestamptz',
    baseline: '2023-01-01 00:00:00+00',
    steps: [
      ['2024-01-01 00:00:00+00', 1],
      ['2024-01-01 00:00:00.000001+00', 1],
      // The same instant written in another zone: the same UTC text.
      ['2024-01-01 01:00:00.000001+01', 0],
      ['2024-01-01 00:00:00.000002+00', 1],
      ['1999-12-31 23:59:59.999999+00', 1],
      ['infinity', 1],
      ['-infinity', 1],
      // An hour that Berlin's clocks go through twice: two instants, one hour apart.
      ['2024-10-27 00:30:00+00', 1],
      ['2024-10-27 01:30:00+00', 1],
    ],
  },
  {
    entity: 'register',
    column: 'scale',
    type: 'numeric',
    baseline: '2',
    steps: [
      ['1.5', 1],
      ['1.50', 0],
      ['1.500001', 1],
      ['0.000001', 1],
      ['-999999999999.999999', 1],
      ['999999999999.999999', 1],
      ['0', 1],
      ['1.0000004', 1], // rounds to 1.000000 in numeric(18,6)
      ['1.0000001', 0],
    ],
  },
  {
    entity: 'register',
    column: 'address',
    type: 'integer',
    baseline: '30000',
    steps: [
      ['0', 1],
      ['65535', 1],
    ],
  },
  {
    entity: 'register',
    column: 'unit',
    type: 'text',
    baseline: 'kWh',
    steps: [
      ['unit-x', 1],
      [null, 1],
      ['°C', 1],
      ['m³/h', 1],
      [null, 1],
    ],
  },
  {
    entity: 'register',
    column: 'description',
    type: 'text',
    baseline: 'base',
    steps: [
      ['', 1],
      [null, 1],
      ['', 1],
      [TRICKY_TEXT[4], 1],
    ],
  },
  {
    entity: 'register',
    column: 'updated_at',
    type: 'timestamptz',
    baseline: '2023-01-01 00:00:00+00',
    steps: [
      ['2030-06-30 12:34:56.123456+00', 1],
      ['2030-06-30 12:34:56.123457+00', 1],
    ],
  },
  {
    entity: 'device_register',
    column: 'poll_interval_s',
    type: 'integer',
    baseline: '60',
    steps: [
      ['1', 1],
      ['86400', 1],
    ],
  },
  {
    entity: 'device_register',
    column: 'enabled',
    type: 'boolean',
    baseline: 'true',
    steps: [
      ['false', 1],
      ['true', 1],
    ],
  },
];

const ENTITIES = ['meter', 'register', 'device_register'] as const;
const STEPS = Math.max(...CASES.map((c) => c.steps.length));

/** Each case owns one row: case k of an entity writes the k-th row of that entity's slice. */
function ownRows(slice: Record<string, Row[]>): Map<ColumnCase, Row> {
  const owned = new Map<ColumnCase, Row>();
  for (const name of ENTITIES) {
    CASES.filter((c) => c.entity === name).forEach((c, k) => {
      owned.set(c, slice[name]![k]!);
    });
  }
  return owned;
}

function keyWhere(c: ColumnCase, row: Row): { where: string; values: unknown[] } {
  const keys = SHIPPED_TABLES[c.entity]!.keyColumns;
  return {
    where: keys.map((k, i) => `${k} = $${i + 2}`).join(' AND '),
    values: keys.map((k) => row[k]),
  };
}

async function write(fx: SyncFixture, c: ColumnCase, row: Row, value: string | null): Promise<void> {
  const { where, values } = keyWhere(c, row);
  await fx.remoteClient.query(`UPDATE ${c.entity} SET ${c.column} = $1::${c.type} WHERE ${where}`, [
    value,
    ...values,
  ]);
}

const label = (c: ColumnCase) => `${c.entity}.${c.column}`;

describe('column types: every change is one update and the site text equals the remote text', () => {
  let fx: SyncFixture;
  let owned: Map<ColumnCase, Row>;

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    await resetFixture(fx);
    await fx.seed({ tenants: [1, 2], metersPerTenant: 12, registersPerTenant: 12, registersPerMeter: 1 });
    owned = ownRows(await expectedSlice(fx.remoteClient, 1));
    for (const [c, row] of owned) await write(fx, c, row, c.baseline);
    const first = await fx.sync();
    expect(first.status).toBe('ok');
  });
  afterAll(() => fx.close());

  // Step i writes the i-th value of every case in one run; each case's own row tells whether it was updated.
  it.each(Array.from({ length: STEPS }, (_, i) => i))(
    'step %i: one update per changed value, none otherwise',
    async (i) => {
      // Arrange
      const expected: Record<string, number> = {};
      for (const [c, row] of owned) {
        const step = c.steps[i];
        if (!step) continue;
        await write(fx, c, row, step[0]);
        expected[label(c)] = step[1];
      }
      const before = await siteContents(fx.siteClient);

      // Act
      const result = await fx.sync();

      // Assert: the rows the run updated are exactly the rows whose text changed, and the counts say so.
      expect(result.status).toBe('ok');
      const after = await siteContents(fx.siteClient);
      const updatedPerCase: Record<string, number> = {};
      for (const [c, row] of owned) {
        if (!c.steps[i]) continue;
        const find = (rows: Row[]) =>
          rows.find((r) => keyWhere(c, r).values.join() === keyWhere(c, row).values.join());
        updatedPerCase[label(c)] =
          JSON.stringify(find(before[c.entity]!)) === JSON.stringify(find(after[c.entity]!)) ? 0 : 1;
      }
      expect(updatedPerCase).toEqual(expected);
      expect(countRows(result)).toEqual(
        ENTITIES.map((name) => {
          const rows = before[name]!.length;
          const updates = CASES.filter((c) => c.entity === name).reduce(
            (n, c) => n + (c.steps[i]?.[1] ?? 0),
            0,
          );
          return [name, 0, updates, 0, 0, rows - updates];
        }),
      );
      const { sync_run_count: _runs, ...site } = after;
      expect(site).toEqual(await expectedSlice(fx.remoteClient, 1));
    },
  );

  it('a row with every column changed at once is still one update', async () => {
    const id = meterId(1, 12);
    await fx.remoteClient.query(
      `UPDATE meter SET name = 'all new', serial_number = 'SN-ALL', protocol = 'bacnet', ip_address = '10.9.9.9',
         port = 47808, active = NOT active, config = '{"all": true}', updated_at = updated_at + interval '1 microsecond'
       WHERE id = $1`,
      [id],
    );
    const result = await fx.sync();
    expect(countRows(result)[0]).toEqual(['meter', 0, 1, 0, 0, 11]);
    expect(await fx.rows('site', 'meter', 'id')).toEqual((await expectedSlice(fx.remoteClient, 1)).meter);
  });
});
