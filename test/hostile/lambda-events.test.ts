/**
 * Hostile input: every field of the Lambda event fuzzed with fast-check (types, sizes, unknown
 * fields, site ids with path and SQL characters, EventBridge envelopes). A bad event is rejected
 * with BAD_EVENT, in one short line, before any credentials are read or any connection is opened;
 * a good one reaches the credentials source with its site id. The oracle is the event contract of
 * DESIGN §4 restated here, not the validator's code.
 */
import '../functions/lambda-environment';
import fc from 'fast-check';
import { Client } from 'pg';
import { createSyncHandler } from '../../functions/sync/handler';
import { type CredentialsSource, LocalCredentials, SecretUnavailableError } from '../../lib/credentials';
import { defaultRegistry } from '../../lib/entities';
import { lambdaContext } from '../functions/lambda-context';
import { createLoginRole, type LoginRole } from '../functions/login-role';
import { withLogin } from '../harness/fault-scenario';
import { SecretScan } from '../harness/secret-scan';
import { createSyncFixture, type SyncFixture } from '../harness/sync-fixture';
import { serverUrl } from '../harness/test-database';

const NAMES = defaultRegistry.names;
const REQUEST_FIELDS = ['siteId', 'entities', 'dryRun', 'allowMassDelete'];
const ENVELOPE_FIELDS = [
  'version',
  'id',
  'detail-type',
  'source',
  'account',
  'time',
  'region',
  'resources',
  'detail',
];

// ---- the contract (DESIGN §4), as an oracle ----------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The site id the event asks for, or undefined when the contract says the event is bad. */
function contractSiteId(event: unknown): string | undefined {
  if (!isPlainObject(event)) return undefined;
  let request = event;
  if (Object.hasOwn(event, 'detail') && Object.hasOwn(event, 'detail-type')) {
    if (!Object.keys(event).every((k) => ENVELOPE_FIELDS.includes(k))) return undefined;
    if (!isPlainObject(event.detail)) return undefined;
    request = event.detail;
  }
  if (!Object.keys(request).every((k) => REQUEST_FIELDS.includes(k))) return undefined;
  const { siteId, entities, dryRun, allowMassDelete } = request;
  if (typeof siteId !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(siteId)) return undefined;
  if (entities !== undefined) {
    if (!Array.isArray(entities) || entities.length === 0) return undefined;
    if (!entities.every((e) => typeof e === 'string' && NAMES.includes(e))) return undefined;
    if (new Set(entities).size !== entities.length) return undefined;
  }
  for (const flag of [dryRun, allowMassDelete])
    if (flag !== undefined && typeof flag !== 'boolean') return undefined;
  return siteId;
}

// ---- generators -----------------------------------------------------------------------------

/** Site ids an attacker or a typo would send: paths, SQL, control and wide characters, sizes. */
const hostileSiteId = fc.oneof(
  fc.constantFrom(
    '../plant-1',
    'plant/../../etc/passwd',
    "plant'; DROP TABLE meter; --",
    'plant" OR "1"="1',
    'plant-1\n{"level":"ERROR"}',
    'plant-1\0',
    '-plant',
    '_plant',
    'plant 1',
    'plant%2F1',
    'plänt',
    '🔌',
    '',
    'a'.repeat(64),
    'a'.repeat(1_000_000),
  ),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/),
      fc.constantFrom('/', ';', "'", ' ', '.', '\\', '\n'),
    )
    .map(([id, c]) => `${id}${c}`),
);
const goodSiteId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/);
const notAString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string()),
  fc.object(),
);
const notABoolean = fc.oneof(fc.constantFrom('true', 'false', 0, 1, null, [], {}), fc.string(), fc.integer());
const goodEntities = fc.subarray(NAMES, { minLength: 1 });
const badEntities = fc.oneof(
  fc.constant([]),
  fc.constant(NAMES.join(',')),
  fc.array(fc.string(), { minLength: 1, maxLength: 5 }).filter((a) => a.some((e) => !NAMES.includes(e))),
  fc.constantFrom(['meter', 'meter'], ['meter; DROP TABLE register'], ['METER'], [' meter'], [null], [1]),
  fc.constant(Array.from({ length: 100_000 }, (_, i) => NAMES[i % NAMES.length]!)),
  notAString.filter((v) => !Array.isArray(v)),
);
const unknownField = fc
  .string({ minLength: 1, maxLength: 30 })
  .filter((k) => !REQUEST_FIELDS.includes(k) && k !== '__proto__');

/** A request whose fields are each good or bad, sometimes with a field that does not exist. */
const request = fc.record(
  {
    siteId: fc.oneof(goodSiteId, goodSiteId, hostileSiteId, notAString),
    entities: fc.oneof(goodEntities, badEntities),
    dryRun: fc.oneof(fc.boolean(), notABoolean),
    allowMassDelete: fc.oneof(fc.boolean(), notABoolean),
  },
  { requiredKeys: [] },
);
/** A request the contract accepts, so that the fuzz also proves good events get through. */
const goodRequest = fc.record(
  { siteId: goodSiteId, entities: goodEntities, dryRun: fc.boolean(), allowMassDelete: fc.boolean() },
  { requiredKeys: ['siteId'] },
);
const withUnknownField = fc
  .tuple(request, unknownField, fc.anything())
  .map(([r, key, value]) => ({ ...r, [key]: value }));
