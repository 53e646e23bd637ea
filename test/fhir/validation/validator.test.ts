/**
 * The validator on every write: base R4 rules (400), project profiles and the CPF/CRM rule (422).
 * https://hl7.org/fhir/R4/validation.html, CONTRACT.md §3, fhir-profiles/.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { OperationOutcomeError } from '../../../src/fhir/outcomes';
import { CPF_SYSTEM, CRM_SYSTEM, loadValidator } from '../../../src/fhir/validation';
import type { FhirValidator } from '../../../src/fhir/validation';

const PROFILES_DIR = path.resolve(__dirname, '../../../fhir-profiles');
const PATIENT_PROFILE = 'http://fhir.healthmed.com.br/StructureDefinition/healthmed-patient';
const PRACTITIONER_PROFILE = 'http://fhir.healthmed.com.br/StructureDefinition/healthmed-practitioner';
const VALID_CPF = '52998224725';
const BAD_CHECK_DIGITS = '52998224724';

const validator: FhirValidator = loadValidator(PROFILES_DIR);

function errors(resource: unknown, options?: { profiles?: string[] }): OperationOutcomeIssue[] {
  return validator.validate(resource, options).filter((i) => i.severity === 'error' || i.severity === 'fatal');
}

function rejection(resource: unknown, options?: { profiles?: string[] }): OperationOutcomeError {
  try {
    validator.assertValid(resource, options);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return err;
    }
    throw err;
  }
  throw new Error('expected assertValid to throw');
}

const cpf = (value: string) => ({ system: CPF_SYSTEM, value });

describe('base R4 validation', () => {
  it('accepts a typical Patient and Observation', () => {
    const patient = {
      resourceType: 'Patient',
      id: 'p-1',
      meta: { profile: [PATIENT_PROFILE] },
      identifier: [cpf(VALID_CPF)],
      name: [{ given: ['Ana'], family: 'Souza' }],
      gender: 'female',
      birthDate: '1990-02-28',
      telecom: [{ system: 'email', value: 'ana@example.com' }],
    };
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      subject: { reference: 'Patient/p-1' },
      effectiveDateTime: '2024-05-01T10:00:00-03:00',
      valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    };
    expect(validator.validate(patient)).toEqual([]);
    expect(validator.validate(observation)).toEqual([]);
    expect(() => validator.assertValid(patient)).not.toThrow();
  });

  it('rejects a structural error with 400 and a FHIRPath location on every issue', () => {
    const err = rejection({ resourceType: 'Patient', birthDate: 'not a date', name: [{ given: [] }], foo: 1 });
    expect(err.status).toBe(400);
    const issues = err.outcome.issue ?? [];
    expect(issues.map((i) => i.expression?.[0])).toEqual(['Patient.birthDate', 'Patient.name[0].given', 'Patient.foo']);
    expect(issues.map((i) => i.code)).toEqual(['value', 'structure', 'structure']);
    for (const issue of issues) {
      expect(issue.severity).toBe('error');
      expect(issue.diagnostics).toBeTruthy();
    }
  });

  it.each([
    ['an unknown resource type', { resourceType: 'Patientt' }, 'Resource'],
    ['no resourceType', { id: 'x' }, 'Resource'],
    ['not an object', ['Patient'], 'Resource'],
    ['a missing required element', { resourceType: 'Observation', status: 'final' }, 'Observation'],
    ['a bad resource id', { resourceType: 'Patient', id: 'a_b' }, 'Patient.id'],
    ['a primitive of the wrong JSON type', { resourceType: 'Patient', active: 'yes' }, 'Patient.active'],
    ['an array where one value is allowed', { resourceType: 'Patient', gender: ['male'] }, 'Patient.gender'],
    ['an empty object', { resourceType: 'Patient', maritalStatus: {} }, 'Patient.maritalStatus'],
    ['a null', { resourceType: 'Patient', gender: null }, 'Patient.gender'],
    ['an empty string', { resourceType: 'Patient', gender: '' }, 'Patient.gender'],
    ['a dateTime with time and no zone', { resourceType: 'Patient', deceasedDateTime: '2020-01-01T10:00:00' }, 'Patient.deceased.ofType(dateTime)'],
    ['a date that does not exist', { resourceType: 'Patient', birthDate: '2023-02-29' }, 'Patient.birthDate'],
    ['two types of a choice', { resourceType: 'Patient', deceasedBoolean: true, deceasedDateTime: '2020-01-01' }, 'Patient.deceased.ofType(dateTime)'],
    ['an invariant (per-1)', { resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' }, period: { start: '2024-02-01', end: '2024-01-01' } }, 'Encounter.period'],
    ['a contained reference without its resource (ref-1)', { resourceType: 'Patient', managingOrganization: { reference: '#org' } }, 'Patient.managingOrganization'],
    ['an unreferenced contained resource (dom-3)', { resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'org', name: 'A' }] }, 'Patient'],
    ['a narrative with a script', { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>' } }, 'Patient.text.div'],
    ['an extension with both value and extensions (ext-1)', { resourceType: 'Patient', extension: [{ url: 'http://x', valueString: 'a', extension: [{ url: 'y', valueString: 'b' }] }] }, 'Patient.extension[0]'],
  ])('rejects %s with 400', (_label, resource, expression) => {
    const err = rejection(resource);
    expect(err.status).toBe(400);
    expect((err.outcome.issue ?? []).map((i) => i.expression?.[0])).toContain(expression);
  });

  it('accepts primitive extensions aligned with their values', () => {
    const patient = {
      resourceType: 'Patient',
      name: [{ given: ['Ana', null], _given: [null, { extension: [{ url: 'http://x', valueString: 'y' }] }] }],
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
    };
    expect(errors(patient)).toEqual([]);
  });

  it('validates contained resources and Bundle entries as resources', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Patient', birthDate: 'yesterday' }, request: { method: 'POST', url: 'Patient' } }],
    };
    expect(errors(bundle).map((i) => i.expression?.[0])).toEqual(['Bundle.entry[0].resource.birthDate']);
  });
});

describe('terminology bindings (https://hl7.org/fhir/R4/terminologies.html#strength)', () => {
  const v = () => validator;
  const errorsOf = (r: unknown) => v().validate(r).filter((i) => i.severity === 'error');
  const warningsOf = (r: unknown) => v().validate(r).filter((i) => i.severity === 'warning');

  it('refuses a code outside a required value set, on a write and in $validate', () => {
    const issues = errorsOf({ resourceType: 'Patient', gender: 'nope' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: 'code-invalid', expression: ['Patient.gender'] });
    expect(issues[0].diagnostics).toMatch(/'nope' is not in the value set 'http:\/\/hl7.org\/fhir\/ValueSet\/administrative-gender' \(one of male, female, other, unknown\)/);
    expect(() => v().assertValid({ resourceType: 'Observation', status: 'bogus', code: { text: 'x' } })).toThrow(OperationOutcomeError);
    expect(errorsOf({ resourceType: 'Observation', status: 'bogus', code: { text: 'x' } })[0].expression).toEqual(['Observation.status']);
    expect(errorsOf({ resourceType: 'Observation', status: 'final', code: { text: 'x' } })).toEqual([]);
  });

  it('checks required bindings inside data types, backbone elements, contained resources and Bundle entries', () => {
    expect(errorsOf({ resourceType: 'Patient', telecom: [{ system: 'fax2', value: '1' }] })[0].expression).toEqual(['Patient.telecom[0].system']);
    expect(errorsOf({ resourceType: 'Patient', name: [{ use: 'alias', family: 'x' }] })[0].expression).toEqual(['Patient.name[0].use']);
    expect(errorsOf({ resourceType: 'Patient', link: [{ other: { reference: 'Patient/1' }, type: 'sibling' }] })[0].expression).toEqual(['Patient.link[0].type']);
    const contained = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, contained: [{ resourceType: 'Patient', id: 'p', gender: 'x' }] };
    expect(errorsOf(contained)[0].expression).toEqual(['Observation.contained[0].gender']);
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', gender: 'x' } }] };
    expect(errorsOf(bundle)[0].expression).toEqual(['Bundle.entry[0].resource.gender']);
    expect(errorsOf({ resourceType: 'Bundle', type: 'bogus' })[0].expression).toEqual(['Bundle.type']);
  });

  it('judges a required CodeableConcept and Coding by system and code', () => {
    const condition = (clinicalStatus: unknown) => ({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, clinicalStatus });
    const system = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
    expect(errorsOf(condition({ coding: [{ system, code: 'active' }] }))).toEqual([]);
    expect(errorsOf(condition({ coding: [{ system: 'http://example.org', code: 'active' }] }))[0].expression).toEqual(['Condition.clinicalStatus.coding']);
    expect(errorsOf(condition({ coding: [{ system, code: 'nope' }] }))[0].diagnostics).toMatch(/condition-clinical\|nope' is not in the value set/);
    // One coding from the value set is enough; text alone is not judged
    expect(errorsOf(condition({ coding: [{ system: 'http://example.org', code: 'x' }, { system, code: 'resolved' }] }))).toEqual([]);
    expect(errorsOf(condition({ text: 'active' }))).toEqual([]);
  });

  it('does not judge codes of value sets it cannot expand (MIME types, UCUM, external terminologies)', () => {
    expect(errorsOf({ resourceType: 'Binary', contentType: 'application/x-anything' })).toEqual([]);
    expect(errorsOf({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: 'not-a-loinc' }] } })).toEqual([]);
  });

  it('reports extensible and preferred bindings as warnings in $validate only', () => {
    const obs = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'nope' }] }],
    };
    expect(errorsOf(obs)).toEqual([]);
    expect(warningsOf(obs)).toEqual([expect.objectContaining({ code: 'code-invalid', expression: ['Observation.category[0].coding'] })]);
    expect(warningsOf(obs)[0].diagnostics).toMatch(/which is preferred here/);
    expect(() => v().assertValid(obs)).not.toThrow();
  });
});

describe('CPF and CRM identifiers, with or without a profile', () => {
  it('accepts a valid CPF and CRM', () => {
    expect(errors({ resourceType: 'Patient', identifier: [cpf(VALID_CPF)] })).toEqual([]);
    expect(errors({ resourceType: 'Practitioner', identifier: [{ system: CRM_SYSTEM, value: 'SP-123456' }] })).toEqual([]);
  });

  it.each([BAD_CHECK_DIGITS, '529.982.247-25', '11111111111', '1234'])('rejects the CPF %s with 422', (value) => {
    const err = rejection({ resourceType: 'Patient', identifier: [{ use: 'official', ...cpf(value) }] });
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.[0]).toMatchObject({ severity: 'error', code: 'value', expression: ['Patient.identifier[0].value'] });
  });

  it('rejects a CPF identifier without a value', () => {
    expect(rejection({ resourceType: 'Patient', identifier: [{ system: CPF_SYSTEM }] }).status).toBe(422);
  });

  it.each(['XX-123456', 'SP123456', 'sp-123456'])('rejects the CRM %s with 422', (value) => {
    const err = rejection({ resourceType: 'Practitioner', identifier: [{ system: CRM_SYSTEM, value }] });
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.[0]?.expression).toEqual(['Practitioner.identifier[0].value']);
  });

  it('applies the rule inside a Bundle entry', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:7f3c6f0e-33a4-4b9a-9d5e-0d4b8f0f1a11', resource: { resourceType: 'Patient', identifier: [cpf(VALID_CPF)] }, request: { method: 'POST', url: 'Patient' } },
        { fullUrl: 'urn:uuid:7f3c6f0e-33a4-4b9a-9d5e-0d4b8f0f1a12', resource: { resourceType: 'Patient', identifier: [cpf(BAD_CHECK_DIGITS)] }, request: { method: 'POST', url: 'Patient' } },
      ],
    };
    const err = rejection(bundle);
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.map((i) => i.expression?.[0])).toEqual(['Bundle.entry[1].resource.identifier[0].value']);
  });

  it('applies the rule inside a contained resource and a nested reference identifier', () => {
    const appointment = {
      resourceType: 'Appointment',
      status: 'proposed',
      contained: [{ resourceType: 'Patient', id: 'p', identifier: [cpf(BAD_CHECK_DIGITS)] }],
      participant: [
        { actor: { reference: '#p' }, status: 'accepted' },
        { actor: { identifier: { system: CRM_SYSTEM, value: 'ZZ-1' } }, status: 'needs-action' },
      ],
    };
    const err = rejection(appointment);
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.map((i) => i.expression?.[0])).toEqual([
      'Appointment.contained[0].identifier[0].value',
      'Appointment.participant[1].actor.identifier.value',
    ]);
  });

  it('answers 400 when the same resource also breaks a base rule', () => {
    expect(rejection({ resourceType: 'Patient', identifier: [cpf(BAD_CHECK_DIGITS)], gender: 42 }).status).toBe(400);
  });
});

describe('project profiles (fhir-profiles/)', () => {
  it('lists the loaded profiles and conformance resources', () => {
    expect(validator.profileUrls).toEqual(expect.arrayContaining([PATIENT_PROFILE, PRACTITIONER_PROFILE]));
    const kinds = validator.conformanceResources.map((r) => `${r.resourceType}/${r.id}`);
    expect(kinds).toEqual(
      expect.arrayContaining(['NamingSystem/cpf', 'NamingSystem/crm', 'StructureDefinition/healthmed-patient', 'StructureDefinition/healthmed-practitioner']),
    );
    const patientProfile = validator.conformanceResources.find((r) => r.id === 'healthmed-patient') as { snapshot?: { element: { id?: string }[] } };
    expect(patientProfile.snapshot?.element.map((e) => e.id)).toEqual(
      expect.arrayContaining(['Patient', 'Patient.identifier', 'Patient.identifier:cpf', 'Patient.identifier:cpf.system', 'Patient.identifier:cpf.value']),
    );
  });

  it('rejects a Patient declaring healthmed-patient without a CPF with 422', () => {
    const patient = {
      resourceType: 'Patient',
      meta: { profile: [PATIENT_PROFILE] },
      identifier: [{ system: 'http://example.org/mrn', value: '123' }],
    };
    const err = rejection(patient);
    expect(err.status).toBe(422);
    expect(err.outcome.issue).toEqual([
      expect.objectContaining({ severity: 'error', code: 'required', expression: ['Patient'], diagnostics: expect.stringContaining("slice 'cpf'") }),
    ]);
  });

  it('does not require a CPF of a Patient without the profile', () => {
    expect(errors({ resourceType: 'Patient', identifier: [{ system: 'http://example.org/mrn', value: '123' }] })).toEqual([]);
  });

  it('enforces the profile when asked explicitly ($validate profile parameter)', () => {
    expect(rejection({ resourceType: 'Patient' }, { profiles: [PATIENT_PROFILE] }).status).toBe(422);
    expect(errors({ resourceType: 'Patient', identifier: [cpf(VALID_CPF)] }, { profiles: [PATIENT_PROFILE] })).toEqual([]);
  });

  it('allows one CPF only', () => {
    const patient = { resourceType: 'Patient', meta: { profile: [PATIENT_PROFILE] }, identifier: [cpf(VALID_CPF), cpf('11144477735')] };
    expect(rejection(patient).outcome.issue?.[0]?.diagnostics).toMatch(/requires 1\.\.1 values, but found 2/);
  });

  it('requires a CRM of a Practitioner declaring healthmed-practitioner', () => {
    const practitioner = { resourceType: 'Practitioner', meta: { profile: [PRACTITIONER_PROFILE] }, name: [{ family: 'Lima' }] };
    expect(rejection(practitioner).status).toBe(422);
    const ok = { ...practitioner, identifier: [{ system: CRM_SYSTEM, value: 'SP-123456' }, { system: CRM_SYSTEM, value: 'RJ-98765' }] };
    expect(errors(ok)).toEqual([]);
  });

  it('applies profiles declared by contained resources and Bundle entries', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', meta: { profile: [PATIENT_PROFILE] } } }],
    };
    expect(rejection(bundle).status).toBe(422);
  });

  it('only warns about a profile it does not know', () => {
    const issues = validator.validate({ resourceType: 'Patient', meta: { profile: ['http://example.org/StructureDefinition/unknown'] } });
    expect(issues).toEqual([expect.objectContaining({ severity: 'warning', expression: ['Patient.meta.profile'] })]);
    expect(() => validator.assertValid({ resourceType: 'Patient', meta: { profile: ['http://example.org/x'] } })).not.toThrow();
  });

  it('treats the base definition URL as already checked', () => {
    expect(validator.validate({ resourceType: 'Patient', meta: { profile: ['http://hl7.org/fhir/StructureDefinition/Patient'] } })).toEqual([]);
  });
});

describe('profiles and extension definitions are read from the directory', () => {
  let dir: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-profiles-'));
    fs.writeFileSync(
      path.join(dir, 'StructureDefinition-test-patient.json'),
      JSON.stringify({
        resourceType: 'StructureDefinition',
        url: 'http://fhir.healthmed.com.br/StructureDefinition/test-patient',
        name: 'TestPatient',
        status: 'draft',
        kind: 'resource',
        abstract: false,
        type: 'Patient',
        baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
        derivation: 'constraint',
        differential: {
          element: [
            { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 },
            { id: 'Patient.contact.name', path: 'Patient.contact.name', min: 1 },
            { id: 'Patient.maritalStatus', path: 'Patient.maritalStatus', patternCodeableConcept: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus' }] } },
          ],
        },
      }),
    );
    fs.writeFileSync(
      path.join(dir, 'StructureDefinition-rating.json'),
      JSON.stringify({
        resourceType: 'StructureDefinition',
        url: 'http://fhir.healthmed.com.br/StructureDefinition/rating',
        name: 'Rating',
        status: 'draft',
        kind: 'complex-type',
        abstract: false,
        context: [{ type: 'element', expression: 'PractitionerRole' }],
        type: 'Extension',
        baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Extension',
        derivation: 'constraint',
        differential: {
          element: [
            { id: 'Extension', path: 'Extension', constraint: [{ key: 'hm-rating-1', severity: 'error', human: 'From 0 to 5', expression: 'value.empty() or (value >= 0 and value <= 5)' }] },
            { id: 'Extension.extension', path: 'Extension.extension', max: '0' },
            { id: 'Extension.url', path: 'Extension.url', fixedUri: 'http://fhir.healthmed.com.br/StructureDefinition/rating' },
            { id: 'Extension.value[x]', path: 'Extension.value[x]', min: 1, type: [{ code: 'decimal' }] },
          ],
        },
      }),
    );
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('enforces cardinality, backbone children and patterns from a differential', () => {
    const v = loadValidator(dir);
    const profile = 'http://fhir.healthmed.com.br/StructureDefinition/test-patient';
    const issues = v.validate({
      resourceType: 'Patient',
      meta: { profile: [profile] },
      contact: [{ gender: 'male', telecom: [{ system: 'phone', value: '+55 11 5555-0100' }] }],
      maritalStatus: { coding: [{ system: 'http://example.org', code: 'M' }] },
    });
    const errors = issues.filter((i) => i.severity === 'error');
    expect(errors.map((i) => i.expression?.[0])).toEqual(['Patient', 'Patient.maritalStatus', 'Patient.contact[0]']);
    // The coding is also outside the base element's extensible binding: a warning, not an error
    expect(issues.filter((i) => i.severity === 'warning').map((i) => i.expression?.[0])).toEqual(['Patient.maritalStatus.coding']);
    expect(v.validate({ resourceType: 'Patient', meta: { profile: [profile] }, birthDate: '2000-01-01' })).toEqual([]);
  });

  it('enforces an extension definition wherever the extension is used', () => {
    const v = loadValidator(dir);
    const rating = (ext: object) => ({ resourceType: 'PractitionerRole', extension: [{ url: 'http://fhir.healthmed.com.br/StructureDefinition/rating', ...ext }] });
    expect(v.validate(rating({ valueDecimal: 4.5 }))).toEqual([]);
    const tooHigh = v.validate(rating({ valueDecimal: 7 }));
    expect(tooHigh).toEqual([expect.objectContaining({ severity: 'error', code: 'invariant', expression: ['PractitionerRole.extension[0]'] })]);
    const wrongType = v.validate(rating({ valueString: '5' })).map((i) => i.diagnostics);
    expect(wrongType).toEqual(expect.arrayContaining([expect.stringMatching(/type string is not allowed/)]));
  });

  it('refuses to start with an invalid conformance resource', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-profiles-bad-'));
    try {
      fs.writeFileSync(path.join(bad, 'SearchParameter-x.json'), '{"resourceType":"SearchParameter","status":"bogus"}');
      expect(() => loadValidator(bad)).toThrow(/SearchParameter-x.json is not valid FHIR R4/);
      fs.rmSync(path.join(bad, 'SearchParameter-x.json'));
      const unparsable = JSON.parse(fs.readFileSync(path.join(PROFILES_DIR, 'StructureDefinition-healthmed-patient.json'), 'utf8'));
      unparsable.differential.element[3].constraint[0].expression = "matches('^[0-9]{11}$'";
      fs.writeFileSync(path.join(bad, 'StructureDefinition-healthmed-patient.json'), JSON.stringify(unparsable));
      expect(() => loadValidator(bad)).toThrow(/Invariant hm-cpf-1 cannot be parsed/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });
});
