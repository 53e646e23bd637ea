/**
 * $validate over HTTP against the official FHIR validator test cases in ../shared/conformance/validation,
 * each with the reference Java validator's verdict. https://hl7.org/fhir/R4/resource-operation-validate.html
 * Target: agree on at least 95% of the cases, and never answer 5xx.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServer, type TestServer } from '../helpers/server';

const DIR = resolve(__dirname, '../../../shared/conformance/validation');

interface Case {
  name: string;
  file: string;
  resourceType: string;
  expect: 'valid' | 'invalid';
}

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

test('POST [type]/$validate agrees with the reference validator on >= 95% of the official cases', async () => {
  const cases = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as Case[];
  expect(cases).toHaveLength(71);
  const disagreements: string[] = [];
  for (const c of cases) {
    const body = readFileSync(join(DIR, c.file), 'utf8');
    const res = await s.request('POST', `/fhir/${c.resourceType}/$validate`, body);
    expect([c.name, res.status < 500]).toEqual([c.name, true]);
    expect(res.body?.resourceType).toBe('OperationOutcome');
    const errors = (res.body.issue ?? []).filter((i: { severity: string }) => i.severity === 'error' || i.severity === 'fatal');
    const verdict = res.status === 200 && errors.length === 0 ? 'valid' : 'invalid';
    if (verdict !== c.expect) disagreements.push(`${c.name}: expected ${c.expect}, got ${verdict}`);
  }
  const agreement = (cases.length - disagreements.length) / cases.length;
  if (disagreements.length) console.log(disagreements.join('\n'));
  expect(agreement).toBeGreaterThanOrEqual(0.95);
}, 120_000);

describe('$validate', () => {
  test('a Parameters body with resource and profile, and instance-level $validate', async () => {
    const patient = { resourceType: 'Patient', name: [{ family: 'Souza' }] };
    const res = await s.request('POST', '/fhir/Patient/$validate', {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: patient },
        { name: 'profile', valueUri: 'http://fhir.healthmed.com.br/StructureDefinition/healthmed-patient' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.issue.some((i: { severity: string }) => i.severity === 'error')).toBe(true);

    const ok = await s.request('POST', '/fhir/Patient/$validate', patient);
    expect(ok.status).toBe(200);
    expect(ok.body.issue.every((i: { severity: string }) => i.severity !== 'error')).toBe(true);

    const created = await s.request('POST', '/fhir/Patient', patient);
    const instance = await s.request('GET', `/fhir/Patient/${created.body.id}/$validate`);
    expect(instance.status).toBe(200);
    expect(instance.body.resourceType).toBe('OperationOutcome');
  });

  test('$validate stores nothing', async () => {
    const marker = `validate-${Date.now()}`;
    await s.request('POST', '/fhir/Patient/$validate', { resourceType: 'Patient', identifier: [{ system: 'urn:test:mrn', value: marker }] });
    const search = await s.request('GET', `/fhir/Patient?identifier=urn:test:mrn|${marker}`);
    expect(search.body.total).toBe(0);
    expect(search.body.entry).toBeUndefined();
  });
});