const envelope = fc
  .tuple(
    fc.oneof(goodRequest, request, withUnknownField, notAString),
    fc.option(unknownField, { nil: undefined }),
  )
  .map(([detail, extra]) => ({
    version: '0',
    'detail-type': 'meter-sync run',
    source: 'ops',
    detail,
    ...(extra !== undefined && !ENVELOPE_FIELDS.includes(extra) ? { [extra]: 'x' } : {}),
  }));
const anyEvent = fc.oneof(
  goodRequest,
  request,
  request,
  withUnknownField,
  envelope,
  fc.anything(),
  fc.constantFrom(
    null,
    undefined,
    'plant-1',
    42,
    [{ siteId: 'plant-1' }],
    Buffer.from('{"siteId":"plant-1"}'),
  ),
);

describe('hostile input: Lambda events (fuzzed)', () => {
  let fx: SyncFixture;
  let role: LoginRole;
  let admin: Client;
  const scan = new SecretScan();
  const loads: string[] = [];
  let handler: ReturnType<typeof createSyncHandler>;
  let sessionsAtStart: number[];

  beforeAll(async () => {
    fx = await createSyncFixture(1);
    role = await createLoginRole([fx.remote.name, fx.site.name]);
    scan.secret(role.password);
    admin = new Client({ connectionString: serverUrl() });
    await admin.connect();
    // A credentials source that would reach the real databases, wrapped to count its loads. A
    // good event stops there (its site is unknown), so the fuzz never runs a sync.
    const local = new LocalCredentials({
      remote: withLogin(fx.remote.url, role),
      sites: { 'known-site': { url: withLogin(fx.site.url, role), tenantId: 1 } },
    });
    const spy: CredentialsSource = {
      load(siteId) {
        loads.push(siteId!);
        return local.load(siteId);
      },
      loadForMigration(siteId) {
        loads.push(siteId!);
        return local.loadForMigration(siteId);
      },
    };
    handler = createSyncHandler({ credentials: spy });
    sessionsAtStart = await settledSessions();
  });
  afterAll(async () => {
    await admin.end();
    await fx.close();
    await role.drop();
  });

  /**
   * Sessions ever opened to the remote and the site database (pg_stat_database.sessions), read until
   * two readings agree: a session's end reaches the statistics a moment after it closes.
   */
  async function settledSessions(): Promise<number[]> {
    const read = async () => {
      await admin.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await admin.query<{ sessions: string }>(
        'SELECT sessions FROM pg_stat_database WHERE datname = ANY($1) ORDER BY datname',
        [[fx.remote.name, fx.site.name]],
      );
      return rows.map((r) => Number(r.sessions));
    };
    let last = await read();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const now = await read();
      if (now.join() === last.join()) return now;
      last = now;
    }
  }

  async function invoke(event: unknown): Promise<{ code?: string; message: string } | undefined> {
    const { error } = await scan.capture(() => handler(event, lambdaContext()));
    return error as { code?: string; message: string } | undefined;
  }

  it('rejects every bad event with BAD_EVENT, in one short line, before reading credentials (property)', async () => {
    let bad = 0;
    let good = 0;
    await fc.assert(
      fc.asyncProperty(anyEvent, async (event) => {
        // Arrange
        const siteId = contractSiteId(event);
        const loadsBefore = loads.length;

        // Act
        const error = await invoke(event);

        // Assert
        if (siteId === undefined) {
          bad += 1;
          expect(error).toMatchObject({ code: 'BAD_EVENT', name: 'BadEventError' });
          expect(error!.message).not.toMatch(/[\n\r\0]/);
          expect(error!.message.length).toBeLessThan(300);
          expect(loads.length).toBe(loadsBefore);
        } else {
          good += 1;
          expect(error).toBeInstanceOf(SecretUnavailableError);
          expect(loads.slice(loadsBefore)).toEqual([siteId]);
        }
      }),
      { numRuns: 600 },
    );
    // Both sides of the contract were exercised.
    expect(bad).toBeGreaterThan(300);
    expect(good).toBeGreaterThan(20);
  });

  it.each(REQUEST_FIELDS)(
    'a bad %s alone is enough to reject an otherwise good event (property)',
    async (field) => {
      const badValue = {
        siteId: fc.oneof(hostileSiteId, notAString),
        entities: badEntities,
        dryRun: notABoolean,
        allowMassDelete: notABoolean,
      }[field]!;
      await fc.assert(
        fc.asyncProperty(badValue, fc.boolean(), async (value, wrapped) => {
          const detail = { siteId: 'known-site', entities: ['meter'], dryRun: true, [field]: value };
          const event = wrapped ? { 'detail-type': 'run', source: 'ops', detail } : detail;
          fc.pre(contractSiteId(event) === undefined);
          const loadsBefore = loads.length;
          const error = await invoke(event);
          expect(error).toMatchObject({ code: 'BAD_EVENT' });
          expect(loads.length).toBe(loadsBefore);
        }),
        { numRuns: 100 },
      );
    },
  );

  it('opened no connection to either database for any of them, and wrote no password anywhere', async () => {
    // The fuzz above ran first (jest runs a file's tests in order): the databases saw no new session.
    expect(await settledSessions()).toEqual(sessionsAtStart);
    // A good event for a site the source knows does connect, to both: the count would have seen it.
    const { value } = await scan.capture(() =>
      handler({ siteId: 'known-site', dryRun: true }, lambdaContext()),
    );
    expect(value).toMatchObject({ status: 'ok', dryRun: true });
    const after = await settledSessions();
    expect(after.map((n, i) => n - sessionsAtStart[i]!)).toEqual([1, 1]);
    expect(scan.counts.produced).toBeGreaterThan(1000);
    expect(scan.leaks()).toEqual([]);
  });
});
