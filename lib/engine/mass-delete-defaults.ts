/** The mass-delete guard's defaults (DESIGN §3.9), apart from the engine so the command line reads them cheaply. */
export const DEFAULT_MAX_DELETE_RATIO = 0.5;
/**
 * Below this many site rows an entity is too small for a ratio to mean anything; a step that would
 * delete all of them is still guarded.
 */
export const MASS_DELETE_MIN_ROWS = 20;
