/** Splits many alarms into the groups composite alarm rules can hold, and writes those rules. */

/** CloudWatch: a composite alarm's rule names at most 100 alarms, in at most 10,240 characters. */
export const MAX_ALARMS_PER_RULE = 100;
export const MAX_RULE_LENGTH = 10_240;
const OR = ' OR ';

function inAlarm(name: string): string {
  return `ALARM("${name}")`;
}

/** `ALARM("a") OR ALARM("b") ...`: true while any of the named alarms is in ALARM. */
export function anyInAlarm(names: readonly string[]): string {
  return names.map(inAlarm).join(OR);
}

/**
 * Consecutive groups, in the given order, each as large as one rule can hold. Order-based, like the
 * shards: appending alarms only ever changes the last group.
 */
export function groupForRules(names: readonly string[]): string[][] {
  const groups: string[][] = [];
  let group: string[] = [];
  let length = 0;
  for (const name of names) {
    const added = inAlarm(name).length + (group.length > 0 ? OR.length : 0);
    if (group.length === MAX_ALARMS_PER_RULE || length + added > MAX_RULE_LENGTH) {
      groups.push(group);
      group = [];
      length = 0;
    }
    length += inAlarm(name).length + (group.length > 0 ? OR.length : 0);
    group.push(name);
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
