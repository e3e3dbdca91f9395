/**
 * The handler's X-Ray tracing through the real Powertools Tracer, as on Lambda: the environment the
 * runtime sets for an actively traced function, and a local UDP socket in place of the X-Ray daemon,
 * which receives the segment documents the X-Ray SDK sends. At DEBUG, each phase also logs a line.
 */
import './lambda-environment';
import type { SyncResult } from '../../lib/engine';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { startXrayDaemon, type XrayDaemon, type XraySegmentDocument } from '../harness/xray-daemon';
import { captureOutput, logLines } from '../observability/captured-output';
import { lambdaContext } from './lambda-context';

const TRACE_ID = '1-5759e988-bd862e3fe1be46a994272793';
const SITE = 'traced-site';

type Handler = (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<unknown>;

let daemon: XrayDaemon;
let fx: SyncFixture;
let handler: Handler;

/** The documents of one invocation: its handler subsegment and everything beneath it. */
async function documentsOf(invocation: number): Promise<XraySegmentDocument[]> {
  const handlerName = '## index.handler';
  // The SDK sends each subsegment as it closes, over UDP: wait (a bounded number of turns) for the handler's.
  for (let turn = 0; turn < 500; turn += 1) {
    if (daemon.documents.filter((d) => d.name === handlerName).length > invocation) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const handlers = daemon.documents.filter((d) => d.name === handlerName);
  const root = handlers[invocation];
  if (!root) throw new Error(`no handler subsegment for invocation ${invocation}`);
  const byParent = (id: string): XraySegmentDocument[] =>
    daemon.documents.filter((d) => d.parent_id === id).flatMap((d) => [d, ...byParent(d.id)]);
  return [root, ...byParent(root.id)];
}

async function invoke(event: unknown, traceParent: string): Promise<{ result: SyncResult; lines: string[] }> {
  process.env._X_AMZN_TRACE_ID = `Root=${TRACE_ID};Parent=${traceParent};Sampled=1`;
  const output = captureOutput();
  try {
    const result = (await handler(event, lambdaContext())) as SyncResult;
    return { result, lines: output.lines };
  } finally {
    output.restore();
  }
}

const LAMBDA_KEYS = [
  'AWS_EXECUTION_ENV',
  'LAMBDA_TASK_ROOT',
  '_HANDLER',
  'POWERTOOLS_TRACE_ENABLED',
  'POWERTOOLS_LOG_LEVEL',
  'AWS_XRAY_DAEMON_ADDRESS',
  'AWS_XRAY_CONTEXT_MISSING',
  '_X_AMZN_TRACE_ID',
];

beforeAll(async () => {
  daemon = await startXrayDaemon();
  // What Lambda sets for a function with active tracing; the module reads it when it loads.
  Object.assign(process.env, {
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    LAMBDA_TASK_ROOT: '/var/task',
    _HANDLER: 'index.handler',
    POWERTOOLS_TRACE_ENABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'DEBUG',
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
    _X_AMZN_TRACE_ID: `Root=${TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1`,
  });
  fx = await createSyncFixture(4);
  await fx.seed({ tenants: [3, 4], metersPerTenant: 8, registersPerTenant: 10, registersPerMeter: 2 });
  const { createSyncHandler } = await import('../../functions/sync/handler');
  const { LocalCredentials } = await import('../../lib/credentials');
  handler = createSyncHandler({
    credentials: new LocalCredentials({
      remote: fx.remote.url,
      sites: { [SITE]: { url: fx.site.url, tenantId: 4 } },
    }),
  }) as unknown as Handler;
});

afterAll(async () => {
  for (const key of LAMBDA_KEYS) delete process.env[key];
  await fx?.close();
  await daemon?.close();
});

describe('the sync handler, traced', () => {
  it('sends one handler subsegment per invocation, annotated with siteId, tenantId and the action, and a subsegment per phase', async () => {
    // Arrange: a first run loads the site; then the remote changes, so the second run has apply steps.
    await invoke({ siteId: SITE }, '1111111111111111');
    await fx.remoteClient.query(
      "UPDATE meter SET name = name || ' (moved)' WHERE id = (SELECT min(id) FROM meter WHERE tenant_id = 4)",
    );

    // Act
    const { result, lines } = await invoke({ siteId: SITE }, '2222222222222222');

    // Assert: the run, its segment and its subsegments.
    expect(result).toMatchObject({ ok: true, status: 'ok', tenantId: 4 });
    expect(result.entities.find((e) => e.entity === 'meter')?.updated).toBe(1);
    const [root, ...children] = await documentsOf(1);
    expect(root!.trace_id).toBe(TRACE_ID);
    expect(root!.annotations).toMatchObject({ siteId: SITE, tenantId: 4, action: 'sync', ColdStart: false });
    const names = children.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'secrets',
        'connect site',
        'connect remote',
        'compare meter',
        'compare register',
        'compare device_register',
        'apply meter delete',
        'apply meter upsert',
      ]),
    );
    // Phases are the handler's children, each within it, in the order they ran.
    const phases = children.filter((c) => c.name !== 'secrets' && !c.name.includes('.'));
    for (const phase of phases) {
      expect(phase.parent_id).toBe(root!.id);
      expect(phase.start_time).toBeGreaterThanOrEqual(root!.start_time);
      expect(phase.end_time).toBeGreaterThanOrEqual(phase.start_time);
      expect(phase.end_time!).toBeLessThanOrEqual(root!.end_time!);
    }
    const compareMeter = children.find((c) => c.name === 'compare meter')!;
    expect(compareMeter.annotations).toEqual({ entity: 'meter' });
    expect(compareMeter.metadata).toEqual({ 'meter-sync': { rows: { remote: 8 } } });
    const upsert = children.find((c) => c.name === 'apply meter upsert')!;
    expect(upsert.metadata?.['meter-sync']?.rows).toMatchObject({ inserted: 0, updated: 1, skipped: 0 });

    // At DEBUG, each phase of each entity logs its duration and rows.
    const debug = logLines(lines).filter((l) => l.level === 'DEBUG');
    expect(debug.map((l) => l.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^compare meter: \d+ ms$/),
        expect.stringMatching(/^apply meter upsert: \d+ ms$/),
      ]),
    );
    expect(debug.find((l) => String(l.message).startsWith('apply meter upsert'))).toMatchObject({
      siteId: SITE,
      phase: 'upsert',
      entity: 'meter',
      durationMs: expect.any(Number),
      rows: expect.objectContaining({ inserted: 0, updated: 1, skipped: 0 }),
    });
  });

  it('marks a failed phase with its error code, and the invocation is still annotated', async () => {
    // Arrange: a site whose database refuses connections (nothing listens on port 1).
    const { createSyncHandler } = await import('../../functions/sync/handler');
    const { LocalCredentials } = await import('../../lib/credentials');
    const unreachable = new URL(fx.site.url);
    unreachable.port = '1';
    handler = createSyncHandler({
      credentials: new LocalCredentials({
        remote: fx.remote.url,
        sites: { [SITE]: { url: unreachable.toString(), tenantId: 4 } },
      }),
    }) as unknown as Handler;

    // Act
    const { result } = await invoke({ siteId: SITE, dryRun: true }, '3333333333333333');

    // Assert
    expect(result).toMatchObject({ ok: false, status: 'failed' });
    const code = result.error!.code;
    expect(code).toMatch(/^CONNECTION_/);
    const [root, ...children] = await documentsOf(2);
    expect(root!.annotations).toMatchObject({ siteId: SITE, tenantId: 4, action: 'sync' });
    expect(children.find((c) => c.name === 'connect site')).toMatchObject({
      error: true,
      annotations: { errorCode: code },
    });
    expect(children.map((c) => c.name)).not.toContain('connect remote');
  });

  it('never sends a password to X-Ray', () => {
    for (const url of [fx.remote.url, fx.site.url]) {
      const password = new URL(url).password;
      if (!password) continue;
      for (const datagram of daemon.datagrams) expect(datagram).not.toContain(password);
    }
  });
});

describe('tracingFromEnvironment', () => {
  it('does not trace, nor load the X-Ray SDK, when tracing is off or the function is not on Lambda', async () => {
    const { tracingFromEnvironment } = await import('../../functions/sync/handler');
    const { noTracing } = await import('../../lib/observability/run-tracing');
    expect(
      tracingFromEnvironment({
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
        POWERTOOLS_TRACE_ENABLED: 'false',
      }),
    ).toBe(noTracing);
    expect(tracingFromEnvironment({ POWERTOOLS_TRACE_ENABLED: 'true' })).toBe(noTracing);
    expect(tracingFromEnvironment({ AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x' }).middleware).toBeDefined();
  });
});
