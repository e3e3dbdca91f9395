/**
 * What both bundlers of the sync function give esbuild beyond their defaults: `npm run build`
 * (scripts/build.ts, the artifact the tests run and measure) and the CDK construct that deploys it
 * (infra/constructs/sync-function.ts). Plain data, so that neither imports the other.
 */

/**
 * The ES module builds first: the AWS SDK's packages (`module`: dist-es) can then be tree-shaken,
 * where their CommonJS builds (`main`: dist-cjs) bring every command, protocol and codec of a
 * package whole (150 KB more, and a user-agent parser for browsers).
 */
export const SYNC_MAIN_FIELDS: readonly string[] = ['module', 'main'];

/** Resolved in the repository root, esbuild's working directory in both bundlers. */
const NOT_BUNDLED = './functions/sync/credential-providers-not-bundled.ts';

/**
 * Packages replaced in the bundle: the links of the SDK's default credential chain that cannot
 * apply on Lambda (see credential-providers-not-bundled.ts), and the version check of the AWS SDK
 * v2 instrumentation the X-Ray SDK carries (semver-not-bundled.ts).
 */
export const SYNC_ALIASES: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-ini': NOT_BUNDLED,
  '@aws-sdk/credential-provider-sso': NOT_BUNDLED,
  '@aws-sdk/credential-provider-process': NOT_BUNDLED,
  '@aws-sdk/credential-provider-web-identity': NOT_BUNDLED,
  semver: './functions/sync/semver-not-bundled.ts',
};

/**
 * The bundle's second file: the X-Ray tracing (Powertools Tracer and the X-Ray SDK, about 100 KiB).
 * The handler requires it by `XRAY_TRACING_IMPORT`, which both bundlers leave as it is (external),
 * and only when the function traces; each builds it from `XRAY_TRACING_ENTRY` into
 * `XRAY_TRACING_FILE` beside index.js.
 */
export const XRAY_TRACING_IMPORT = './xray-tracing';
export const XRAY_TRACING_ENTRY = './functions/sync/xray-tracing.ts';
export const XRAY_TRACING_FILE = 'xray-tracing.js';
