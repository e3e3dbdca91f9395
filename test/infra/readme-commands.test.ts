/**
 * The README's `cdk` commands work as written: every stack they name is one `cdk ls` lists (the app
 * synthesized offline), every option they use is one the installed CDK CLI knows, and every one of
 * them names its configuration. And what the README says of a missing or bad configuration holds.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SYNTH_TIMEOUT_MS } from './synthesize';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const CDK = join(ROOT, 'node_modules', '.bin', 'cdk');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cdk(args: readonly string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(CDK, [...args, '--no-notices'], {
      cwd: ROOT,
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface DocumentedCommand {
  text: string;
  command: string;
  stacks: string[];
  options: string[];
}

/** `npx cdk <command> ...` wherever the README shows one, with `<name>` and `<n>` as the test's configuration has them. */
function documentedCommands(): DocumentedCommand[] {
  return [...README.matchAll(/npx cdk ([a-z]+)((?: +[^\s`#]+)*)/g)].map((match) => {
    const words = (match[2] ?? '').trim().split(/\s+/).filter(Boolean);
    return {
      text: match[0],
      command: match[1]!,
      stacks: words
        .filter((w) => !w.startsWith('-') && !w.startsWith('config='))
        .map((w) => w.replaceAll('<name>', 'meter-sync').replaceAll('<n>', '1')),
      options: words.filter((w) => w.startsWith('--')).map((w) => w.split('=')[0]!),
    };
  });
}

describe("the README's cdk commands", () => {
  let dir: string;
  let listed: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meter-sync-readme-'));
    // The sample with three schedules stacks, as a fleet that shrank would keep (the README's examples name up to 3).
    const config = {
      ...JSON.parse(readFileSync(join(ROOT, 'infra/config/sample.json'), 'utf8')),
      siteStacks: 3,
    };
    writeFileSync(join(dir, 'fleet.json'), JSON.stringify(config));
    const ls = await cdk(['ls', '-c', `config=${join(dir, 'fleet.json')}`]);
    expect(ls).toMatchObject({ code: 0 });
    listed = ls.stdout.split('\n').filter(Boolean);
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists the stacks by their names, which the README uses', () => {
    expect(listed).toEqual(['meter-sync', 'meter-sync-sites-1', 'meter-sync-sites-2', 'meter-sync-sites-3']);
    const commands = documentedCommands();
    expect(commands.map((c) => c.command)).toEqual(
      expect.arrayContaining(['deploy', 'destroy', 'bootstrap', 'ls']),
    );
    for (const { text, stacks } of commands) {
      for (const stack of stacks) expect([text, stack, listed.includes(stack)]).toEqual([text, stack, true]);
    }
  });

  it('keeps each command on one line, where this test can read it whole', () => {
    expect(documentedCommands()).toHaveLength(README.split('npx cdk').length - 1);
  });

  it('gives every command its configuration', () => {
    for (const { text } of documentedCommands()) expect(text).toMatch(/ -c config=\S+/);
  });

  it('uses only options the installed CDK CLI has', async () => {
    const commands = documentedCommands();
    for (const command of new Set(commands.map((c) => c.command))) {
      const help = await cdk([command, '--help']);
      const options = new Set(commands.filter((c) => c.command === command).flatMap((c) => c.options));
      for (const option of options)
        expect([command, option, help.stdout.includes(option)]).toEqual([command, option, true]);
    }
  });
});

describe('a missing or bad configuration', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'meter-sync-bad-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused by every cdk command: none deploys the sample by default', async () => {
    const outcome = await cdk(['deploy', '--all', '--require-approval', 'never']);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain(
      '"config" must name the configuration file to deploy, e.g. -c config=infra/config/prod.json',
    );
    expect(outcome.stderr).toContain('Subprocess exited with error 2');
  });

  it('stops synthesis: the app lists every problem and exits 2, cdk reports it and exits 1', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ remoteSecret: 'meter-sync/remote', sites: [{ id: 'Plant 1' }], paused: 'yes' }),
    );
    const outcome = await cdk(['synth', '-c', `config=${bad}`]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain(`${bad} is not a valid meter-sync configuration:`);
    expect(outcome.stderr).toContain('- sites[0].id: "Plant 1" is not a valid site id');
    expect(outcome.stderr).toContain('- paused: "yes" must be true or false');
    expect(outcome.stderr).toContain('Subprocess exited with error 2');
    expect(outcome.stderr).not.toMatch(/\n\s+at /);

    // The app alone (what `cdk` runs) exits 2, as the CLI's own configuration errors do.
    const app = await run(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'infra/app.ts'], {
      cwd: ROOT,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ config: bad }) },
    }).then(
      () => ({ code: 0 }),
      (error: { code: number }) => ({ code: error.code }),
    );
    expect(app.code).toBe(2);
  });
});

describe("the README's links", () => {
  it('point inside the repository: files that exist, or headings of the README', () => {
    const headings = new Set(
      [...README.matchAll(/^#+ (.+)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replaceAll(' ', '-'),
      ),
    );
    const links = [...README.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) {
      if (link.startsWith('#')) expect([link, headings.has(link.slice(1))]).toEqual([link, true]);
      else if (!/^https?:/.test(link)) {
        expect(link.startsWith('..')).toBe(false);
        expect(() => readFileSync(join(ROOT, link.split('#')[0]!))).not.toThrow();
      }
    }
  });
});
