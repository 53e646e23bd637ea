/**
 * R4 JSON never has an empty array (https://hl7.org/fhir/R4/json.html: "arrays ... are never empty"), and a
 * `_count` above the server's maximum is shown in the links as the count actually used
 * (https://hl7.org/fhir/R4/search.html#count).
 */
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(() => s.close());

/** Paths (e.g. `entry`) of every empty array in a JSON value. */
function emptyArrays(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.length === 0 ? [path || '(root)'] : value.flatMap((v, i) => emptyArrays(v, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => emptyArrays(v, path ? `${path}.${k}` : k));
  return [];
}

const nothing = `nothing-${Date.now()}`;
const emptyBundle = (type: string) => ({ resourceType: 'Bundle', type });

test.each([
  ['GET', '/fhir/metadata', undefined],
  ['GET', `/fhir/Patient?family=${nothing}`, undefined],
  ['GET', `/fhir/Patient?family=${nothing}&_summary=count`, undefined],
  ['GET', `/fhir/Patient?family=${nothing}&_include=Patient:organization`, undefined],
  ['GET', `/fhir?_type=Patient&family=${nothing}`, undefined],
  ['GET', `/fhir/Patient/_history?_since=2999-01-01`, undefined],
  ['GET', `/fhir/_history?_since=2999-01-01`, undefined],
  ['POST', '/fhir', emptyBundle('batch')],
  ['POST', '/fhir', emptyBundle('transaction')],
  ['POST', '/fhir/Patient/$validate', { resourceType: 'Patient' }],
  ['GET', '/fhir/Patient/missing-id', undefined],
] as [string, string, unknown][])('%s %s has no empty array', async (method, path, body) => {
  const res = await s.request(method, path, body);
  expect(res.status).toBeLessThan(500);
  expect(emptyArrays(res.body).join(', ')).toBe('');
});

test('a stored resource is answered without empty arrays, and an empty array in a body is refused', async () => {
  const refused = await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [] });
  expect(refused.status).toBe(400);
  expect(refused.body.resourceType).toBe('OperationOutcome');
});

test('a _count above the maximum is shown in self and next as the count used', async () => {
  const family = `count-${Date.now()}`;
  for (let i = 0; i < 2; i++) expect((await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family }] })).status).toBe(201);
  const res = await s.request('GET', `/fhir/Patient?family=${family}&_count=100000`);
  expect(res.status).toBe(200);
  const self = new URL(res.body.link.find((l: { relation: string }) => l.relation === 'self').url);
  const used = Number(self.searchParams.get('_count'));
  expect(used).toBeLessThan(100000);
  expect(used).toBeGreaterThan(0);
  const history = await s.request('GET', `/fhir/Patient/_history?_count=100000`);
  const historySelf = new URL(history.body.link.find((l: { relation: string }) => l.relation === 'self').url);
  expect(Number(historySelf.searchParams.get('_count'))).toBe(used);
});
