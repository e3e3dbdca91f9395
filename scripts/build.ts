/**
 * `npm run build`: bundles the sync function with esbuild into the deployable artifact
 * (dist/sync/index.js, and xray-tracing.js beside it, with their source maps), and prints their
 * sizes; then the command (build-cli.ts). Everything is bundled, the AWS SDK included, so the
 * artifact runs with no node_modules and pins the SDK version it was tested with; only four links
 * of the SDK's credential chain that Lambda never uses are left out (functions/sync/bundling.ts,
 * shared with the CDK construct that deploys the function). The X-Ray tracing is a second file that
 * the handler requires only when it traces.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import {
  SYNC_ALIASES,
  SYNC_MAIN_FIELDS,
  XRAY_TRACING_ENTRY,
  XRAY_TRACING_FILE,
  XRAY_TRACING_IMPORT,
} from '../functions/sync/bundling';
import { buildCli, describeCliBuild } from './build-cli';

const ROOT = resolve(__dirname, '..');
export const SYNC_ENTRY = join(ROOT, 'functions/sync/handler.ts');
export const SYNC_OUTFILE = join(ROOT, 'dist/sync/index.js');

/** The target is the Lambda runtime, nodejs24.x (infra/constructs/sync-function.ts); CI runs the bundle's test on Node.js 24. */
export const SYNC_BUNDLE_OPTIONS: Readonly<BuildOptions> = {
  entryPoints: [SYNC_ENTRY],
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  // The AWS SDK's ES module builds (tree-shaken); the credential sources Lambda never has, left out.
  mainFields: [...SYNC_MAIN_FIELDS],
  alias: { ...SYNC_ALIASES },
  minify: true,
  sourcemap: true,
  // Stack traces need the mappings, not a second copy of every source file.
  sourcesContent: false,
  // node-postgres loads these only when asked for its native binding or on Cloudflare Workers; the
  // tracing is the bundle's second file.
  external: ['pg-native', 'pg-cloudflare', XRAY_TRACING_IMPORT],
  // Keep class and function names: errors report `BadEventError`, not a minified letter.
  keepNames: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

export interface BundleReport {
  outfile: string;
  bytes: number;
  gzipBytes: number;
  /** The tracing file beside it, loaded only by a function that traces. */
  tracing: { outfile: string; bytes: number; gzipBytes: number };
  /** The largest packages in the bundle, by the bytes they contribute. */
  largest: [string, number][];
  /** What the bundle still imports at run time: only Node's built-in modules (and the two never loaded on Lambda). */
  externals: string[];
}

function packageOf(path: string): string {
  const match = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (match) return match[1]!;
  // Generated data rather than code: shown apart from the project's own code.
  return path.endsWith('lib/db/rds-ca-certificates.ts') ? '(RDS CA certificates)' : '(meter-sync)';
}

function outputOf(metafile: Metafile, outfile: string): Metafile['outputs'][string] | undefined {
  return Object.entries(metafile.outputs).find(([path]) => resolve(ROOT, path) === outfile)?.[1];
}

function largestPackages(metafile: Metafile, outfile: string): [string, number][] {
  const bytes = new Map<string, number>();
  for (const [path, input] of Object.entries(outputOf(metafile, outfile)?.inputs ?? {})) {
    const name = packageOf(path);
    bytes.set(name, (bytes.get(name) ?? 0) + input.bytesInOutput);
  }
  return [...bytes].sort((a, b) => b[1] - a[1]).slice(0, 6);
}

export async function buildSyncFunction(outfile: string = SYNC_OUTFILE): Promise<BundleReport> {
  const result = await build({ ...SYNC_BUNDLE_OPTIONS, outfile, metafile: true, absWorkingDir: ROOT });
  const output = outputOf(result.metafile, outfile);
  const tracingFile = join(dirname(outfile), XRAY_TRACING_FILE);
  await build({
    ...SYNC_BUNDLE_OPTIONS,
    entryPoints: [XRAY_TRACING_ENTRY],
    external: ['pg-native', 'pg-cloudflare'],
    outfile: tracingFile,
    absWorkingDir: ROOT,
  });
  return {
    outfile,
    bytes: statSync(outfile).size,
    gzipBytes: gzipSync(readFileSync(outfile)).length,
    tracing: {
      outfile: tracingFile,
      bytes: statSync(tracingFile).size,
      gzipBytes: gzipSync(readFileSync(tracingFile)).length,
    },
    largest: largestPackages(result.metafile, outfile),
    externals: [...new Set((output?.imports ?? []).filter((i) => i.external).map((i) => i.path))].sort(),
  };
}

/** The environment of a function that traces, as Lambda gives it (the X-Ray SDK reads LAMBDA_TASK_ROOT). */
export const TRACING_ENVIRONMENT: Readonly<Record<string, string>> = {
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
  LAMBDA_TASK_ROOT: '/var/task',
  POWERTOOLS_TRACE_ENABLED: 'true',
};

/**
 * The time plain Node takes to `require` the bundle (what a Lambda cold start pays before the
 * first event), in fresh processes from a folder with no node_modules: the median wall time, and
 * the median CPU time, which a busy machine disturbs less. With `env` TRACING_ENVIRONMENT, the
 * handler loads the tracing file too.
 */
export function measureColdRequire(
  outfile: string,
  runs = 5,
  env: Readonly<Record<string, string>> = {},
): { wallMs: number; cpuMs: number } {
  const folder = mkdtempSync(join(tmpdir(), 'meter-sync-init-'));
  try {
    copyFileSync(outfile, join(folder, 'index.js'));
    const tracingFile = join(dirname(outfile), XRAY_TRACING_FILE);
    copyFileSync(tracingFile, join(folder, basename(tracingFile)));
    const script =
      'const t=process.hrtime.bigint(),c=process.cpuUsage();require("./index.js");const u=process.cpuUsage(c);' +
      'process.stdout.write(JSON.stringify([Number(process.hrtime.bigint()-t)/1e6,(u.user+u.system)/1e3]))';
    const samples = Array.from(
      { length: runs },
      () =>
        JSON.parse(
          execFileSync(process.execPath, ['-e', script], {
            cwd: folder,
            env: { PATH: process.env.PATH, ...env },
          }).toString(),
        ) as [number, number],
    );
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    return { wallMs: median(samples.map((s) => s[0])), cpuMs: median(samples.map((s) => s[1])) };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
  const outfile = process.argv[2] ? resolve(process.argv[2]) : SYNC_OUTFILE;
  const report = await buildSyncFunction(outfile);
  const where = relative(process.cwd(), report.outfile) || report.outfile;
  console.log(`${where}: ${report.bytes} bytes (${kib(report.bytes)}; ${kib(report.gzipBytes)} gzipped)`);
  console.log(`source map: ${where}.map (${kib(statSync(`${report.outfile}.map`).size)})`);
  console.log(`largest: ${report.largest.map(([name, bytes]) => `${name} ${kib(bytes)}`).join(', ')}`);
  console.log(`run-time imports: ${report.externals.join(', ')}`);
  const tracing = relative(process.cwd(), report.tracing.outfile) || report.tracing.outfile;
  console.log(
    `${tracing}: ${report.tracing.bytes} bytes (${kib(report.tracing.bytes)}; ${kib(report.tracing.gzipBytes)} gzipped), loaded only when the function traces`,
  );
  for (const [label, env] of [
    ['tracing off', {}],
    ['tracing on', TRACING_ENVIRONMENT],
  ] as const) {
    const init = measureColdRequire(report.outfile, 5, env);
    console.log(
      `cold require in plain Node ${process.version}, ${label} (median of 5): ${init.wallMs.toFixed(0)} ms wall, ${init.cpuMs.toFixed(0)} ms CPU`,
    );
  }
  // The function's artifact may go elsewhere (the argument); the command's always goes where its bin looks.
  console.log(describeCliBuild(await buildCli()));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
