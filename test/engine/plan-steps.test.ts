/** The order of a run's work, derived from declared parents only (DESIGN §3.4). */
import { planSteps, relativesOf } from '../../lib/engine/plan-steps';

describe('planSteps', () => {
  it('deletes child-first, then upserts parent-first', () => {
    expect(planSteps(['meter', 'register', 'device_register'])).toEqual([
      { entity: 'device_register', kind: 'delete' },
      { entity: 'register', kind: 'delete' },
      { entity: 'meter', kind: 'delete' },
      { entity: 'meter', kind: 'upsert' },
      { entity: 'register', kind: 'upsert' },
      { entity: 'device_register', kind: 'upsert' },
    ]);
  });

  it('finds the entities whose plan bears on one: its descendants, and its ancestors with their other descendants', () => {
    const parents: Record<string, string[]> = {
      meter: [],
      register: [],
      device_register: ['meter', 'register'],
      meter_note: ['meter'],
      note_tag: ['meter_note'],
      tariff: [],
    };
    const order = Object.keys(parents);
    const parentsOf = (name: string) => parents[name]!;
    expect(relativesOf('meter', order, parentsOf)).toEqual(['device_register', 'meter_note', 'note_tag']);
    // register's rows bear on device_register's; device_register's kept rows bear on meter's, and so on meter_note's.
    expect(relativesOf('register', order, parentsOf)).toEqual(['device_register']);
    expect(relativesOf('device_register', order, parentsOf)).toEqual([
      'meter',
      'register',
      'meter_note',
      'note_tag',
    ]);
    expect(relativesOf('note_tag', order, parentsOf)).toEqual(['meter', 'device_register', 'meter_note']);
    expect(relativesOf('tariff', order, parentsOf)).toEqual([]);
    // An ancestor outside the run links nothing: it keeps its rows whatever the run does.
    expect(relativesOf('device_register', ['register', 'device_register', 'meter_note'], parentsOf)).toEqual([
      'register',
    ]);
  });
});
