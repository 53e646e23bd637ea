/**
 * FHIRPath Patch beyond the spec's own cases: each operation with where()/indexer paths, choice
 * elements, parts, contained resources, and every failure with the status a client gets.
 * https://hl7.org/fhir/R4/fhirpatch.html — 400 invalid for a malformed patch, 422 processing for one
 * that does not fit the resource.
 */
import type { MedicationRequest, Observation, Parameters, Patient } from '@medplum/fhirtypes';
import { applyFhirPathPatch } from '../../../src/fhir/patch';
import { add, del, fhirPatch, insert, move, operation, parts, replace } from './builders';
import { deepFreeze, failure, seen } from './helpers';

function patient(): Patient {
  return {
    resourceType: 'Patient',
    id: 'p1',
    identifier: [
      { system: 'http://example.org/mrn', value: '12345' },
      { system: 'http://example.org/ssn', value: '999' },
    ],
    name: [
      { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
      { use: 'usual', given: ['Jim'] },
    ],
    gender: 'male',
    birthDate: '1974-12-25',
  };
}

const apply = (patch: Parameters, resource: Patient = patient()): Patient =>
  applyFhirPathPatch(resource, patch) as Patient;
const status = (patch: Parameters, resource: Patient | Observation = patient()) =>
  seen(failure(() => applyFhirPathPatch(resource, patch)));

describe('add', () => {
  test('appends to a repeating element, creating the list when absent', () => {
    const result = apply(
      fhirPatch(
        add('Patient.name[0]', 'given', { valueString: 'P.' }),
        add('Patient', 'telecom', { valueContactPoint: { system: 'phone', value: '555' } }),
      ),
    );
    expect(result.name?.[0].given).toEqual(['Peter', 'James', 'P.']);
    expect(result.telecom).toEqual([{ system: 'phone', value: '555' }]);
  });

  test('sets a single element that has no value, under a where() path', () => {
    const result = apply(
      fhirPatch(add("Patient.identifier.where(system='http://example.org/ssn')", 'use', { valueCode: 'secondary' })),
    );
    expect(result.identifier?.[1]).toEqual({ system: 'http://example.org/ssn', value: '999', use: 'secondary' });
  });

  test('a single element that already has a value: 422', () => {
    expect(status(fhirPatch(add('Patient', 'birthDate', { valueDate: '1930-01-01' })))).toMatchObject({
      status: 422,
      code: 'processing',
    });
  });

  test('a choice element: the key takes the value type; another type already present: 422', () => {
    const result = apply(fhirPatch(add('Patient', 'deceased', { valueDateTime: '2020-01-01' })));
    expect(result.deceasedDateTime).toBe('2020-01-01');
    const deceased = { ...patient(), deceasedBoolean: false };
    expect(status(fhirPatch(add('Patient', 'deceased', { valueDateTime: '2020-01-01' })), deceased).status).toBe(422);
    expect(
      status(fhirPatch(add('Patient', 'deceasedDateTime', { valueDateTime: '2020-01-01' })), deceased).status,
    ).toBe(422);
  });

  test('a backbone element and nested backbone elements as parts (Observation.component, Timing.repeat)', () => {
    const obs: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'BP' } };
    const result = applyFhirPathPatch(
      obs,
      fhirPatch(
        add(
          'Observation',
          'component',
          parts(['code', { valueCodeableConcept: { text: 'systolic' } }], ['value', { valueQuantity: { value: 120 } }]),
        ),
      ),
    ) as Observation;
    expect(result.component).toEqual([{ code: { text: 'systolic' }, valueQuantity: { value: 120 } }]);

    const rx: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/p1' },
      dosageInstruction: [{ text: 'daily', timing: { code: { text: 'QD' } } }],
    };
    const timed = applyFhirPathPatch(
      rx,
      fhirPatch(
        add(
          'MedicationRequest.dosageInstruction[0].timing',
          'repeat',
          parts(
            ['frequency', { valueInteger: 1 }],
            ['period', { valueDecimal: 1 }],
            ['periodUnit', { valueCode: 'd' }],
          ),
        ),
      ),
    ) as MedicationRequest;
    expect(timed.dosageInstruction?.[0].timing).toEqual({
      code: { text: 'QD' },
      repeat: { frequency: 1, period: 1, periodUnit: 'd' },
    });
  });

  test('an extension as parts, repeated parts for a repeating element', () => {
    const result = apply(
      fhirPatch(
        add(
          'Patient',
          'extension',
          parts(['url', { valueUri: 'http://example.org/ext' }], ['value', { valueString: 'x' }]),
        ),
        add('Patient', 'name', parts(['given', { valueString: 'A' }], ['given', { valueString: 'B' }])),
      ),
    );
    expect(result.extension).toEqual([{ url: 'http://example.org/ext', valueString: 'x' }]);
    expect(result.name?.[2]).toEqual({ given: ['A', 'B'] });
  });

  test('a contained resource given as resource', () => {
    const result = apply(
      fhirPatch(add('Patient', 'contained', { resource: { resourceType: 'Organization', id: 'o1' } })),
    );
    expect(result.contained).toEqual([{ resourceType: 'Organization', id: 'o1' }]);
  });

  test.each([
    ['the path matches nothing', add('Patient.contact[0]', 'gender', { valueCode: 'male' })],
    ['the path matches several elements', add('Patient.name', 'text', { valueString: 'x' })],
    ['the type has no such element', add('Patient', 'nickname', { valueString: 'x' })],
    ['a primitive, for an element primitives lack', add('Patient.birthDate', 'nickname', { valueString: 'x' })],
    ['the value has the wrong type', add('Patient', 'maritalStatus', { valueCoding: { code: 'M' } })],
    ['a primitive value for a complex element', add('Patient', 'maritalStatus', { valueString: 'M' })],
    ['parts naming an unknown element', add('Patient', 'contact', parts(['nickname', { valueString: 'x' }]))],
    ['parts for a primitive element', add('Patient.name[1]', 'family', parts(['text', { valueString: 'x' }]))],
    [
      'a resource for a datatype element',
      add('Patient', 'maritalStatus', { resource: { resourceType: 'Basic', code: {} } }),
    ],
    ['a datatype for a resource element', add('Patient', 'contained', { valueString: 'x' })],
  ])('%s: 422', (_what, op) => {
    expect(status(fhirPatch(op))).toMatchObject({ status: 422, code: 'processing' });
  });
});

