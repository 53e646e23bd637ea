/**
 * Index rows per SearchParameter type, derived from the FHIRPath expressions at write time.
 * https://hl7.org/fhir/R4/search.html
 */
import { join } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { projectRoot } from '../../src/config';
import { loadDefinitions } from '../../src/fhir/definitions';
import { registerSearchParameters } from '../../src/fhir/searchParameters';
import { loadValidator } from '../../src/fhir/validation';
import { indexRows, referenceRows } from '../../src/storage/indexer';
import { dateRange, normalizeString, numberRange } from '../../src/storage/values';

const BASE = 'http://localhost:8080/fhir';

beforeAll(() => {
  loadDefinitions();
  registerSearchParameters(loadValidator(join(projectRoot(), 'fhir-profiles')).conformanceResources);
});

const rows = (r: Record<string, unknown>) => indexRows(r as unknown as Resource, BASE);

test('token: identifiers with type, codings with display, booleans and codes', () => {
  const r = rows({
    resourceType: 'Patient',
    identifier: [{ system: 'urn:mrn', value: 'A1', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }], text: 'Prontuário' } }],
    gender: 'female',
    active: true,
    telecom: [{ system: 'email', value: 'ana@example.com' }],
  });
  expect(r.token).toEqual(
    expect.arrayContaining([
      { code: 'identifier', system: 'urn:mrn', value: 'A1', text: 'prontuario', typeSystem: 'http://terminology.hl7.org/CodeSystem/v2-0203', typeCode: 'MR' },
      expect.objectContaining({ code: 'gender', system: null, value: 'female' }),
      expect.objectContaining({ code: 'active', value: 'true' }),
      expect.objectContaining({ code: 'email', system: 'email', value: 'ana@example.com' }),
    ]),
  );
});

test('string: HumanName parts, lower-cased and accent-free, with the exact original', () => {
  const r = rows({ resourceType: 'Patient', name: [{ family: 'Conceição', given: ['Ângela', 'Maria'] }] });
  const names = r.string.filter((s) => s.code === 'name').map((s) => [s.value, s.exact]);
  expect(names).toEqual(expect.arrayContaining([['conceicao', 'Conceição'], ['angela', 'Ângela'], ['maria', 'Maria']]));
  expect(r.string.filter((s) => s.code === 'family').map((s) => s.value)).toEqual(['conceicao']);
});

test('date: precision ranges and Periods', () => {
  const p = rows({ resourceType: 'Patient', birthDate: '1980-05' });
  expect(p.date).toEqual([{ code: 'birthdate', start: '1980-05-01T00:00:00.000Z', end: '1980-06-01T00:00:00.000Z' }]);
  const e = rows({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, period: { start: '2020-01-01T10:00:00Z' } });
  expect(e.date.find((d) => d.code === 'date')).toEqual({ code: 'date', start: '2020-01-01T10:00:00.000Z', end: 'infinity' });
});

test('number from the custom rating SearchParameter, quantity, uri, reference and position', () => {
  const role = rows({
    resourceType: 'PractitionerRole',
    practitioner: { reference: 'Practitioner/p1' },
    location: [{ reference: `${BASE}/Location/l1` }],
    extension: [{ url: 'http://fhir.healthmed.com.br/StructureDefinition/rating', valueDecimal: 4.5 }],
  });
  expect(role.number).toEqual([{ code: 'rating', value: 4.5, low: 4.45, high: 4.55 }]);
  expect(role.reference).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ code: 'practitioner', targetType: 'Practitioner', targetId: 'p1' }),
      expect.objectContaining({ code: 'location', targetType: 'Location', targetId: 'l1' }),
    ]),
  );
  const obs = rows({ resourceType: 'Observation', status: 'final', code: { text: 'w' }, valueQuantity: { value: 72.5, system: 'http://unitsofmeasure.org', code: 'kg', unit: 'kg' }, subject: { identifier: { system: 'urn:cpf', value: '1' } } });
  expect(obs.quantity).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'value-quantity', value: 72.5, system: 'http://unitsofmeasure.org', unitCode: 'kg' })]));
  expect(obs.reference).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'subject', identifierSystem: 'urn:cpf', identifierValue: '1' })]));
  const loc = rows({ resourceType: 'Location', position: { latitude: -23.55, longitude: -46.63 } });
  expect(loc.position).toEqual([{ latitude: -23.55, longitude: -46.63 }]);
  const vs = rows({ resourceType: 'ValueSet', status: 'draft', url: 'http://example.org/vs' });
  expect(vs.uri).toEqual([{ code: 'url', value: 'http://example.org/vs' }]);
});

test('referenceRows finds local references anywhere, contained included, and skips the rest', () => {
  const refs = referenceRows(
    {
      resourceType: 'ExplanationOfBenefit',
      contained: [{ resourceType: 'ServiceRequest', requester: { reference: 'Practitioner/9' } }],
      patient: { reference: `${BASE}/Patient/1/_history/2` },
      provider: { reference: 'http://elsewhere.org/fhir/Organization/1' },
      insurance: [{ coverage: { reference: '#cov' } }],
    } as unknown as Resource,
    BASE,
  );
  expect(refs).toEqual([
    { targetType: 'Practitioner', targetId: '9' },
    { targetType: 'Patient', targetId: '1' },
  ]);
});

test('value helpers', () => {
  expect(normalizeString('ÁÉÍÕÇ São')).toBe('aeioc sao');
  expect(dateRange('2020')).toEqual(['2020-01-01T00:00:00.000Z', '2021-01-01T00:00:00.000Z']);
  expect(dateRange('2020-02-29T23:59:59-03:00')).toEqual(['2020-03-01T02:59:59.000Z', '2020-03-01T03:00:00.000Z']);
  expect(dateRange('not a date')).toBeUndefined();
  expect(numberRange(100)).toEqual({ low: 99.5, high: 100.5 });
});
