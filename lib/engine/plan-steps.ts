/**
 * The order of a run's work: deletes child-first, then upserts parent-first (DESIGN §3.4), so
 * the site's non-deferrable foreign keys never fire. Derived from declared parents only.
 */

export interface Step {
  readonly entity: string;
  readonly kind: 'delete' | 'upsert';
}

/** `parentFirst` is the run's entities in parent-first order (the registry's order). */
export function planSteps(parentFirst: readonly string[]): Step[] {
  return [
    ...[...parentFirst].reverse().map((entity): Step => ({ entity, kind: 'delete' })),
    ...parentFirst.map((entity): Step => ({ entity, kind: 'upsert' })),
  ];
}

/** Index of each entity's first step: rolling back to it undoes all the entity did. */
export function firstStepIndex(steps: readonly Step[]): Map<string, number> {
  const first = new Map<string, number>();
  steps.forEach((step, index) => {
    if (!first.has(step.entity)) first.set(step.entity, index);
  });
  return first;
}

/**
 * The entities of a run planned on top of `entity`'s rows: its children in the run, theirs, and so
 * on. `parentFirst` is the run's order, so a parent is always met before its children.
 */
export function dependantsOf(
  entity: string,
  parentFirst: readonly string[],
  parentsOf: (name: string) => readonly string[],
): string[] {
  const planned = new Set([entity]);
  const dependants: string[] = [];
  for (const name of parentFirst) {
    if (name !== entity && parentsOf(name).some((parent) => planned.has(parent))) {
      planned.add(name);
      dependants.push(name);
    }
  }
  return dependants;
}