describe('insert', () => {
  test('at 0, in the middle and at the end of a primitive list', () => {
    const result = apply(
      fhirPatch(
        insert('Patient.name[0].given', 0, { valueString: 'A' }),
        insert('Patient.name[0].given', 2, { valueString: 'B' }),
        insert('Patient.name[0].given', 4, { valueString: 'C' }),
      ),
    );
    expect(result.name?.[0].given).toEqual(['A', 'Peter', 'B', 'James', 'C']);
  });

  test('into an absent list at 0', () => {
    const result = apply(fhirPatch(insert('Patient.telecom', 0, { valueContactPoint: { value: '555' } })));
    expect(result.telecom).toEqual([{ value: '555' }]);
  });

  test('keeps a primitive list and its _ extensions aligned', () => {
    const input = {
      ...patient(),
      name: [{ given: ['Peter', 'James'], _given: [null, { id: 'j' }] }],
    } as unknown as Patient;
    const result = apply(fhirPatch(insert('Patient.name[0].given', 0, { valueString: 'A' })), input);
    expect(result.name?.[0]).toEqual({ given: ['A', 'Peter', 'James'], _given: [null, null, { id: 'j' }] });
  });

  test.each([
    ['past the end', insert('Patient.identifier', 3, { valueIdentifier: { value: 'x' } })],
    ['a negative index', insert('Patient.identifier', -1, { valueIdentifier: { value: 'x' } })],
    ['a single element', insert('Patient.birthDate', 0, { valueDate: '2000-01-01' })],
    ['a list whose owner matches nothing', insert('Patient.contact[0].telecom', 0, { valueContactPoint: {} })],
    ['a list whose owner matches several', insert('Patient.name.given', 0, { valueString: 'x' })],
    ['a value of the wrong type', insert('Patient.identifier', 0, { valueHumanName: { text: 'x' } })],
  ])('%s: 422', (_what, op) => {
    expect(status(fhirPatch(op))).toMatchObject({ status: 422, code: 'processing' });
  });

  test('a path that does not end with an element name: 400', () => {
    const op = insert("Patient.identifier.where(system='x')", 0, { valueIdentifier: {} });
    expect(status(fhirPatch(op))).toMatchObject({ status: 400, code: 'invalid' });
  });
});

