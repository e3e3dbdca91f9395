/**
 * The fleet soak in small, for CI (`npm run soak` is the full one): 6 sites of 3 tenants, the
 * handler run 3 at a time for 3 rounds while a writer edits the remote, a last round, then every
 * site equal to its tenant's slice, column for column. No failure, no divergence, no secret in
 * the output.
 */
import { Client, escapeIdentifier } from 'pg';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import { formatSoakReport, runSoak, type SoakReport } from '../harness/fleet-soak';
import { serverUrl } from '../harness/test-database';

describe('fleet soak (small)', () => {
  let role: LoginRole;
  let report: SoakReport;

  beforeAll(async () => {
    // The handler connects as a role of its own, whose password the output scan looks for. The
    // role may create databases, so the soak's databases are its own and it needs no grants.
    role = await createLoginRole([]);
    const admin = new URL(serverUrl());
    const client = new Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`ALTER ROLE ${escapeIdentifier(role.name)} CREATEDB`);
    await client.end();
    const adminUrl = admin.toString();
    admin.username = role.name;
    admin.password = encodeURIComponent(role.password);
    const lines: string[] = [];
    report = await runSoak({
      serverUrl: admin.toString(),
      adminUrl,
      sites: 6,
      tenants: 3,
      rounds: 3,
      concurrency: 3,
      seed: { metersPerTenant: 20, registersPerTenant: 30, registersPerMeter: 2 },
      duplicatesPerRound: 3,
      writesPerSecond: 50,
      randomSeed: 7,
      secrets: [role.password],
      log: (line) => lines.push(line),
    });
    lines.push(...formatSoakReport(report));
    // Shown when the run is verbose; the assertions below say what must hold.
    if (process.env.SOAK_VERBOSE) console.log(lines.join('\n'));
  });
  afterAll(() => role.drop());

  it('ran every round, with runs locked out only by their duplicates', () => {
    expect(report.rounds).toBe(4);
    expect(report.runs).toBe(3 * (6 + 3) + 6);
    expect(report.ok + report.locked).toBe(report.runs);
    expect(report.locked).toBeLessThanOrEqual(3 * 3);
    expect(report.failureSamples).toEqual([]);
  });

  it('while the writer really edited the remote', () => {
    expect(report.writerTransactions).toBeGreaterThan(0);
    expect(report.writerEdits).toBeGreaterThanOrEqual(report.writerTransactions);
  });

  it('left every site equal to its tenant slice, column for column', () => {
    expect(report.sitesChecked).toBe(6);
    expect(report.rowsChecked).toBeGreaterThan(6 * 50);
    expect(report.divergences).toEqual([]);
  });

  it('wrote no password in any of its output', () => {
    expect(report.outputLines).toBeGreaterThan(report.runs);
    expect(report.leaks).toBe(0);
  });
});
