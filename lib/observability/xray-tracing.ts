/**
 * The X-Ray tracing of the sync function through Powertools Tracer: one segment per invocation
 * (annotated with siteId, tenantId and the action), a subsegment for reading the secrets and one
 * for each phase the engine reports. The response is not captured: a plan's result holds rows.
 */
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { SERVICE_NAME } from './metric-names';
import { phaseName, type RunTracing } from './run-tracing';

export function xrayTracing(tracer: Tracer = new Tracer({ serviceName: SERVICE_NAME })): RunTracing {
  return {
    middleware: captureLambdaHandler(tracer, { captureResponse: false }),
    annotate(annotations) {
      for (const [key, value] of Object.entries(annotations)) {
        if (value !== undefined) tracer.putAnnotation(key, value);
      }
    },
    async capture(name, work) {
      const parent = tracer.isTracingEnabled() ? tracer.getSegment() : undefined;
      if (!parent) return work();
      const subsegment = parent.addNewSubsegment(name);
      tracer.setSegment(subsegment);
      try {
        return await work();
      } catch (error) {
        // Error messages name secrets and sites, never their values (DESIGN §4).
        subsegment.addError(error as Error);
        throw error;
      } finally {
        subsegment.close();
        tracer.setSegment(parent);
      }
    },
    phase(timing) {
      const parent = tracer.isTracingEnabled() ? tracer.getSegment() : undefined;
      if (!parent) return;
      // Recorded once the phase is over: it started `durationMs` ago, and ends now.
      const subsegment = parent.addNewSubsegment(phaseName(timing));
      subsegment.start_time = timing.startedAt / 1000;
      if (timing.entity) subsegment.addAnnotation('entity', timing.entity);
      subsegment.addMetadata('rows', timing.rows, SERVICE_NAME);
      if (timing.error) {
        subsegment.addAnnotation('errorCode', timing.error);
        subsegment.addErrorFlag();
      }
      subsegment.close();
    },
  };
}