describe('delete', () => {
  test('a list element selected by where(), and the list when it empties', () => {
    const result = apply(
      fhirPatch(
        del("Patient.identifier.where(system='http://example.org/mrn')"),
        del("Patient.identifier.where(system='http://example.org/ssn')"),
      ),
    );
    expect(result.identifier).toBeUndefined();
  });

  test('a primitive list element by index, with its _ extension entry', () => {
    const input = {
      ...patient(),
      name: [{ given: ['Peter', 'James'], _given: [null, { id: 'j' }] }],
    } as unknown as Patient;
    const result = apply(fhirPatch(del('Patient.name[0].given[1]')), input);
    expect(result.name).toEqual([{ given: ['Peter'] }]);
  });

  test('a primitive list element selected by value with where($this = ...)', () => {
    const result = apply(fhirPatch(del("Patient.name.given.where($this = 'James')")));
    expect(result.name?.[0].given).toEqual(['Peter']);
  });

  test('a primitive with its _ extensions', () => {
    const input = { ...patient(), _birthDate: { extension: [{ url: 'http://x', valueString: 'y' }] } } as Patient;
    const result = apply(fhirPatch(del('Patient.birthDate')), input);
    expect(result).not.toHaveProperty('birthDate');
    expect(result).not.toHaveProperty('_birthDate');
  });

  test('emptied parents are removed up the chain', () => {
    const input: Patient = { resourceType: 'Patient', name: [{ given: ['Only'] }], gender: 'male' };
    expect(apply(fhirPatch(del('Patient.name[0].given[0]')), input)).toEqual({
      resourceType: 'Patient',
      gender: 'male',
    });
  });

  test('nothing to delete is not an error ("Path of the element to delete (if found)")', () => {
    const input = patient();
    expect(apply(fhirPatch(del("Patient.identifier.where(system='none')"), del('Patient.photo')), input)).toEqual(
      input,
    );
  });

  test('first() and last() select one of several', () => {
    const result = apply(fhirPatch(del('Patient.name.first()'), del('Patient.identifier.last()')));
    expect(result.name).toEqual([{ use: 'usual', given: ['Jim'] }]);
    expect(result.identifier).toEqual([{ system: 'http://example.org/mrn', value: '12345' }]);
  });

  test('an extension selected with extension(url)', () => {
    const input: Patient = {
      resourceType: 'Patient',
      extension: [
        { url: 'http://example.org/a', valueString: 'a' },
        { url: 'http://example.org/b', valueString: 'b' },
      ],
    };
    const result = apply(fhirPatch(del("Patient.extension('http://example.org/a')")), input);
    expect(result.extension).toEqual([{ url: 'http://example.org/b', valueString: 'b' }]);
  });

  test('a path matching several elements: 422', () => {
    expect(status(fhirPatch(del('Patient.identifier')))).toMatchObject({ status: 422, code: 'processing' });
  });

  test('names of JavaScript object members are not elements: 422', () => {
    expect(status(fhirPatch(del('Patient.constructor')))).toMatchObject({ status: 422, code: 'processing' });
    expect(status(fhirPatch(add('Patient', 'toString', { valueString: 'x' })))).toMatchObject({ status: 422 });
  });
});

