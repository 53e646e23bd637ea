/**
 * The examples of https://hl7.org/fhir/R4/fhirpatch.html and the official FHIRPath Patch test cases
 * (FHIR/fhir-test-cases, r5/patch/fhir-path-tests.xml), in JSON, each under its name there.
 */
import type { Parameters, Patient, Resource } from '@medplum/fhirtypes';
import { applyFhirPathPatch } from '../../../src/fhir/patch';
import { add, del, fhirPatch, insert, move, parts, replace } from './builders';
import { failure, seen } from './helpers';

const identifiers = (...values: number[]): Patient['identifier'] =>
  values.map((n) => ({ system: 'http://example.org', value: `value ${n}` }));

const withIds = (...values: number[]): Patient => ({ resourceType: 'Patient', identifier: identifiers(...values) });

const contact: Patient = { resourceType: 'Patient', contact: [{ name: { text: 'a name' }, gender: 'male' }] };

const cases: [string, Resource, Parameters, Resource][] = [
  // The two examples on the spec page.
  [
    'spec page: add birthDate',
    { resourceType: 'Patient' },
    fhirPatch(add('Patient', 'birthDate', { valueDate: '1930-01-01' })),
    { resourceType: 'Patient', birthDate: '1930-01-01' },
  ],
  [
    'spec page: add an anonymous type (contact) as parts',
    { resourceType: 'Patient' },
    fhirPatch(add('Patient', 'contact', parts(['name', { valueHumanName: { text: 'a name' } }]))),
    { resourceType: 'Patient', contact: [{ name: { text: 'a name' } }] },
  ],
  // fhir-path-tests.xml
  [
    'Replace Primitive',
    { resourceType: 'Patient', birthDate: '1920-01-01' },
    fhirPatch(replace('Patient.birthDate', { valueDate: '1930-01-01' })),
    { resourceType: 'Patient', birthDate: '1930-01-01' },
  ],
  [
    'Delete Primitive',
    { resourceType: 'Patient', birthDate: '1920-01-01' },
    fhirPatch(del('Patient.birthDate')),
    { resourceType: 'Patient' },
  ],
  [
    'Add Primitive',
    { resourceType: 'Patient' },
    fhirPatch(add('Patient', 'birthDate', { valueDate: '1930-01-01' })),
    { resourceType: 'Patient', birthDate: '1930-01-01' },
  ],
  [
    'Replace Nested Primitive #1',
    contact,
    fhirPatch(replace('Patient.contact[0].gender', { valueCode: 'female' })),
    { resourceType: 'Patient', contact: [{ name: { text: 'a name' }, gender: 'female' }] },
  ],
  [
    'Replace Nested Primitive #2',
    contact,
    fhirPatch(replace('Patient.contact[0].name.text', { valueString: 'the name' })),
    { resourceType: 'Patient', contact: [{ name: { text: 'the name' }, gender: 'male' }] },
  ],
  [
    'Delete Nested Primitive #1',
    contact,
    fhirPatch(del('Patient.contact[0].gender')),
    { resourceType: 'Patient', contact: [{ name: { text: 'a name' } }] },
  ],
  [
    'Delete Nested Primitive #2 (the emptied name goes too)',
    contact,
    fhirPatch(del('Patient.contact[0].name.text')),
    { resourceType: 'Patient', contact: [{ gender: 'male' }] },
  ],
  [
    'Add Nested Primitive',
    { resourceType: 'Patient', contact: [{ name: { text: 'a name' } }] },
    fhirPatch(add('Patient.contact[0]', 'gender', { valueCode: 'male' })),
    contact,
  ],
  [
    'Add Complex',
    { resourceType: 'Patient' },
    fhirPatch(add('Patient', 'maritalStatus', { valueCodeableConcept: { text: 'married' } })),
    { resourceType: 'Patient', maritalStatus: { text: 'married' } },
  ],
  [
    'Replace Complex',
    { resourceType: 'Patient', maritalStatus: { id: '1', text: 'married' } },
    fhirPatch(replace('Patient.maritalStatus', { valueCodeableConcept: { id: '2', text: 'not married' } })),
    { resourceType: 'Patient', maritalStatus: { id: '2', text: 'not married' } },
  ],
  [
    'Delete Complex',
    { resourceType: 'Patient', maritalStatus: { text: 'married' } },
    fhirPatch(del('Patient.maritalStatus')),
    { resourceType: 'Patient' },
  ],
  [
    'Add Anonymous Type',
    { resourceType: 'Patient' },
    fhirPatch(add('Patient', 'contact', parts(['name', { valueHumanName: { text: 'a name' } }]))),
    { resourceType: 'Patient', contact: [{ name: { text: 'a name' } }] },
  ],
  [
    'Delete Anonymous Type',
    { resourceType: 'Patient', contact: [{ name: { text: 'a name' } }] },
    fhirPatch(del('Patient.contact[0]')),
    { resourceType: 'Patient' },
  ],
  [
    'List unchanged, contents changed',
    {
      resourceType: 'Patient',
      identifier: [
        { id: 'a', system: 'http://example.org', value: 'value 1' },
        { id: 'b', system: 'http://example.org', value: 'value 2' },
      ],
    },
    fhirPatch(
      replace('Patient.identifier[0].value', { valueString: 'value 2' }),
      replace('Patient.identifier[1].value', { valueString: 'value 1' }),
    ),
    {
      resourceType: 'Patient',
      identifier: [
        { id: 'a', system: 'http://example.org', value: 'value 2' },
        { id: 'b', system: 'http://example.org', value: 'value 1' },
      ],
    },
  ],
  [
    'Add to list',
    withIds(1, 2),
    fhirPatch(insert('Patient.identifier', 2, { valueIdentifier: identifiers(3)?.[0] })),
    withIds(1, 2, 3),
  ],
  [
    'Insert in list #1',
    withIds(1, 2),
    fhirPatch(insert('Patient.identifier', 1, { valueIdentifier: identifiers(3)?.[0] })),
    withIds(1, 3, 2),
  ],
  [
    'Insert in list #2',
    withIds(1, 2),
    fhirPatch(insert('Patient.identifier', 0, { valueIdentifier: identifiers(3)?.[0] })),
    withIds(3, 1, 2),
  ],
  ['Delete from List #1', withIds(1, 2, 3), fhirPatch(del('Patient.identifier[0]')), withIds(2, 3)],
  ['Delete from List #2', withIds(1, 2, 3), fhirPatch(del('Patient.identifier[1]')), withIds(1, 3)],
  ['Delete from List #3', withIds(1, 2, 3), fhirPatch(del('Patient.identifier[2]')), withIds(1, 2)],
  ['Reorder List #1', withIds(1, 2, 3, 4), fhirPatch(move('Patient.identifier', 3, 1)), withIds(1, 4, 2, 3)],
  ['Reorder List #2', withIds(1, 2, 3, 4), fhirPatch(move('Patient.identifier', 3, 0)), withIds(4, 1, 2, 3)],
  ['Reorder List #3', withIds(1, 2, 3, 4), fhirPatch(move('Patient.identifier', 3, 2)), withIds(1, 2, 4, 3)],
  ['Reorder List #4', withIds(1, 2, 3, 4), fhirPatch(move('Patient.identifier', 0, 3)), withIds(2, 3, 4, 1)],
  [
    'Reorder List #5',
    withIds(1, 2, 3, 4),
    fhirPatch(move('Patient.identifier', 1, 0), move('Patient.identifier', 2, 1)),
    withIds(2, 3, 1, 4),
  ],
  [
    'Reorder List #6',
    withIds(1, 2, 3, 4),
    fhirPatch(move('Patient.identifier', 3, 0), move('Patient.identifier', 3, 1), move('Patient.identifier', 3, 2)),
    withIds(4, 3, 2, 1),
  ],
  [
    'Operation on missing element #2',
    { resourceType: 'Patient' },
    fhirPatch(add('Patient', 'identifier', { valueIdentifier: identifiers(3)?.[0] })),
    withIds(3),
  ],
  [
    'Full Resource (narrative div and a name, on the spec example patient)',
    {
      resourceType: 'Patient',
      id: 'example',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><b>Chalmers</b></div>' },
      name: [
        { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
        { use: 'usual', given: ['Jim'] },
      ],
      birthDate: '1974-12-25',
      _birthDate: {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
            valueDateTime: '1974-12-25T14:35:45-05:00',
          },
        ],
      },
    } as Patient,
    fhirPatch(
      replace('Patient.text.div', { valueString: '<div xmlns="http://www.w3.org/1999/xhtml"><b>Chalmers1</b></div>' }),
      replace('Patient.name[0].family', { valueString: 'Chalmers1' }),
    ),
    {
      resourceType: 'Patient',
      id: 'example',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><b>Chalmers1</b></div>' },
      name: [
        { use: 'official', family: 'Chalmers1', given: ['Peter', 'James'] },
        { use: 'usual', given: ['Jim'] },
      ],
      birthDate: '1974-12-25',
      _birthDate: {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
            valueDateTime: '1974-12-25T14:35:45-05:00',
          },
        ],
      },
    } as Patient,
  ],
];

