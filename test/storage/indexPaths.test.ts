/**
 * The compiled forms of SearchParameter expressions (src/storage/indexPaths.ts) give the index rows the FHIRPath
 * engine gives (https://hl7.org/fhir/R4/fhirpath.html), on real data no one here wrote: every resource of the
 * Synthea bundles and of the validator test cases (contained and bundled resources included), plus primitives
 * with extensions and choice types.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { projectRoot } from '../../src/config';
import { loadDefinitions } from '../../src/fhir/definitions';
import { registerSearchParameters } from '../../src/fhir/searchParameters';
import { loadValidator } from '../../src/fhir/validation';
import { indexedParams, indexRows } from '../../src/storage/indexer';

const BASE = 'http://localhost:8080/fhir';
const SHARED = resolve(__dirname, '../../../shared/conformance');

beforeAll(() => {
  loadDefinitions();
  registerSearchParameters(loadValidator(join(projectRoot(), 'fhir-profiles')).conformanceResources);
});

/** Every resource in a JSON tree that looks like a FHIR resource of a known shape. */
function resourcesIn(node: unknown, out: Resource[]): Resource[] {
  if (Array.isArray(node)) node.forEach((x) => resourcesIn(x, out));
  else if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    if (typeof obj.resourceType === 'string' && /^[A-Z][A-Za-z]+$/.test(obj.resourceType)) out.push(obj as unknown as Resource);
    Object.values(obj).forEach((x) => resourcesIn(x, out));
  }
  return out;
}

function jsonFiles(dir: string): unknown[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'manifest.json')
    .flatMap((f) => {
      try {
        return [JSON.parse(readFileSync(join(dir, f), 'utf8'))];
      } catch {
        return []; // the validator's malformed-JSON cases
      }
    });
}

/** Rows of each table in a canonical order (a union may list its branches' values in another order). */
function canonical(r: Resource, fhirPathOnly: boolean): Record<string, string[]> {
  const rows = indexRows(r, BASE, { fhirPathOnly });
  const out: Record<string, string[]> = {};
  for (const [table, list] of Object.entries(rows)) {
    if (Array.isArray(list)) out[table] = list.map((x) => JSON.stringify(x)).sort();
  }
  for (const [table, list] of Object.entries(rows.composite)) out[`composite.${table}`] = list.map((x) => JSON.stringify(x)).sort();
  return out;
}

test('compiled expressions index every Synthea and validator resource as the FHIRPath engine does', () => {
  const resources = [...jsonFiles(join(SHARED, 'synthea')), ...jsonFiles(join(SHARED, 'validation/cases'))].flatMap((j) => resourcesIn(j, []));
  expect(resources.length).toBeGreaterThan(4000);
  const mismatches: string[] = [];
  let rows = 0;
  for (const r of resources) {
    let engine;
    try {
      engine = canonical(r, true);
    } catch {
      continue; // not a resource the indexer takes (an unknown type in a negative test case)
    }
    const compiled = canonical(r, false);
    rows += Object.values(engine).reduce((n, l) => n + l.length, 0);
    if (JSON.stringify(compiled) !== JSON.stringify(engine)) mismatches.push(`${r.resourceType}/${r.id}`);
  }
  expect(mismatches).toEqual([]);
  expect(rows).toBeGreaterThan(50_000);
});

test('where(), as and unions are compiled; functions the compiler does not know go to the engine', () => {
  const compiled = (type: string) => new Map(indexedParams(type).map((p) => [p.code, p.program !== undefined]));
  const patient = compiled('Patient');
  expect(patient.get('family')).toBe(true);
  expect(patient.get('email')).toBe(true); // Patient.telecom.where(system='email')
  expect(patient.get('death-date')).toBe(true); // (Patient.deceased as dateTime)
  expect(patient.get('deceased')).toBe(false); // exists() and ... != false
  expect(compiled('Location').get('name')).toBe(true); // Location.name | Location.alias
  expect(compiled('Observation').get('value-quantity')).toBe(true);
  expect(compiled('Appointment').get('patient')).toBe(false); // where(resolve() is Patient)
});

test('primitives with extensions, choice types and empty values agree too', () => {
  const cases: Record<string, unknown>[] = [
    {
      resourceType: 'Patient',
      name: [{ family: 'Souza', _family: { extension: [{ url: 'http://example.org/x', valueString: 'y' }] }, given: ['Ana', 'Maria'] }],
      telecom: [{ system: 'email', value: 'a@example.com' }, { system: 'phone', value: '' }, { _system: { extension: [] }, value: '1' }, { system: 'phone', value: '+55 11 90000-0000' }],
      deceasedDateTime: '2020-01-02',
      birthDate: '1980',
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1980-05-01T10:00:00Z' }] },
    },
    { resourceType: 'Patient', deceasedBoolean: true, address: [{ city: 'Recife', line: [] }] },
    {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '1' }], text: 'Um' },
      component: [{ code: { text: 'c' }, valueQuantity: { value: 1.5, unit: 'mg' } }, { code: { text: 'd' }, valueString: 'texto' }],
    },
    { resourceType: 'Location', name: 'Clínica', alias: ['Clínica', 'Centro'], position: { latitude: -23.5, longitude: -46.6 } },
  ];
  for (const c of cases) {
    const r = c as unknown as Resource;
    expect([r.resourceType, canonical(r, false)]).toEqual([r.resourceType, canonical(r, true)]);
  }
});