describe('replace', () => {
  test('a primitive inside a list, and a list element selected by where()', () => {
    const result = apply(
      fhirPatch(
        replace('Patient.name[0].given[1]', { valueString: 'Jimmy' }),
        replace("Patient.identifier.where(system='http://example.org/ssn')", {
          valueIdentifier: { system: 'http://example.org/ssn', value: '000' },
        }),
      ),
    );
    expect(result.name?.[0].given).toEqual(['Peter', 'Jimmy']);
    expect(result.identifier?.[1]).toEqual({ system: 'http://example.org/ssn', value: '000' });
  });

  test('under a where() on one list and an element of another', () => {
    const result = apply(fhirPatch(replace("Patient.name.where(use = 'usual').given", { valueString: 'Jimmy' })));
    expect(result.name?.[1]).toEqual({ use: 'usual', given: ['Jimmy'] });
  });

  test('a choice element may change type', () => {
    const obs: Observation = { resourceType: 'Observation', status: 'final', code: {}, valueQuantity: { value: 1 } };
    const result = applyFhirPathPatch(obs, fhirPatch(replace('Observation.value', { valueString: 'one' })));
    expect(result).toEqual({ resourceType: 'Observation', status: 'final', code: {}, valueString: 'one' });
  });

  test('a Quantity profile stands for Quantity', () => {
    const obs: Observation = { resourceType: 'Observation', status: 'final', code: {}, valueQuantity: { value: 1 } };
    const result = applyFhirPathPatch(obs, fhirPatch(replace('Observation.value', { valueAge: { value: 2 } })));
    expect(result).toMatchObject({ valueQuantity: { value: 2 } });
  });

  test('inside a contained resource reached with resolve()', () => {
    const obs: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: {},
      contained: [{ resourceType: 'Patient', id: 'c1', birthDate: '2000-01-01' }],
      subject: { reference: '#c1' },
    };
    const result = applyFhirPathPatch(
      obs,
      fhirPatch(replace('Observation.subject.resolve().birthDate', { valueDate: '2001-01-01' })),
    ) as Observation;
    expect(result.contained?.[0]).toEqual({ resourceType: 'Patient', id: 'c1', birthDate: '2001-01-01' });
  });

  test('resolve() to another resource: 422', () => {
    const obs: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: {},
      subject: { reference: 'Patient/p1' },
    };
    const op = replace('Observation.subject.resolve().birthDate', { valueDate: '2001-01-01' });
    expect(status(fhirPatch(op), obs)).toMatchObject({ status: 422, code: 'processing' });
  });

  test.each([
    ['the path matches nothing', replace('Patient.maritalStatus', { valueCodeableConcept: { text: 'M' } })],
    ['the path matches several', replace('Patient.name.given', { valueString: 'x' })],
    ['an indexer past the end', replace('Patient.name[5].family', { valueString: 'x' })],
    ['a value of the wrong type', replace('Patient.birthDate', { valueHumanName: { text: 'x' } })],
    ['a boolean for a date', replace('Patient.birthDate', { valueBoolean: true })],
    ['an element the type does not have', replace('Patient.name[0].nickname', { valueString: 'x' })],
    ['a path for another resource type', replace('Observation.status', { valueCode: 'final' })],
  ])('%s: 422', (_what, op) => {
    expect(status(fhirPatch(op))).toMatchObject({ status: 422, code: 'processing' });
  });
});

