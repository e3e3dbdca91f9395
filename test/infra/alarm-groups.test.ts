/** Composite alarm rules over many alarms: each group within CloudWatch's limits, in order, nothing lost. */
import {
  anyInAlarm,
  groupForRules,
  MAX_ALARMS_PER_RULE,
  MAX_RULE_LENGTH,
} from '../../infra/monitoring/alarm-groups';

describe('groupForRules', () => {
  it('keeps short names 100 to a rule, in order', () => {
    const names = Array.from({ length: 250 }, (_, i) => `s${i}-not-syncing`);
    const groups = groupForRules(names);
    expect(groups.map((g) => g.length)).toEqual([100, 100, 50]);
    expect(groups.flat()).toEqual(names);
  });

  it('starts a new rule before one would pass 10,240 characters', () => {
    // The longest alarm name a site can have: a 32-character prefix, shard 100 and a 63-character id.
    const names = Array.from(
      { length: 240 },
      (_, i) => `${'n'.repeat(32)}-sites-100-${String(i).padStart(63, 'x')}-not-syncing`,
    );
    const groups = groupForRules(names);
    for (const group of groups) {
      expect(anyInAlarm(group).length).toBeLessThanOrEqual(MAX_RULE_LENGTH);
      expect(group.length).toBeLessThanOrEqual(MAX_ALARMS_PER_RULE);
    }
    expect(groups.flat()).toEqual(names);
    // 78 such names fit a rule: 240 sites make 4 composite alarms (MAX_SITES_PER_STACK's arithmetic).
    expect(groups.map((g) => g.length)).toEqual([78, 78, 78, 6]);
  });

  it('makes no group of nothing', () => {
    expect(groupForRules([])).toEqual([]);
    expect(anyInAlarm(['a', 'b'])).toBe('ALARM("a") OR ALARM("b")');
  });
});
