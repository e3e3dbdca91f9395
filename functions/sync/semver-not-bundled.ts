/**
 * What the tracing file of the bundle has in place of `semver` (25 KiB): the X-Ray SDK requires it
 * only to check the version of the AWS SDK v2 that its `captureAWS` instruments. The function never
 * calls that (it has the v3 SDK), so the check is left out; were it called, it would say so.
 */
export function gte(): never {
  throw new Error("semver is not in the sync function's bundle: AWS SDK v2 instrumentation is not supported");
}
