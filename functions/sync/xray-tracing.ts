/**
 * The second file of the function's bundle (functions/sync/bundling.ts): the X-Ray tracing, with
 * the X-Ray SDK it needs, which the handler loads only when the function traces.
 */
export { xrayTracing } from '../../lib/observability/xray-tracing';
