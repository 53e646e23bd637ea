/**
 * JSON Patch on a FHIR resource. https://hl7.org/fhir/R4/http.html#patch —
 * https://www.rfc-editor.org/rfc/rfc6902 (operations section 4, examples appendix A).
 * A malformed patch document is a 400 (issue code invalid); a patch that does not fit the resource is
 * a 422 (issue code processing).
 */
import type { Patient } from '@medplum/fhirtypes';
import { applyJsonPatch } from '../../../src/fhir/patch';
import { deepFreeze, failure, seen } from './helpers';

function patient(): Patient {
  return {
    resourceType: 'Patient',
    id: 'p1',
    active: true,
    name: [
      { family: 'Chalmers', given: ['Peter', 'James'] },
      { use: 'usual', given: ['Jim'] },
    ],
    birthDate: '1974-12-25',
    identifier: [{ system: 'http://example.org/mrn', value: '12345' }],
  };
}

describe('JSON Patch operations (RFC 6902 section 4)', () => {
  test('add sets a new member, inserts into an array at an index, and appends with -', () => {
    const result = applyJsonPatch(patient(), [
      { op: 'add', path: '/gender', value: 'male' },
      { op: 'add', path: '/name/0/given/1', value: 'P.' },
      { op: 'add', path: '/name/-', value: { text: 'Jimmy' } },
    ]) as Patient;
    expect(result.gender).toBe('male');
    expect(result.name?.[0].given).toEqual(['Peter', 'P.', 'James']);
    expect(result.name?.[2]).toEqual({ text: 'Jimmy' });
  });

  test('remove deletes a member and an array item', () => {
    const result = applyJsonPatch(patient(), [
      { op: 'remove', path: '/birthDate' },
      { op: 'remove', path: '/name/1' },
    ]) as Patient;
    expect(result.birthDate).toBeUndefined();
    expect(result.name).toEqual([{ family: 'Chalmers', given: ['Peter', 'James'] }]);
  });

  test('replace changes a primitive and a whole object', () => {
    const result = applyJsonPatch(patient(), [
      { op: 'replace', path: '/birthDate', value: '1975-01-01' },
      { op: 'replace', path: '/identifier/0', value: { system: 'http://example.org/new', value: '1' } },
    ]) as Patient;
    expect(result.birthDate).toBe('1975-01-01');
    expect(result.identifier).toEqual([{ system: 'http://example.org/new', value: '1' }]);
  });

  test('move and copy', () => {
    const result = applyJsonPatch(patient(), [
      { op: 'move', path: '/name/0/given/0', from: '/name/0/given/1' },
      { op: 'copy', path: '/name/1/family', from: '/name/0/family' },
    ]) as Patient;
    expect(result.name?.[0].given).toEqual(['James', 'Peter']);
    expect(result.name?.[1].family).toBe('Chalmers');
  });

  test('a test that holds lets the patch go on (optimistic check before a change)', () => {
    const result = applyJsonPatch(patient(), [
      { op: 'test', path: '/id', value: 'p1' },
      { op: 'test', path: '/name/0', value: { family: 'Chalmers', given: ['Peter', 'James'] } },
      { op: 'replace', path: '/active', value: false },
    ]) as Patient;
    expect(result.active).toBe(false);
  });

  test('~1 and ~0 escape / and ~ in member names (RFC 6901)', () => {
    const input = { ...patient(), extension: [{ url: 'http://x', valueString: 'a/b~c' }] };
    const result = applyJsonPatch(input, [{ op: 'test', path: '/extension/0/valueString', value: 'a/b~c' }]);
    expect(result).toEqual(input);
  });

  test('an empty patch returns an equal copy', () => {
    const input = patient();
    const result = applyJsonPatch(input, []);
    expect(result).toEqual(input);
    expect(result).not.toBe(input);
  });
});

describe('JSON Patch does not touch its inputs', () => {
  test('the input resource is left as it was, even when the patch fails half-way', () => {
    const input = deepFreeze(patient());
    const result = applyJsonPatch(input, [{ op: 'add', path: '/name/0/given/-', value: 'X' }]) as Patient;
    expect(result.name?.[0].given).toEqual(['Peter', 'James', 'X']);
    expect(input.name?.[0].given).toEqual(['Peter', 'James']);
    const err = failure(() =>
      applyJsonPatch(input, [
        { op: 'replace', path: '/active', value: false },
        { op: 'test', path: '/birthDate', value: '2000-01-01' },
      ]),
    );
    expect(err.status).toBe(422);
    expect(input.active).toBe(true);
  });

  test('the result shares no objects with the patch', () => {
    const value = { system: 'http://example.org/x', value: '9' };
    const result = applyJsonPatch(patient(), [{ op: 'add', path: '/identifier/-', value }]) as Patient;
    (result.identifier?.[1] as { value: string }).value = 'changed';
    expect(value.value).toBe('9');
  });
});