describe('move', () => {
  test('within a primitive list', () => {
    expect(apply(fhirPatch(move('Patient.name[0].given', 0, 1))).name?.[0].given).toEqual(['James', 'Peter']);
  });

  test.each([
    ['source past the end', move('Patient.identifier', 2, 0)],
    ['destination past the end', move('Patient.identifier', 0, 2)],
    ['a negative source', move('Patient.identifier', -1, 0)],
    ['an empty list', move('Patient.telecom', 0, 0)],
    ['a single element', move('Patient.birthDate', 0, 0)],
  ])('%s: 422', (_what, op) => {
    expect(status(fhirPatch(op))).toMatchObject({ status: 422, code: 'processing' });
  });
});

describe("a primitive's extensions (JSON _name, https://hl7.org/fhir/R4/json.html#primitive)", () => {
  const birthTime = 'http://hl7.org/fhir/StructureDefinition/patient-birthTime';
  const extension = parts(['url', { valueUri: birthTime }], ['value', { valueDateTime: '1974-12-25T14:35:45-05:00' }]);

  test('add, replace and delete an extension of a single primitive', () => {
    const added = apply(fhirPatch(add('Patient.birthDate', 'extension', extension)));
    expect(added).toMatchObject({
      birthDate: '1974-12-25',
      _birthDate: { extension: [{ url: birthTime, valueDateTime: '1974-12-25T14:35:45-05:00' }] },
    });
    const replaced = apply(
      fhirPatch(
        replace(`Patient.birthDate.extension('${birthTime}').value`, { valueDateTime: '1974-12-25T15:00:00Z' }),
      ),
      added,
    );
    expect(replaced).toMatchObject({
      _birthDate: { extension: [{ url: birthTime, valueDateTime: '1974-12-25T15:00:00Z' }] },
    });
    const deleted = apply(fhirPatch(del(`Patient.birthDate.extension('${birthTime}')`)), replaced);
    expect(deleted).toEqual(patient());
  });

  test('add and delete an extension of a primitive in a list, keeping the _ list aligned', () => {
    const ext = parts(['url', { valueUri: 'http://example.org/x' }], ['value', { valueString: 'x' }]);
    const added = apply(fhirPatch(add('Patient.name[0].given[1]', 'extension', ext)));
    expect(added.name?.[0]).toMatchObject({
      given: ['Peter', 'James'],
      _given: [null, { extension: [{ url: 'http://example.org/x', valueString: 'x' }] }],
    });
    const deleted = apply(fhirPatch(del('Patient.name[0].given[1].extension[0]')), added);
    expect(deleted).toEqual(patient());
  });
});

describe('the id of the resource cannot change: 400', () => {
  test.each([
    ['replace', replace('Patient.id', { valueId: 'p2' })],
    ['delete', del('Patient.id')],
    ['add', add('Patient', 'id', { valueId: 'p2' })],
  ])('%s', (_what, op) => {
    const noId = op.part?.[0].valueCode === 'add' ? { ...patient(), id: undefined } : patient();
    expect(status(fhirPatch(op), noId)).toMatchObject({ status: 400, code: 'invalid' });
  });

  test("a contained resource's id may change", () => {
    const input: Patient = { ...patient(), contained: [{ resourceType: 'Organization', id: 'o1' }] };
    const result = apply(fhirPatch(replace('Patient.contained[0].id', { valueId: 'o2' })), input);
    expect(result.contained?.[0].id).toBe('o2');
  });
});

