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

/**
 * The entities of a run whose plan bears on `entity`'s rows or is borne on by them: its descendants
 * in the run (planned on the rows it writes and deletes), and the other descendants of its ancestors
 * (the ancestors keep the rows it keeps, and so do their children). `parentFirst` is the run's
 * order, so a parent is always met before its children. `entity` itself is not among them.
 */
export function relativesOf(
  entity: string,
  parentFirst: readonly string[],
  parentsOf: (name: string) => readonly string[],
): string[] {
  const inRun = new Set(parentFirst);
  const ancestors = new Set<string>([entity]);
  for (const name of [...parentFirst].reverse()) {
    if (ancestors.has(name))
      for (const parent of parentsOf(name)) if (inRun.has(parent)) ancestors.add(parent);
  }
  const related = new Set(ancestors);
  for (const name of parentFirst) {
    if (parentsOf(name).some((parent) => related.has(parent))) related.add(name);
  }
  return parentFirst.filter((name) => name !== entity && related.has(name));
}
