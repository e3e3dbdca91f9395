/** The order of a run's work, derived from declared parents only (DESIGN §3.4). */
import { dependantsOf, firstStepIndex, planSteps } from '../../lib/engine/plan-steps';

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

  it('finds the first step of each entity: its delete', () => {
    const first = firstStepIndex(planSteps(['meter', 'register', 'device_register']));
    expect([...first]).toEqual([
      ['device_register', 0],
      ['register', 1],
      ['meter', 2],
    ]);
  });

  it('finds the entities planned on top of one: children, grandchildren, in run order', () => {
    const parents: Record<string, string[]> = {
      meter: [],
      register: [],
      device_register: ['meter', 'register'],
      meter_note: ['meter'],
      note_tag: ['meter_note'],
    };
    const order = Object.keys(parents);
    const parentsOf = (name: string) => parents[name]!;
    expect(dependantsOf('meter', order, parentsOf)).toEqual(['device_register', 'meter_note', 'note_tag']);
    expect(dependantsOf('register', order, parentsOf)).toEqual(['device_register']);
    expect(dependantsOf('meter_note', order, parentsOf)).toEqual(['note_tag']);
    expect(dependantsOf('device_register', order, parentsOf)).toEqual([]);
    // A child outside the run sees the parent as the site has it: not a dependant.
    expect(dependantsOf('meter', ['meter', 'note_tag'], parentsOf)).toEqual([]);
  });
});