describe('a malformed FHIRPath Patch: 400 invalid', () => {
  const path = { valueString: 'Patient.birthDate' };
  test.each([
    ['not a Parameters resource', { resourceType: 'Patient' }],
    ['no parameter at all', { resourceType: 'Parameters', parameter: [] }],
    ['a parameter not named operation', { resourceType: 'Parameters', parameter: [{ name: 'op', part: [] }] }],
    ['an operation without parts', { resourceType: 'Parameters', parameter: [{ name: 'operation' }] }],
    ['an unknown type', fhirPatch(operation('upsert', { path }))],
    ['no type', { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'path', ...path }] }] }],
    ['an unknown part', fhirPatch(operation('delete', { path, where: { valueString: 'x' } }))],
    [
      'a part given twice',
      {
        resourceType: 'Parameters',
        parameter: [
          {
            name: 'operation',
            part: [
              { name: 'type', valueCode: 'delete' },
              { name: 'path', ...path },
              { name: 'path', ...path },
            ],
          },
        ],
      },
    ],
    ['no path', fhirPatch(operation('delete', {}))],
    ['replace without value', fhirPatch(operation('replace', { path }))],
    [
      'add without name',
      fhirPatch(operation('add', { path: { valueString: 'Patient' }, value: { valueDate: '2000' } })),
    ],
    ['insert without index', fhirPatch(operation('insert', { path, value: { valueDate: '2000' } }))],
    ['move without destination', fhirPatch(operation('move', { path, source: { valueInteger: 0 } }))],
    [
      'an index that is not an integer',
      fhirPatch(operation('insert', { path, value: { valueDate: '2000' }, index: { valueDecimal: 1.5 } })),
    ],
    [
      'a value part with two values',
      fhirPatch(replace('Patient.birthDate', { valueDate: '2000', valueString: '2000' })),
    ],
    ['a value part with no value', fhirPatch(replace('Patient.birthDate', {}))],
    ['an unknown value type', fhirPatch(replace('Patient.birthDate', { valueFoo: 'x' } as object))],
    ['a value of the wrong JSON shape', fhirPatch(replace('Patient.birthDate', { valueDate: 20000101 } as object))],
    ['a sub-part without a name', fhirPatch(add('Patient', 'contact', { part: [{ valueString: 'x' } as never] }))],
    ['an unparsable path', fhirPatch(del('Patient.name['))],
    ['a path with trailing text', fhirPatch(del('Patient name'))],
    ['a path that computes rather than selects', fhirPatch(del('Patient.name.count()'))],
    ['a path that is a union', fhirPatch(del('Patient.name | Patient.telecom'))],
    [
      'a choice element given as parts',
      fhirPatch(add('Patient', 'deceased', parts(['value', { valueBoolean: true }]))),
    ],
  ])('%s', (_what, patch) => {
    expect(status(patch as Parameters)).toMatchObject({ status: 400, code: 'invalid' });
  });

  test('a malformed operation after a valid one fails the whole patch, naming the operation', () => {
    const err = failure(() =>
      applyFhirPathPatch(
        patient(),
        fhirPatch(replace('Patient.gender', { valueCode: 'female' }), del('Patient.name[')),
      ),
    );
    expect(err.status).toBe(400);
    expect(err.outcome.issue?.[0].expression).toEqual(['Parameters.parameter[1]']);
  });

  test('a malformed operation is a 400 even after one that would be a 422', () => {
    const patch = fhirPatch(del('Patient.identifier'), del('Patient.name.count()'));
    expect(status(patch)).toMatchObject({ status: 400, code: 'invalid' });
  });
});

describe('inputs are not touched, operations apply in order', () => {
  test('the input resource and the patch stay as they were', () => {
    const input = deepFreeze(patient());
    const patch = deepFreeze(
      fhirPatch(
        add('Patient', 'telecom', { valueContactPoint: { value: '555' } }),
        replace('Patient.telecom[0].value', { valueString: '556' }),
        del('Patient.name[1]'),
      ),
    );
    const result = apply(patch, input);
    expect(result.telecom).toEqual([{ value: '556' }]);
    expect(result.name).toHaveLength(1);
    expect(input).toEqual(patient());
  });

  test('a failing operation leaves the input as it was', () => {
    const input = deepFreeze(patient());
    expect(
      status(fhirPatch(replace('Patient.gender', { valueCode: 'female' }), del('Patient.identifier')), input).status,
    ).toBe(422);
    expect(input.gender).toBe('male');
  });
});
