import fc from 'fast-check';
import { EntityRegistry, meter, register } from '../../lib/entities';
import { parseSiteRequest, SITE_ID_PATTERN } from '../../lib/event';

function rejection(event: unknown): string {
  try {
    parseSiteRequest(event);
  } catch (error) {
    expect(error).toMatchObject({ code: 'BAD_EVENT', name: 'BadEventError' });
    return (error as Error).message;
  }
  throw new Error('expected BAD_EVENT');
}

describe('parseSiteRequest', () => {
  it('reads the request of a schedule or a manual invoke, with defaults', () => {
    expect(parseSiteRequest({ siteId: 'plant-7' })).toEqual({
      action: 'sync',
      siteId: 'plant-7',
      dryRun: false,
      allowMassDelete: false,
      allowTenantChange: false,
    });
    expect(
      parseSiteRequest({
        siteId: 'A_1',
        entities: ['device_register', 'meter'],
        dryRun: true,
        allowMassDelete: true,
        allowTenantChange: true,
      }),
    ).toEqual({
      action: 'sync',
      siteId: 'A_1',
      entities: ['device_register', 'meter'],
      dryRun: true,
      allowMassDelete: true,
      allowTenantChange: true,
    });
    expect(parseSiteRequest({ siteId: 'plant-7', action: 'sync', dryRun: true })).toMatchObject({
      action: 'sync',
      dryRun: true,
    });
  });

  it('reads a migrate request, which takes nothing but the site and allowTenantChange', () => {
    expect(parseSiteRequest({ siteId: 'plant-7', action: 'migrate' })).toEqual({
      action: 'migrate',
      siteId: 'plant-7',
      allowTenantChange: false,
    });
    expect(parseSiteRequest({ siteId: 'plant-7', action: 'migrate', allowTenantChange: true })).toEqual({
      action: 'migrate',
      siteId: 'plant-7',
      allowTenantChange: true,
    });
    expect(rejection({ siteId: 'x', action: 'migrate', allowTenantChange: 'yes' })).toBe(
      'bad event: allowTenantChange must be true or false',
    );
    expect(rejection({ siteId: 'x', action: 'migrate', entities: ['meter'] })).toBe(
      'bad event: entities does not apply to action "migrate"',
    );
    expect(rejection({ siteId: 'x', action: 'migrate', dryRun: false })).toBe(
      'bad event: dryRun does not apply to action "migrate"',
    );
    expect(rejection({ siteId: 'x', action: 'vacuum' })).toBe(
      'bad event: action must be one of "sync", "migrate", "plan", "check", not "vacuum"',
    );
    expect(rejection({ siteId: 'x', action: 1 })).toBe(
      'bad event: action must be one of "sync", "migrate", "plan", "check"',
    );
  });

  it.each([
    ['entities', ['meter']],
    ['entities', []],
    ['dryRun', true],
    ['dryRun', false],
    ['allowMassDelete', true],
    ['allowMassDelete', false],
  ])('refuses %s (%j) in a migrate request, naming it, whatever its value', (field, value) => {
    expect(rejection({ siteId: 'x', action: 'migrate', [field]: value })).toBe(
      `bad event: ${field} does not apply to action "migrate"`,
    );
  });

  it('names an action it does not know, in any case or type', () => {
    expect(rejection({ siteId: 'x', action: 'Migrate' })).toBe(
      'bad event: action must be one of "sync", "migrate", "plan", "check", not "Migrate"',
    );
    expect(rejection({ siteId: 'x', action: '' })).toBe(
      'bad event: action must be one of "sync", "migrate", "plan", "check", not ""',
    );
    expect(rejection({ siteId: 'x', action: null })).toBe(
      'bad event: action must be one of "sync", "migrate", "plan", "check"',
    );
    expect(rejection({ siteId: 'x', action: ['migrate'] })).toBe(
      'bad event: action must be one of "sync", "migrate", "plan", "check"',
    );
  });

  it('refuses an unknown field in a migrate request, as in a sync one', () => {
    expect(rejection({ siteId: 'x', action: 'migrate', force: true })).toBe(
      'bad event: unknown field "force" (allowed: siteId, action, entities, dryRun, allowMassDelete, allowTenantChange, maxChanges)',
    );
    expect(
      rejection({ 'detail-type': 'x', detail: { siteId: 'x', action: 'migrate', Action: 'sync' } }),
    ).toBe(
      'bad event: unknown field "Action" in detail (allowed: siteId, action, entities, dryRun, allowMassDelete, allowTenantChange, maxChanges)',
    );
  });

  it('reads a migrate request from the detail of an EventBridge rule event', () => {
    expect(
      parseSiteRequest({ 'detail-type': 'migrate', detail: { siteId: 'plant-7', action: 'migrate' } }),
    ).toEqual({ action: 'migrate', siteId: 'plant-7', allowTenantChange: false });
    expect(() =>
      parseSiteRequest({
        'detail-type': 'migrate',
        detail: { siteId: 'plant-7', action: 'migrate', dryRun: true },
      }),
    ).toThrow('dryRun does not apply to action "migrate"');
  });

  it('reads the request from the detail of an EventBridge rule event', () => {
    const event = {
      version: '0',
      id: '1',
      'detail-type': 'manual sync',
      source: 'ops',
      account: '123456789012',
      time: '2025-01-01T00:00:00Z',
      region: 'eu-west-1',
      resources: [],
      detail: { siteId: 'plant-7', dryRun: true },
    };
    expect(parseSiteRequest(event)).toEqual({
      action: 'sync',
      siteId: 'plant-7',
      dryRun: true,
      allowMassDelete: false,
      allowTenantChange: false,
    });
  });

  it('names the first problem in one line', () => {
    expect(rejection({ siteId: 'x', dryrun: true })).toBe(
      'bad event: unknown field "dryrun" (allowed: siteId, action, entities, dryRun, allowMassDelete, allowTenantChange, maxChanges)',
    );
    expect(rejection({ siteId: 'x', entities: ['meters'] })).toBe(
      'bad event: unknown entity "meters" (known: meter, register, device_register)',
    );
    expect(rejection({})).toBe('bad event: siteId is required');
    expect(rejection({ [`a\n${'b'.repeat(100)}`]: 1, siteId: 'x' })).not.toMatch(/\n/);
  });

  it('checks entity names against the registry it is given', () => {
    const registry = new EntityRegistry([meter, register]);
    expect(() => parseSiteRequest({ siteId: 'x', entities: ['device_register'] }, registry)).toThrow(
      'unknown entity "device_register" (known: meter, register)',
    );
  });

  it('accepts exactly the site ids of the pattern (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (siteId) => {
        let accepted = true;
        try {
          parseSiteRequest({ siteId });
        } catch {
          accepted = false;
        }
        expect(accepted).toBe(SITE_ID_PATTERN.test(siteId));
      }),
      { numRuns: 500 },
    );
  });

  describe('plan and check', () => {
    it('reads a plan with its defaults, and with every field it takes', () => {
      expect(parseSiteRequest({ siteId: 'plant-7', action: 'plan' })).toEqual({
        action: 'plan',
        siteId: 'plant-7',
        allowMassDelete: false,
        allowTenantChange: false,
        maxChanges: 100,
      });
      expect(
        parseSiteRequest({
          siteId: 'plant-7',
          action: 'plan',
          entities: ['register'],
          allowMassDelete: true,
          allowTenantChange: true,
          maxChanges: 100_000,
        }),
      ).toEqual({
        action: 'plan',
        siteId: 'plant-7',
        entities: ['register'],
        allowMassDelete: true,
        allowTenantChange: true,
        maxChanges: 100_000,
      });
    });

    it.each([0, -1, 100_001, 1.5, '10', null, true])('refuses maxChanges %j', (maxChanges) => {
      expect(() => parseSiteRequest({ siteId: 'plant-7', action: 'plan', maxChanges })).toThrow(
        /^bad event: maxChanges must be a whole number from 1 to 100000/,
      );
    });

    it('refuses dryRun in a plan (always one) and maxChanges outside a plan', () => {
      expect(() => parseSiteRequest({ siteId: 'plant-7', action: 'plan', dryRun: true })).toThrow(
        'bad event: dryRun does not apply to action "plan"',
      );
      expect(() => parseSiteRequest({ siteId: 'plant-7', maxChanges: 5 })).toThrow(
        'bad event: maxChanges does not apply to action "sync"',
      );
    });

    it('reads a check, which takes the site id alone', () => {
      expect(parseSiteRequest({ siteId: 'plant-7', action: 'check' })).toEqual({
        action: 'check',
        siteId: 'plant-7',
      });
      for (const field of ['entities', 'dryRun', 'allowMassDelete', 'maxChanges'])
        expect(() => parseSiteRequest({ siteId: 'plant-7', action: 'check', [field]: ['meter'] })).toThrow(
          `bad event: ${field} does not apply to action "check"`,
        );
    });
  });
});
