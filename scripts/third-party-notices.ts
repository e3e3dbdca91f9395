/**
 * The notices of the packages a bundle contains, from esbuild's metafile: each package's name,
 * version and license, then each distinct license text once. A bundle that ships others' code
 * ships their copyright and permission notices with it (MIT, ISC, Apache-2.0 ask for that).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';

interface BundledPackage {
  name: string;
  version: string;
  license: string;
  /** The package's own license file, when it ships one. */
  text: string | undefined;
}

/** The package folders (…/node_modules/name or …/node_modules/@scope/name) the bundle's inputs come from. */
function packageFolders(metafile: Metafile, root: string): string[] {
  const folders = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
    if (match) folders.add(join(root, match[1]!));
  }
  return [...folders];
}

function readPackage(folder: string): BundledPackage {
  const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    license?: string;
  };
  const file = readdirSync(folder).find((name) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(name));
  return {
    name: manifest.name,
    version: manifest.version,
    license: manifest.license ?? 'unknown',
    text: file ? readFileSync(join(folder, file), 'utf8').trim() : undefined,
  };
}

export function thirdPartyNotices(metafile: Metafile, root: string, product: string): string {
  const packages = packageFolders(metafile, root)
    .map(readPackage)
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  const byText = new Map<string, BundledPackage[]>();
  for (const pkg of packages) {
    if (pkg.text !== undefined) byText.set(pkg.text, [...(byText.get(pkg.text) ?? []), pkg]);
  }
  const id = (pkg: BundledPackage) => `${pkg.name}@${pkg.version}`;
  return [
    `${product} contains the following packages, under their own licenses:`,
    '',
    ...packages.map(
      (pkg) =>
        `  ${id(pkg)}  ${pkg.license}${pkg.text === undefined ? ' (no license file in the package)' : ''}`,
    ),
    ...[...byText].flatMap(([text, users]) => [
      '',
      '-'.repeat(78),
      `The license of ${users.map(id).join(', ')}:`,
      '',
      text,
    ]),
    '',
  ].join('\n');
}
