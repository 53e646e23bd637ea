/**
 * SMART scope grammar, v1 and v2 with granular constraints, and the token endpoint's intersection.
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 */
import { intersectScopes, parseScope, parseScopes, type ResourceScope } from '../../src/access/scopes';

const letters = (s: string) => [...((parseScope(s) as ResourceScope).permissions ?? [])].join('');

describe('parseScope', () => {
  test.each([
    ['patient/Observation.read', 'patient', 'Observation', 'rs', 1],
    ['user/*.write', 'user', '*', 'cud', 1],
    ['system/*.*', 'system', '*', 'cruds', 1],
    ['patient/*.read', 'patient', '*', 'rs', 1],
    ['patient/Appointment.rs', 'patient', 'Appointment', 'rs', 2],
    ['user/*.cruds', 'user', '*', 'cruds', 2],
    ['system/DocumentReference.c', 'system', 'DocumentReference', 'c', 2],
    ['patient/Observation.s', 'patient', 'Observation', 's', 2],
    ['user/Slot.cud', 'user', 'Slot', 'cud', 2],
  ])('%s', (raw, context, resourceType, perms, version) => {
    const s = parseScope(raw) as ResourceScope;
    expect(s).toMatchObject({ kind: 'resource', raw, context, resourceType, version, constraints: [] });
    expect(letters(raw)).toBe(perms);
  });

  test('v2 search-parameter constraints', () => {
    const s = parseScope('patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory');
    expect(s).toMatchObject({
      kind: 'resource',
      context: 'patient',
      resourceType: 'Observation',
      version: 2,
      constraints: [{ code: 'category', values: ['http://terminology.hl7.org/CodeSystem/observation-category|laboratory'] }],
    });
    expect(parseScope('patient/Observation.rs?category=a,b&status=final')).toMatchObject({
      constraints: [
        { code: 'category', values: ['a', 'b'] },
        { code: 'status', values: ['final'] },
      ],
    });
    expect(parseScope('patient/Observation.rs?code=http%3A%2F%2Floinc.org%7C1234-5')).toMatchObject({
      constraints: [{ code: 'code', values: ['http://loinc.org|1234-5'] }],
    });
  });

  test.each(['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'offline_access', 'online_access'])(
    'non-resource scope %s is recognized and grants no resource',
    (raw) => {
      expect(parseScope(raw)).toEqual({ kind: expect.stringMatching(/^(context|identity|refresh)$/), raw });
    },
  );

  test.each([
    'patient/Observation.sr', // v2 letters out of order
    'patient/Observation.rr',
    'patient/Observation.x',
    'patient/Observation.',
    'patient/Observation.read?category=x', // v1 has no constraints
    'patient/Observation.rs?category:not=x', // modifiers are not honoured
    'patient/Observation.rs?category=',
    'patient/observation.rs',
    'admin/*.*',
    'patient/*',
    'Observation.read',
    '',
  ])('%j is not a scope', (raw) => {
    expect(parseScope(raw)).toBeUndefined();
  });

  test('parseScopes splits on whitespace and drops unknown scopes', () => {
    expect(parseScopes('openid  patient/*.read\tbogus launch/patient').map((s) => s.raw)).toEqual([
      'openid',
      'patient/*.read',
      'launch/patient',
    ]);
  });
});

describe('intersectScopes', () => {
  test.each([
    // an allowed wildcard covers a requested specific scope
    ['patient/Observation.rs', 'patient/*.rs', ['patient/Observation.rs']],
    ['patient/Observation.read', 'patient/*.*', ['patient/Observation.read']],
    // a requested wildcard narrowed by allowed specifics yields those specifics
    ['system/*.*', 'system/DocumentReference.c system/Binary.c', ['system/DocumentReference.c', 'system/Binary.c']],
    ['patient/*.read', 'patient/Observation.rs patient/Appointment.r', ['patient/Observation.read', 'patient/Appointment.r']],
    // letters intersect
    ['user/*.cruds', 'user/*.rs', ['user/*.rs']],
    ['user/*.write', 'user/*.rs', []],
    ['user/*.*', 'user/*.read', ['user/*.read']],
    ['user/Observation.cruds', 'user/*.cud', ['user/Observation.cud']],
    // contexts never mix
    ['system/*.read', 'patient/*.*', []],
    ['patient/Observation.rs', 'user/*.*', []],
    // constraints of either side are kept
    [
      'patient/Observation.rs',
      'patient/Observation.rs?category=laboratory',
      ['patient/Observation.rs?category=laboratory'],
    ],
    [
      'patient/Observation.rs?category=laboratory',
      'patient/*.*',
      ['patient/Observation.rs?category=laboratory'],
    ],
    ['patient/*.read', 'patient/Observation.rs?status=final', ['patient/Observation.rs?status=final']],
    // non-resource scopes pass only when allowed verbatim
    ['openid fhirUser launch/patient offline_access', 'openid fhirUser launch/patient', ['openid', 'fhirUser', 'launch/patient']],
    ['bogus patient/*.read', 'bogus patient/*.read', ['patient/*.read']],
  ])('%s ∩ %s', (requested, allowed, granted) => {
    expect(intersectScopes(requested, allowed)).toEqual(granted);
  });

});
