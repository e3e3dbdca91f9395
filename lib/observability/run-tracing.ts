/**
 * What the sync function records of a run in AWS X-Ray, as the handler sees it: nothing at all
 * unless it traces, when functions/sync/xray-tracing.ts (Powertools Tracer) is loaded.
 */
import type { MiddlewareObj } from '@middy/core';
import type { CredentialsSource } from '../credentials';
import type { PhaseTiming } from '../engine';

/** Indexed in X-Ray: find the traces of one site, tenant or action. */
export interface RunAnnotations {
  siteId?: string;
  tenantId?: number;
  action?: string;
}

export interface RunTracing {
  /** Opens and closes the invocation's segment (the Powertools Tracer middleware). */
  readonly middleware?: MiddlewareObj;
  annotate(annotations: RunAnnotations): void;
  /** Runs `work` in a subsegment of its own, e.g. reading the secrets. */
  capture<T>(name: string, work: () => Promise<T>): Promise<T>;
  /** A phase the engine has finished (connect, compare, apply), recorded as a subsegment. */
  phase(timing: PhaseTiming): void;
}

/** The tracing of a function that does not trace. */
export const noTracing: RunTracing = {
  annotate() {},
  capture: (_name, work) => work(),
  phase() {},
};

/** The subsegment name of a phase (X-Ray allows letters, digits, spaces and _ . : / % & # = + \ - @). */
export function phaseName(timing: PhaseTiming): string {
  if (timing.phase === 'connect') return `connect ${timing.database ?? ''}`.trim();
  if (timing.phase === 'read') return `compare ${timing.entity}`;
  return `apply ${timing.entity} ${timing.phase}`;
}

/** Reading the secrets, in a subsegment of its own (cached reads too: they show how rarely it waits). */
export function tracedCredentials(source: CredentialsSource, tracing: RunTracing): CredentialsSource {
  return {
    load: (siteId, options) => tracing.capture('secrets', () => source.load(siteId, options)),
    loadForMigration: (siteId, options) =>
      tracing.capture('secrets', () => source.loadForMigration(siteId, options)),
  };
}