describe('A patch that does not fit the resource: 422 processing', () => {
  test.each([
    ['a failed test', [{ op: 'test', path: '/birthDate', value: '2000-01-01' }]],
    ['a test of a missing member', [{ op: 'test', path: '/gender', value: 'male' }]],
    ['remove of a missing member', [{ op: 'remove', path: '/gender' }]],
    ['replace of a missing member', [{ op: 'replace', path: '/gender', value: 'male' }]],
    ['remove past the end of an array', [{ op: 'remove', path: '/name/5' }]],
    ['add past the end of an array', [{ op: 'add', path: '/name/0/given/3', value: 'X' }]],
    ['add under a missing parent', [{ op: 'add', path: '/contact/0/gender', value: 'male' }]],
    ['a path through a primitive', [{ op: 'replace', path: '/birthDate/0', value: 'x' }]],
    ['a non-numeric array index', [{ op: 'replace', path: '/name/first', value: {} }]],
    ['move from a missing member', [{ op: 'move', path: '/gender', from: '/deceasedBoolean' }]],
    ['copy from a missing member', [{ op: 'copy', path: '/gender', from: '/name/4' }]],
  ])('%s', (_what, ops) => {
    expect(seen(failure(() => applyJsonPatch(patient(), ops)))).toMatchObject({ status: 422, code: 'processing' });
  });

  test('the diagnostics name the operation and do not echo the resource', () => {
    const err = failure(() =>
      applyJsonPatch(patient(), [
        { op: 'add', path: '/gender', value: 'male' },
        { op: 'test', path: '/birthDate', value: '2000-01-01' },
      ]),
    );
    expect(seen(err).diagnostics).toBe('Operation 1 (test /birthDate): Test operation failed');
    expect(seen(err).diagnostics).not.toContain('Chalmers');
  });
});

describe('A malformed patch document: 400 invalid', () => {
  test.each([
    ['an object instead of an array', { op: 'add', path: '/gender', value: 'male' }],
    ['a Parameters resource', { resourceType: 'Parameters', parameter: [] }],
    ['an operation that is not an object', ['add']],
    ['an unknown op', [{ op: 'upsert', path: '/gender', value: 'male' }]],
    ['a missing op', [{ path: '/gender', value: 'male' }]],
    ['a missing path', [{ op: 'remove' }]],
    ['a path that is not a string', [{ op: 'remove', path: 3 }]],
    ['a path without a leading /', [{ op: 'remove', path: 'gender' }]],
    ['add without a value', [{ op: 'add', path: '/gender' }]],
    ['replace without a value', [{ op: 'replace', path: '/gender' }]],
    ['test without a value', [{ op: 'test', path: '/gender' }]],
    ['move without from', [{ op: 'move', path: '/gender' }]],
    ['copy with a from that is not a pointer', [{ op: 'copy', path: '/gender', from: 'birthDate' }]],
    ['move into its own child', [{ op: 'move', path: '/name/0/x', from: '/name/0' }]],
    ['a __proto__ path', [{ op: 'add', path: '/__proto__/polluted', value: true }]],
    ['an array index with a leading zero', [{ op: 'replace', path: '/name/01', value: { family: 'x' } }]],
    ['a from index with a leading zero', [{ op: 'copy', path: '/name/-', from: '/name/00' }]],
  ])('%s', (_what, patch) => {
    expect(seen(failure(() => applyJsonPatch(patient(), patch)))).toMatchObject({ status: 400, code: 'invalid' });
  });

  test('a malformed operation anywhere fails the whole patch as a 400, before any 422', () => {
    const err = failure(() =>
      applyJsonPatch(patient(), [
        { op: 'test', path: '/birthDate', value: '2000-01-01' },
        { op: 'frobnicate', path: '/gender' },
      ]),
    );
    expect(seen(err)).toMatchObject({ status: 400, code: 'invalid' });
    expect(seen(err).diagnostics).toMatch(/^Operation 1/);
  });
});

describe('resourceType and id cannot be patched: 400', () => {
  test.each([
    ['replace id', [{ op: 'replace', path: '/id', value: 'p2' }]],
    ['remove id', [{ op: 'remove', path: '/id' }]],
    ['add id', [{ op: 'add', path: '/id', value: 'p2' }]],
    ['replace resourceType', [{ op: 'replace', path: '/resourceType', value: 'Practitioner' }]],
    ['move id away', [{ op: 'move', path: '/identifier/0/value', from: '/id' }]],
    ['copy onto id', [{ op: 'copy', path: '/id', from: '/identifier/0/value' }]],
    ['replace the whole resource', [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'p1' } }]],
    ['remove the whole resource', [{ op: 'remove', path: '' }]],
  ])('%s', (_what, ops) => {
    expect(seen(failure(() => applyJsonPatch(patient(), ops)))).toMatchObject({ status: 400, code: 'invalid' });
  });

  test('test and copy may read the id', () => {
    const result = applyJsonPatch(patient(), [
      { op: 'test', path: '/id', value: 'p1' },
      { op: 'copy', path: '/identifier/0/value', from: '/id' },
    ]) as Patient;
    expect(result.id).toBe('p1');
    expect(result.identifier?.[0].value).toBe('p1');
  });

  test('a contained resource id may change', () => {
    const input: Patient = { ...patient(), contained: [{ resourceType: 'Organization', id: 'o1' }] };
    const result = applyJsonPatch(input, [{ op: 'replace', path: '/contained/0/id', value: 'o2' }]) as Patient;
    expect(result.contained?.[0].id).toBe('o2');
  });
});
