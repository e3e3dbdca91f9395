/**
 * `npm run soak`: the fleet soak (test/harness/fleet-soak.ts). 50 site databases for 10 tenants
 * on one server (embedded by default), the Lambda handler run for all of them 8 at a time for
 * several rounds while a writer edits the remote, then every site checked against its tenant's
 * slice. Exits 1 on any failure, divergence or secret in the output.
 *
 *   npm run soak -- --sites 50 --tenants 10 --rounds 6 --concurrency 8 [--seed 1] [--keep]
 *   SOAK_DATABASE_URL=postgres://… npm run soak     (a server of your own instead of the embedded one)
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startEmbeddedServer } from '../lib/db/embedded-server';
import { formatSoakReport, runSoak } from '../test/harness/fleet-soak';

// Bound before the soak captures the process output, so progress reaches the terminal.
const print = process.stdout.write.bind(process.stdout);
const say = (line: string) => print(`${line}\n`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      sites: { type: 'string', default: '50' },
      tenants: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '6' },
      concurrency: { type: 'string', default: '8' },
      meters: { type: 'string', default: '200' },
      registers: { type: 'string', default: '300' },
      'registers-per-meter': { type: 'string', default: '3' },
      duplicates: { type: 'string', default: '5' },
      'writes-per-second': { type: 'string', default: '40' },
      seed: { type: 'string', default: '1' },
      keep: { type: 'boolean', default: false },
    },
  });
  const number = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number`);
    return value;
  };
  // A password of its own, so that the scan of the output for it means something.
  const password = `soak-${randomBytes(12).toString('base64url')}`;
  const server = process.env.SOAK_DATABASE_URL
    ? undefined
    : await startEmbeddedServer({ password, postgresFlags: ['-c', 'max_connections=300'] });
  const serverUrl = process.env.SOAK_DATABASE_URL ?? server!.url;
  const secrets = [
    password,
    ...(process.env.SOAK_DATABASE_URL ? [new URL(serverUrl).password].filter((p) => p.length >= 6) : []),
  ];
  try {
    say(
      `meter-sync soak on ${server ? `an embedded PostgreSQL (port ${server.port})` : 'SOAK_DATABASE_URL'}`,
    );
    const report = await runSoak({
      serverUrl,
      sites: number('sites'),
      tenants: number('tenants'),
      rounds: number('rounds'),
      concurrency: number('concurrency'),
      seed: {
        metersPerTenant: number('meters'),
        registersPerTenant: number('registers'),
        registersPerMeter: number('registers-per-meter'),
      },
      duplicatesPerRound: number('duplicates'),
      writesPerSecond: number('writes-per-second'),
      randomSeed: number('seed'),
      secrets,
      log: say,
      keep: values.keep,
    });
    for (const line of formatSoakReport(report)) say(line);
    const clean = report.failures === 0 && report.divergences.length === 0 && report.leaks === 0;
    say(clean ? 'soak passed' : 'soak FAILED');
    return clean ? 0 : 1;
  } finally {
    await server?.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`soak: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
