/**
 * Which site column types stand for the site schema's (issue 21 §1): the same, or one that keeps
 * the remote's text of every value it takes; never one that would change a value.
 */
import { columnFit } from '../../lib/db/column-fit';
import type { ColumnType } from '../../lib/db/type-conversion';

/** A type as the catalog describes it (the modifier only as present or not: the fit reads the numbers off the name). */
function type(name: string, category: string): ColumnType {
  return { type: name, base: name.replace(/\(.*\)/, ''), typmod: name.includes('(') ? 1 : -1, category };
}

const TEXT = type('text', 'S');
const NUMERIC = type('numeric(18,6)', 'N');
const INTEGER = type('integer', 'N');
const TIMESTAMPTZ = type('timestamp with time zone', 'D');

describe('columnFit', () => {
  it.each([
    ['text', TEXT, type('text', 'S'), 'same'],
    ['varchar(64) for text', TEXT, type('character varying(64)', 'S'), 'compatible'],
    ['varchar for text', TEXT, type('character varying', 'S'), 'compatible'],
    ['char(10) for text: pads', TEXT, type('character(10)', 'S'), 'conflict'],
    ['numeric(24,6) for numeric(18,6)', NUMERIC, type('numeric(24,6)', 'N'), 'compatible'],
    ['numeric for numeric(18,6)', NUMERIC, type('numeric', 'N'), 'compatible'],
    ['numeric(20,8) for numeric(18,6): other digits', NUMERIC, type('numeric(20,8)', 'N'), 'conflict'],
    ['numeric(10,6) for numeric(18,6): narrower', NUMERIC, type('numeric(10,6)', 'N'), 'conflict'],
    ['bigint for integer', INTEGER, type('bigint', 'N'), 'compatible'],
    ['smallint for integer', INTEGER, type('smallint', 'N'), 'conflict'],
    ['text for integer', INTEGER, type('text', 'S'), 'conflict'],
    [
      'timestamp(6) with time zone for timestamptz',
      TIMESTAMPTZ,
      type('timestamp(6) with time zone', 'D'),
      'compatible',
    ],
    [
      'timestamp(3) with time zone for timestamptz: rounds',
      TIMESTAMPTZ,
      type('timestamp(3) with time zone', 'D'),
      'conflict',
    ],
    [
      'timestamp for timestamptz: drops the offset',
      TIMESTAMPTZ,
      type('timestamp without time zone', 'D'),
      'conflict',
    ],
    ['json for jsonb', type('jsonb', 'U'), type('json', 'U'), 'conflict'],
    ['text for boolean', type('boolean', 'B'), type('text', 'S'), 'conflict'],
  ])('%s: %#', (_name, expected, site, fit) => {
    expect(columnFit(expected, site).fit).toBe(fit);
  });

  it('says what a varchar refuses, and that a varchar without a length takes every text', () => {
    expect(columnFit(TEXT, type('character varying(64)', 'S'))).toEqual({
      fit: 'compatible',
      note: 'a value longer than 64 characters is refused',
      refuses: true,
    });
    expect(columnFit(TEXT, type('character varying', 'S'))).toEqual({
      fit: 'compatible',
      note: 'character varying takes every text',
      refuses: false,
    });
  });
});
