/** EntityRegistry: metadata is validated when registered, and the order of work is derived from declared parents. */
import {
  defaultRegistry,
  deviceRegister,
  type EntityMetadata,
  EntityRegistry,
  meter,
  register,
} from '../../lib/entities';
import { EntityMetadataError } from '../../lib/errors';

const leaf = (name: string, parents: EntityMetadata['parents'] = []): EntityMetadata => ({
  name,
  table: name,
  keyColumns: ['id'],
  columns: ['id', 'parent_id', 'other_id', 'tenant_id'],
  tenantColumn: 'tenant_id',
  parents,
});

/** Registers the entities and returns the error it raised, failing the test if none. */
function rejection(entities: readonly EntityMetadata[]): EntityMetadataError {
  try {
    new EntityRegistry(entities);
  } catch (error) {
    expect(error).toBeInstanceOf(EntityMetadataError);
    expect((error as EntityMetadataError).code).toBe('BAD_ENTITY_METADATA');
    return error as EntityMetadataError;
  }
  throw new Error('the registry accepted invalid metadata');
}

describe('EntityRegistry', () => {
  it('ships meter, register and device_register in parent-first order', () => {
    expect(defaultRegistry.names).toEqual(['meter', 'register', 'device_register']);
    expect(defaultRegistry.get('device_register')).toBe(deviceRegister);
    expect(defaultRegistry.has('nope')).toBe(false);
  });

  it('orders parents first whatever order they are declared in, declared order among equals', () => {
    const registry = new EntityRegistry([deviceRegister, register, meter]);
    expect(registry.names).toEqual(['register', 'meter', 'device_register']);
    const chain = new EntityRegistry([
      leaf('c', [{ entity: 'b', columns: { parent_id: 'id' } }]),
      leaf('b', [{ entity: 'a', columns: { parent_id: 'id' } }]),
      leaf('a'),
    ]);
    expect(chain.names).toEqual(['a', 'b', 'c']);
  });

  it('selects a subset in parent-first order and rejects unknown names', () => {
    expect(defaultRegistry.select(['device_register', 'meter']).map((e) => e.name)).toEqual([
      'meter',
      'device_register',
    ]);
    expect(defaultRegistry.select().map((e) => e.name)).toEqual(defaultRegistry.names);
    expect(() => defaultRegistry.select(['meter', 'gauge'])).toThrow(/"gauge": unknown entity/);
  });

  it('accepts quoted, mixed-case identifiers and composite keys', () => {
    const note: EntityMetadata = {
      name: 'meter_note',
      table: 'Meter Note',
      keyColumns: ['Meter Id', 'Seq'],
      columns: ['Meter Id', 'Seq', 'Body "text"'],
      parents: [{ entity: 'meter', columns: { 'Meter Id': 'id' } }],
      remoteQuery:
        'SELECT n.* FROM "Meter Note" n JOIN meter m ON m.id = n."Meter Id" WHERE m.tenant_id = $1',
    };
    expect(new EntityRegistry([meter, note]).names).toEqual(['meter', 'meter_note']);
  });

  it("reads a remote query's parameters and statements off its code, not its literals or comments", () => {
    const query = [
      `SELECT a.*, 'a;$2' AS s, E'it\\'s;$3' AS e, "odd;$4" AS q, $$;$5$$ AS d, $x$ $$;$6 $x$ AS t`,
      'FROM a -- ; $7',
      'WHERE /* /* $8; */ ; */ a.tenant_id = $1 AND a.col$9 IS NOT NULL',
    ].join('\n');
    expect(new EntityRegistry([{ ...leaf('a'), tenantColumn: undefined, remoteQuery: query }]).names).toEqual(
      ['a'],
    );
  });

  describe('rejects invalid metadata with a clear error', () => {
    it.each<[string, EntityMetadata[], RegExp]>([
      ['an entity name that is not lower snake case', [{ ...leaf('a'), name: 'Meter' }], /lower snake case/],
      ['an empty table name', [{ ...leaf('a'), table: '' }], /table must be a non-empty string/],
      ['a table name with a NUL', [{ ...leaf('a'), table: 'me\0ter' }], /NUL/],
      [
        'a column longer than 63 bytes',
        [{ ...leaf('a'), columns: ['id', 'é'.repeat(32)] }],
        /longer than 63 bytes/,
      ],
      ['no columns', [{ ...leaf('a'), columns: [] }], /at least one column/],
      [
        'a repeated column',
        [{ ...leaf('a'), columns: ['id', 'id', 'tenant_id'] }],
        /columns must not repeat/,
      ],
      ['no key', [{ ...leaf('a'), keyColumns: [] }], /keyColumns must list/],
      ['a key column that is not a column', [{ ...leaf('a'), keyColumns: ['uid'] }], /key column "uid"/],
      [
        'a tenant column that is not a column',
        [{ ...leaf('a'), tenantColumn: 'owner' }],
        /tenant column "owner"/,
      ],
      [
        'neither a tenant column nor a remote query',
        [{ ...leaf('a'), tenantColumn: undefined }],
        /give tenantColumn or remoteQuery: a site must receive only its tenant's rows/,
      ],
      [
        'both a tenant column and a remote query',
        [{ ...leaf('a'), remoteQuery: 'SELECT * FROM a WHERE tenant_id = $1' }],
        /either tenantColumn or remoteQuery/,
      ],
      [
        'a remote query with another parameter',
        [
          {
            ...leaf('a'),
            tenantColumn: undefined,
            remoteQuery: 'SELECT * FROM a WHERE tenant_id = $1 AND id > $2',
          },
        ],
        /\$1 \(the tenant id\) and no other parameter/,
      ],
      [
        'a remote query without the tenant parameter',
        [{ ...leaf('a'), tenantColumn: undefined, remoteQuery: 'SELECT * FROM a' }],
        /no other parameter/,
      ],
      [
        'a remote query with a second statement',
        [
          {
            ...leaf('a'),
            tenantColumn: undefined,
            remoteQuery: 'SELECT * FROM a WHERE tenant_id = $1; DROP TABLE a',
          },
        ],
        /without ";"/,
      ],
      ...(
        [
          ['its only $1 inside a string literal', "SELECT * FROM a WHERE name = '$1'", /no other parameter/],
          ['its only $1 inside a comment', 'SELECT * FROM a -- WHERE tenant_id = $1', /no other parameter/],
          [
            'a second statement after a literal with a quote',
            "SELECT 'it''s' FROM a WHERE t = $1; SELECT 1",
            /without ";"/,
          ],
          [
            'an unterminated string literal',
            "SELECT * FROM a WHERE t = $1 AND n = 'x",
            /unterminated string literal/,
          ],
          [
            'an unterminated block comment',
            'SELECT * FROM a WHERE t = $1 /* /* */',
            /unterminated \/\* comment/,
          ],
        ] as const
      ).map(([what, remoteQuery, error]): [string, EntityMetadata[], RegExp] => [
        `a remote query with ${what}`,
        [{ ...leaf('a'), tenantColumn: undefined, remoteQuery }],
        error,
      ]),
      ['a duplicate name', [leaf('a'), leaf('a')], /registered twice/],
      [
        'an unknown parent',
        [leaf('a', [{ entity: 'ghost', columns: { parent_id: 'id' } }])],
        /"ghost" is not a registered entity/,
      ],
      [
        'a parent column that is not a column',
        [leaf('a'), leaf('b', [{ entity: 'a', columns: { a_id: 'id' } }])],
        /column "a_id" is not one of its columns/,
      ],
      [
        'parent columns that do not cover its whole key',
        [meter, register, { ...deviceRegister, parents: [{ entity: 'meter', columns: {} }] }],
        /must reference its whole key \(id\)/,
      ],
      [
        'parent columns that reference a non-key column',
        [leaf('a'), leaf('b', [{ entity: 'a', columns: { parent_id: 'tenant_id' } }])],
        /must reference its whole key/,
      ],
      [
        'a parent cycle',
        [
          leaf('a', [{ entity: 'b', columns: { parent_id: 'id' } }]),
          leaf('b', [{ entity: 'a', columns: { parent_id: 'id' } }]),
        ],
        /parent cycle among a, b/,
      ],
      [
        'an entity that is its own parent',
        [leaf('a', [{ entity: 'a', columns: { parent_id: 'id' } }])],
        /parent cycle/,
      ],
    ])('%s', (_what, entities, message) => {
      expect(rejection(entities).message).toMatch(message);
    });
  });
});