describe('FHIRPath Patch test cases', () => {
  test.each(cases)('%s', (_name, input, patch, output) => {
    expect(applyFhirPathPatch(input, patch)).toEqual(output);
  });

  test('Operation on missing element: add under a path that matches nothing is a 422', () => {
    const input: Patient = { resourceType: 'Patient', identifier: [{ use: 'official', value: '123' }] };
    const patch = fhirPatch(
      add("Patient.identifier.where(use = 'official').period", 'end', { valueDate: '2021-12-01' }),
    );
    expect(seen(failure(() => applyFhirPathPatch(input, patch)))).toEqual({
      status: 422,
      code: 'processing',
      diagnostics: `Parameters.parameter[0] (add 'Patient.identifier.where(use = 'official').period'): no element matches the path`,
    });
  });

  // "No Difference" applies an empty Parameters as a no-op; this server answers it with a 400 instead,
  // since a PATCH whose body names no operation is more likely a client error than an intent.
  test('No Difference: an empty Parameters is a 400 here', () => {
    const input: Patient = { resourceType: 'Patient', birthDate: '1920-01-01' };
    expect(seen(failure(() => applyFhirPathPatch(input, { resourceType: 'Parameters' })))).toMatchObject({
      status: 400,
      code: 'invalid',
    });
  });
});
